"""Clean: a bounded LRU cache of decoded samples (OrderedDict with eviction)."""

import time
from collections import OrderedDict

import numpy as np

import dldoctor

CAPACITY = 64
cache = OrderedDict()


def load(index):
    if index in cache:
        cache.move_to_end(index)
        return cache[index]
    sample = np.random.default_rng(index).standard_normal((256, 256))
    cache[index] = sample
    if len(cache) > CAPACITY:
        cache.popitem(last=False)
    return sample


start = time.monotonic()
step = 0
total = 0.0
while time.monotonic() - start < 2.5:
    total += float(load(step).mean())
    step += 1
    time.sleep(0.002)
    dldoctor.step()
print(step, len(cache), round(total, 3))
