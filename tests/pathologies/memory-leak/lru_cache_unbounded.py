"""Leak: an unbounded functools.lru_cache keyed by the batch index."""

import functools
import time

import numpy as np


@functools.lru_cache(maxsize=None)  # noqa: UP033 - as users write it
def augmented(index):
    rng = np.random.default_rng(index)
    return rng.standard_normal((128, 128))


start = time.monotonic()
total = 0.0
index = 0
while time.monotonic() - start < 2.5:
    total += float(augmented(index).sum())
    index += 1
    time.sleep(0.002)
print(index, round(total, 2))
