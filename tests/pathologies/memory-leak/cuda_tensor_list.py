"""Leak (GPU): predictions are kept on the device, one batch of logits per step."""

import sys
import time

import torch
from torch import nn

if not torch.cuda.is_available():
    print("no CUDA device")
    sys.exit(0)

device = torch.device("cuda")
model = nn.Sequential(nn.Linear(512, 1024), nn.ReLU(), nn.Linear(1024, 1024)).to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
all_outputs = []
start = time.monotonic()
for step in range(100_000):  # noqa: B007 - reported after the loop
    x = torch.randn(256, 512, device=device)
    out = model(x)
    loss = out.pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    all_outputs.append(out.detach())
    if time.monotonic() - start > 2.5:
        break
torch.cuda.synchronize()
print(f"{step + 1} steps, kept {len(all_outputs)} batches")
