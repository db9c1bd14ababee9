"""Clean (GPU): CUDA training whose allocator pool fills on the first steps, then stays flat."""

import sys
import time

import torch
from torch import nn

if not torch.cuda.is_available():
    print("no CUDA device")
    sys.exit(0)

device = torch.device("cuda")
model = nn.Sequential(nn.Linear(512, 2048), nn.ReLU(), nn.Linear(2048, 512)).to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)  # state allocated on the first step
buffer = torch.empty(64, 256, 512, device=device)  # a big preallocated ring of outputs
start = time.monotonic()
step = 0
while time.monotonic() - start < 2.5:
    x = torch.randn(256, 512, device=device)
    out = model(x)
    loss = out.pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    buffer[step % 64].copy_(out.detach())
    step += 1
torch.cuda.synchronize()
print(step, float(loss))
