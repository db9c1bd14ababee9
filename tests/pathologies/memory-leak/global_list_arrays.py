"""Leak: a module-level list keeps every step's activations (NumPy, no steps marked)."""

import time

import numpy as np

rng = np.random.default_rng(0)
w1 = rng.standard_normal((256, 256)) * 0.05
w2 = rng.standard_normal((256, 10)) * 0.05
activation_log = []  # "for debugging": every batch's hidden activations


def forward(x):
    hidden = np.maximum(x @ w1, 0.0)
    activation_log.append(hidden)
    return hidden @ w2


start = time.monotonic()
for step in range(100_000):  # noqa: B007 - reported after the loop
    x = rng.standard_normal((64, 256))
    logits = forward(x)
    loss = float(np.mean(logits ** 2))
    time.sleep(0.002)  # stands for data loading
    if time.monotonic() - start > 2.5:
        break
print(f"done after {step + 1} steps, loss {loss:.3f}")
