"""Large batches copied to the GPU from pageable host memory every step, no pinning, no
overlap. (Runs on the CPU, finding nothing to report, where there is no GPU.)"""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

device = "cuda" if torch.cuda.is_available() else "cpu"
features = 8192 if device == "cuda" else 256
images = torch.randn(4096, features)
labels = torch.randint(0, 10, (4096,))
loader = DataLoader(TensorDataset(images, labels), batch_size=512, shuffle=True)
model = nn.Sequential(nn.Linear(features, 256), nn.ReLU(), nn.Linear(256, 10)).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
for _epoch in range(3):
    for x, y in loader:
        x = x.to(device)
        y = y.to(device)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
print("done")
