"""Leak: the running loss is accumulated as a tensor, chaining every step's autograd graph."""

import time

import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
loss_fn = nn.CrossEntropyLoss()


def train(seconds):
    running_loss = 0.0
    start = time.monotonic()
    for step in range(100_000):  # noqa: B007 - used after the loop
        x = torch.randn(16, 32)
        y = torch.randint(0, 4, (16,))
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        running_loss += loss
        if time.monotonic() - start > seconds:
            break
    return running_loss / (step + 1)


print(f"mean loss {float(train(3.5)):.3f}")
