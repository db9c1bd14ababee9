"""A GPU model fed by a single-process DataLoader that decodes every sample in Python: the
GPU waits for the host most of the time. (Runs on the CPU where there is no GPU.)"""

import math

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class Decoded(Dataset):
    def __len__(self):
        return 2048 if torch.cuda.is_available() else 768

    def __getitem__(self, index):
        values = [math.sin(index + k * 0.1) for k in range(1024)]
        return torch.tensor(values), index % 10


device = "cuda" if torch.cuda.is_available() else "cpu"
model = nn.Sequential(nn.Linear(1024, 2048), nn.ReLU(), nn.Linear(2048, 10)).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
loader = DataLoader(Decoded(), batch_size=64, shuffle=True)
for _epoch in range(2):
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
print("done")
