"""Benchmark workload: NumPy MLP training on digits (BLAS-bound), fixed work. Prints ELAPSED."""

import sys
import time

import numpy as np
from sklearn.datasets import load_digits

import dldoctor


def main(epochs: int) -> None:
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target
    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.05, (64, 256)).astype(np.float32)
    w2 = rng.normal(0, 0.05, (256, 256)).astype(np.float32)
    w3 = rng.normal(0, 0.05, (256, 10)).astype(np.float32)
    start = time.perf_counter()
    for _ in range(epochs):
        for i in range(0, len(x), 64):
            xb, yb = x[i:i + 64], y[i:i + 64]
            h1 = np.maximum(xb @ w1, 0)
            h2 = np.maximum(h1 @ w2, 0)
            logits = h2 @ w3
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            p[np.arange(len(yb)), yb] -= 1
            p /= len(yb)
            g2 = (p @ w3.T) * (h2 > 0)
            g1 = (g2 @ w2.T) * (h1 > 0)
            w3 -= 0.1 * (h2.T @ p)
            w2 -= 0.1 * (h1.T @ g2)
            w1 -= 0.1 * (xb.T @ g1)
            dldoctor.step()
    print(f"ELAPSED {time.perf_counter() - start:.6f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
