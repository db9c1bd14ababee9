"""Data-parallel SGD where every worker thread updates the shared weights and step counter
in place, with no lock ("Hogwild" by accident): updates from different threads interleave."""

import threading

import numpy as np


class Trainer:
    def __init__(self, features):
        self.w = np.zeros(features)
        self.steps = 0

    def gradient(self, x, y):
        return x.T @ (x @ self.w - y) / len(y)

    def worker(self, shard_x, shard_y, epochs):
        for _ in range(epochs):
            for lo in range(0, len(shard_y), 32):
                g = self.gradient(shard_x[lo:lo + 32], shard_y[lo:lo + 32])
                self.w -= 0.01 * g
                self.steps += 1


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4096, 64))
    y = x @ rng.standard_normal(64)
    trainer = Trainer(64)
    shards = np.array_split(np.arange(len(y)), 4)
    threads = [threading.Thread(target=trainer.worker, args=(x[idx], y[idx], 150))
               for idx in shards]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(trainer.steps)
