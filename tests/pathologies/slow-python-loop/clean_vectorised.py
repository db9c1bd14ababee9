"""Control: the same kind of work with whole-array NumPy operations."""

import numpy as np

rng = np.random.default_rng(0)
weights = rng.normal(size=(256, 128))
params = rng.normal(size=200_000)
velocity = np.zeros_like(params)
target = rng.normal(size=200_000)
for _step in range(60):
    batch = rng.normal(size=(128, 256))
    hidden = np.maximum(batch @ weights, 0.0)
    weights -= 1e-6 * (batch.T @ hidden)
    grads = 2 * (params - target)
    velocity = 0.9 * velocity + 0.1 * grads
    params -= 0.01 * velocity
print(float(weights.sum()), float(np.abs(params - target).mean()))
