"""A mask kept as a plain attribute (not a buffer) is copied to the input's device in every
forward call."""

import torch
from torch import nn


class MaskedMixer(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.proj = nn.Linear(width, width)
        self.mask = torch.tril(torch.ones(width, width))

    def forward(self, x):
        mask = self.mask.to(x.device)
        return self.proj(x) @ mask


device = "cuda" if torch.cuda.is_available() else "cpu"
model = nn.Sequential(MaskedMixer(64), nn.ReLU(), nn.Linear(64, 1)).to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
data = torch.randn(1024, 64, device=device)
target = data.sum(dim=1, keepdim=True)
for _epoch in range(4):
    for start in range(0, len(data), 32):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(data[start:start + 32]), target[start:start + 32])
        loss.backward()
        optimizer.step()
print("done")
