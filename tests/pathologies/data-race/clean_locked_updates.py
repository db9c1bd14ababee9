"""The same shared-weights trainer, but every update of shared state holds the trainer's lock
(and the counter goes through an acquire/release pair). Each step computes its gradient on a
256-row batch outside the lock, as data-parallel training does, so the lock is lightly held."""

import threading

import numpy as np


class Trainer:
    def __init__(self, features):
        self.w = np.zeros(features)
        self.steps = 0
        self._update_lock = threading.Lock()
        self._count_mu = threading.Lock()

    def gradient(self, x, y):
        return x.T @ (x @ self.w - y) / len(y)

    def apply(self, g):
        self.w -= 0.01 * g

    def worker(self, shard_x, shard_y, epochs):
        for _ in range(epochs):
            for lo in range(0, len(shard_y), 256):
                g = self.gradient(shard_x[lo:lo + 256], shard_y[lo:lo + 256])
                with self._update_lock:
                    self.apply(g)
                self._count_mu.acquire()
                try:
                    self.steps += 1
                finally:
                    self._count_mu.release()


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4096, 256))
    y = x @ rng.standard_normal(256)
    trainer = Trainer(256)
    shards = np.array_split(np.arange(len(y)), 4)
    threads = [threading.Thread(target=trainer.worker, args=(x[idx], y[idx], 1000))
               for idx in shards]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(trainer.steps)
