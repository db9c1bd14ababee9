"""Each thread accumulates into its own local array and writes its own slot of the results;
the main thread combines them after join(): nothing is shared while threads run."""

import threading

import numpy as np


def partial_gradient(x, y, w, results, slot):
    grad = np.zeros_like(w)
    count = 0
    for lo in range(0, len(y), 64):
        xb, yb = x[lo:lo + 64], y[lo:lo + 64]
        grad += xb.T @ (xb @ w - yb)
        count += len(yb)
    results[slot] = grad / count


class Worker(threading.Thread):
    def __init__(self, x, y, w):
        super().__init__()
        self.x, self.y, self.w = x, y, w
        self.loss = 0.0
        self.batches = 0

    def run(self):
        for lo in range(0, len(self.y), 64):
            err = self.x[lo:lo + 64] @ self.w - self.y[lo:lo + 64]
            self.loss += float(err @ err)
            self.batches += 1


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8192, 64))
    y = x @ rng.standard_normal(64)
    w = np.zeros(64)
    shards = np.array_split(np.arange(len(y)), 4)
    results = [None] * len(shards)
    threads = [threading.Thread(target=partial_gradient, args=(x[i], y[i], w, results, n))
               for n, i in enumerate(shards)]
    threads += [Worker(x[i], y[i], w) for i in shards]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(np.mean(results, axis=0).shape, sum(t.loss for t in threads if isinstance(t, Worker)))
