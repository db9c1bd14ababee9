"""Class weights are moved to the device again in every step (they never change)."""

import torch
from torch import nn

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
torch.manual_seed(0)
x_train = torch.randn(2048, 16)
y_train = torch.randint(0, 4, (2048,))
class_weights = torch.tensor([1.0, 2.0, 0.5, 1.5])
model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)

for _epoch in range(3):
    for start in range(0, len(x_train), 64):
        xb = x_train[start:start + 64].to(device)
        yb = y_train[start:start + 64].to(device)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb, weight=class_weights.to(device))
        loss.backward()
        optimizer.step()
print("done")
