"""The same threaded matrix products, with BLAS limited so that threads x BLAS threads fit the
cores (threadpoolctl)."""

import os
import threading
import time

import numpy as np
from threadpoolctl import threadpool_limits

WORKERS = 2


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
    with threadpool_limits(max(1, (os.cpu_count() or 1) // WORKERS)):
        threads = [threading.Thread(target=evaluate, args=(seed, 1.5, results, seed))
                   for seed in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    print(sum(results))
