"""Threads doing large element-wise NumPy work on their own arrays: ufuncs release the GIL, so
the threads really run in parallel."""

import threading
import time

import numpy as np


def normalise(seed, seconds, out, slot):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(400_000)
    y = np.empty_like(x)
    deadline = time.perf_counter() + seconds
    rounds = 0
    while time.perf_counter() < deadline:
        np.tanh(x, out=y)
        np.multiply(y, 1.0001, out=y)
        np.exp(y, out=y)
        rounds += 1
    out[slot] = rounds


if __name__ == "__main__":
    results = [0, 0]
    threads = [threading.Thread(target=normalise, args=(seed, 1.5, results, seed))
               for seed in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(sum(results))
