"""A hand-written matrix product in the forward pass of a NumPy network."""

import numpy as np


def matmul(a, b):
    rows, inner, cols = a.shape[0], a.shape[1], b.shape[1]
    out = np.zeros((rows, cols))
    for i in range(rows):
        for j in range(cols):
            total = 0.0
            for k in range(inner):
                total += a[i, k] * b[k, j]
            out[i, j] = total
    return out


rng = np.random.default_rng(0)
weights = rng.normal(size=(96, 48))
for _step in range(6):
    batch = rng.normal(size=(48, 96))
    hidden = np.maximum(matmul(batch, weights), 0.0)
    weights -= 1e-4 * matmul(batch.T, hidden)
print(float(weights.sum()))
