"""Control: data already on the device, a model big enough to keep the GPU busy."""

import torch
from torch import nn

device = "cuda" if torch.cuda.is_available() else "cpu"
width, batch, steps = (4096, 1024, 300) if device == "cuda" else (256, 64, 100)
torch.manual_seed(0)
x = torch.randn(batch * 8, width, device=device)
y = torch.randint(0, 10, (batch * 8,), device=device)
model = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                      nn.Linear(width, 10)).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
for step in range(steps):
    start = (step % 8) * batch
    optimizer.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x[start:start + batch]), y[start:start + batch]).backward()
    optimizer.step()
print("done")
