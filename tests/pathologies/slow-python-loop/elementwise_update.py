"""SGD with momentum applied to every parameter one element at a time."""

import numpy as np


def sgd_momentum(params, grads, velocity, lr=0.01, beta=0.9):
    for idx in range(len(params)):
        velocity[idx] = beta * velocity[idx] + (1 - beta) * grads[idx]
        params[idx] = params[idx] - lr * velocity[idx]


rng = np.random.default_rng(1)
params = rng.normal(size=60_000)
velocity = np.zeros_like(params)
target = rng.normal(size=60_000)
for _step in range(15):
    grads = 2 * (params - target)
    sgd_momentum(params, grads, velocity)
print(float(np.abs(params - target).mean()))
