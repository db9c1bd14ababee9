"""Clean: training with slow steps (long forward passes before each backward)."""

import time

import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(512, 1024), nn.ReLU(), nn.Linear(1024, 512))
optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
start = time.monotonic()
while time.monotonic() - start < 2.5:
    x = torch.randn(256, 512)
    out = model(x)
    for _ in range(20):  # a long, repeated forward (e.g. unrolled iterations) before backward
        out = model(out.tanh())
    loss = out.pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(float(loss))
