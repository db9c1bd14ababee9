"""A small NumPy training script with one planted problem: a per-element Python loop.

    dldoctor profile examples/train_numpy.py --epochs 3
"""

import argparse

import numpy as np
from sklearn.datasets import load_digits

import dldoctor


def accuracy(probs, labels):
    """Deliberately slow: counts hits element by element in Python."""
    hits = 0.0
    for i in range(probs.shape[0]):
        best, best_p = 0, -1.0
        for j in range(probs.shape[1]):
            if probs[i, j] > best_p:
                best_p = probs[i, j] * 1.0
                best = j
        hits += (best == labels[i]) * 1.0
    return hits / len(labels)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target
    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.1, (64, 128)).astype(np.float32)
    w2 = rng.normal(0, 0.1, (128, 10)).astype(np.float32)
    for epoch in range(args.epochs):
        for start in range(0, len(x), 32):
            xb, yb = x[start:start + 32], y[start:start + 32]
            h = np.maximum(xb @ w1, 0)
            logits = h @ w2
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            grad = p.copy()
            grad[np.arange(len(yb)), yb] -= 1
            grad /= len(yb)
            gw2 = h.T @ grad
            gh = (grad @ w2.T) * (h > 0)
            w1 -= 0.5 * (xb.T @ gh)
            w2 -= 0.5 * gw2
            dldoctor.step()
        probs = np.maximum(x @ w1, 0) @ w2
        for _ in range(60):
            acc = accuracy(probs, y)
        print(f"epoch {epoch}: train accuracy {acc:.3f}")


if __name__ == "__main__":
    main()
