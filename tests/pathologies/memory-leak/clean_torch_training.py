"""Clean: a normal torch training loop that logs `loss.item()` and keeps small per-step floats."""

import time

import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
losses = []
start = time.monotonic()
while time.monotonic() - start < 2.5:
    x = torch.randn(128, 64)
    y = torch.randint(0, 10, (128,))
    loss = nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
print(len(losses), sum(losses) / len(losses))
