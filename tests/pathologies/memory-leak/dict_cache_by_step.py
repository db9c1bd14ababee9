"""Leak: a feature cache keyed by the step number never hits and never evicts."""

import time

import numpy as np

import dldoctor

rng = np.random.default_rng(0)
feature_cache = {}


def features(batch, step):
    key = (step, batch.shape)
    if key not in feature_cache:
        feature_cache[key] = np.tanh(batch @ batch.T)
    return feature_cache[key]


def main():
    start = time.monotonic()
    total = 0.0
    for step in range(100_000):
        batch = rng.standard_normal((96, 64))
        total += float(features(batch, step).mean())
        time.sleep(0.002)
        dldoctor.step()
        if time.monotonic() - start > 2.5:
            break
    print(f"{step + 1} steps, {total:.3f}")


if __name__ == "__main__":
    main()
