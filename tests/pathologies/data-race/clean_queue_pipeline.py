"""A producer/consumer pipeline: loader threads put batches on a queue, one trainer thread
takes them off and owns the weights; only the queue is shared."""

import queue
import threading

import numpy as np

STOP = object()


def loader(seed, batches, out):
    rng = np.random.default_rng(seed)
    for _ in range(batches):
        out.put(rng.standard_normal((64, 32)))
    out.put(STOP)


def trainer(inbox, producers, state):
    w = np.zeros(32)
    finished = 0
    steps = 0
    while finished < producers:
        batch = inbox.get()
        if batch is STOP:
            finished += 1
            continue
        w -= 0.001 * batch.mean(axis=0)
        steps += 1
    state["w"], state["steps"] = w, steps


if __name__ == "__main__":
    batches = queue.Queue(maxsize=8)
    state = {}
    loaders = [threading.Thread(target=loader, args=(seed, 300, batches)) for seed in range(3)]
    consumer = threading.Thread(target=trainer, args=(batches, len(loaders), state))
    for thread in [*loaders, consumer]:
        thread.start()
    for thread in [*loaders, consumer]:
        thread.join()
    print(state["steps"])
