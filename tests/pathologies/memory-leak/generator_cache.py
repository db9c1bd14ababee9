"""Leak: a data generator keeps every batch it ever produced in its own local list.

No variable of the training loop names the list (it lives in the suspended generator), so the
default mode can only report the growth; --memory=trace names the allocating line."""

import sys
import time

import numpy as np


def batches(rng):
    produced = []
    while True:
        batch = rng.standard_normal((64, 512))
        produced.append(batch)  # "to be able to replay them later"
        yield batch


def train(seconds):
    weights = np.zeros((512, 10))
    start = time.monotonic()
    for batch in batches(np.random.default_rng(0)):
        weights += 1e-4 * batch.T @ np.tanh(batch @ weights + 1.0)
        time.sleep(0.002)
        if time.monotonic() - start > seconds:
            break
    return weights


print(float(train(float(sys.argv[1]) if len(sys.argv) > 1 else 2.5).sum()))
