"""Control: whole batches gathered by one tensor index (no per-sample Python)."""

import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

torch.manual_seed(0)
x, y = torch.randn(4096, 64), torch.randint(0, 10, (4096,))
dataset = TensorDataset(x, y)
loader = DataLoader(dataset, sampler=BatchSampler(RandomSampler(dataset), 256, drop_last=False),
                    batch_size=None)
model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                      nn.Linear(512, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for _epoch in range(3):
    for xb, yb in loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.step()
print("done")
