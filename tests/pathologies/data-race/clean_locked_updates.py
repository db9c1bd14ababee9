"""The same shared-weights trainer, but every update of shared state holds the trainer's lock
(and the counter goes through an acquire/release pair). Each step computes its gradient on a
1024-row batch outside the lock, as data-parallel training does, so the lock is lightly held;
two threads with single-threaded BLAS fit two cores.

(With 256-row batches and four threads, the lock was held 15-34 % of the time and the threads
waited for it in most runs: that is lock contention, and once in ~40 runs a warning of it.)"""

import threading

import numpy as np
from threadpoolctl import threadpool_limits


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
            for lo in range(0, len(shard_y), 1024):
                g = self.gradient(shard_x[lo:lo + 1024], shard_y[lo:lo + 1024])
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
    shards = np.array_split(np.arange(len(y)), 2)
    threads = [threading.Thread(target=trainer.worker, args=(x[idx], y[idx], 1000))
               for idx in shards]
    with threadpool_limits(1):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    print(trainer.steps)
