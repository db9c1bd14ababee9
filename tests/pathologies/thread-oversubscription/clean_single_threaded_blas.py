"""Twice as many threads as cores run matrix products, each with single-threaded BLAS
(threadpoolctl): more threads than cores, but no BLAS pool that spins or waits at a barrier.
The OS shares the cores out; at most an info that more threads add no speed."""

import os
import threading
import time

import numpy as np
from threadpoolctl import threadpool_limits

WORKERS = min(8, 2 * (os.cpu_count() or 1))


def evaluate(seed, seconds, out, slot):
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((192, 192))
    w2 = rng.standard_normal((192, 192))
    x = rng.standard_normal((192, 192))
    deadline = time.perf_counter() + seconds
    done = 0
    while time.perf_counter() < deadline:
        h = np.maximum(x @ w1, 0.0)
        logits = h @ w2
        done += logits.shape[0]
    out[slot] = done


if __name__ == "__main__":
    results = [0] * WORKERS
    with threadpool_limits(1):
        threads = [threading.Thread(target=evaluate, args=(seed, 1.5, results, seed))
                   for seed in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    print(sum(results))
