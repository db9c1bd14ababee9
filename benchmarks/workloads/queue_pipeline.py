"""Queue-based pipeline: a producer thread puts N small NumPy batches on a bounded
``queue.Queue``, a consumer thread takes them off and reduces them. Prints ``ELAPSED``."""

import queue
import sys
import threading
import time

import numpy as np

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
batches = queue.Queue(maxsize=64)


def produce(n):
    batch = np.ones(16)
    for _ in range(n):
        batches.put(batch)
    batches.put(None)


def consume(out):
    total = 0.0
    while (batch := batches.get()) is not None:
        total += batch[0]
    out.append(total)


start = time.perf_counter()
out = []
threads = [threading.Thread(target=produce, args=(N,)), threading.Thread(target=consume,
                                                                         args=(out,))]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(f"ELAPSED {time.perf_counter() - start:.6f}")
