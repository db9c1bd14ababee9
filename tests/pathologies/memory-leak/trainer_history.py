"""Leak: a trainer object logs each step's outputs (detached tensors) in an attribute."""

import time

import torch
from torch import nn


class Trainer:
    def __init__(self):
        self.model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 1024))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01)
        self.history = []

    def step(self, x):
        out = self.model(x)
        loss = out.pow(2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.history.append({"loss": loss.item(), "output": out.detach().clone()})

    def fit(self, seconds):
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            self.step(torch.randn(256, 64))


trainer = Trainer()
trainer.fit(2.5)
print(len(trainer.history), "steps")
