"""Data-parallel evaluation with four threads, each doing matrix products with NumPy's default
BLAS pool (one BLAS thread per core): 4 x cores threads fight over the cores."""

import threading
import time

import numpy as np


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
    results = [0] * 4
    threads = [threading.Thread(target=evaluate, args=(seed, 1.5, results, seed))
               for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(sum(results))
