"""Clean: training, then evaluation under torch.no_grad()."""

import time

import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)


def train(seconds):
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        x, y = torch.randn(64, 64), torch.randint(0, 10, (64,))
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@torch.no_grad()
def evaluate(seconds):
    model.eval()
    correct = total = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        x, y = torch.randn(256, 64), torch.randint(0, 10, (256,))
        logits = model(x)
        correct += int((logits.argmax(1) == y).sum())
        total += len(y)
        time.sleep(0.001)
    return correct / total


train(0.8)
print(f"accuracy {evaluate(2.0):.3f}")
