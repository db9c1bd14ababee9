"""Leak: per-step metrics kept in a defaultdict of lists, including whole arrays."""

import time
from collections import defaultdict

import numpy as np


def run(seconds):
    rng = np.random.default_rng(0)
    metrics = defaultdict(list)
    w = rng.standard_normal((256, 64)) * 0.1
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        x = rng.standard_normal((128, 256))
        scores = np.tanh(x @ w)
        metrics["mean_score"].append(float(scores.mean()))
        metrics["scores"].append(scores)
        time.sleep(0.002)
    return {k: len(v) for k, v in metrics.items()}


print(run(2.5))
