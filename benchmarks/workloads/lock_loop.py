"""Lock-heavy loop: two threads increment a shared counter under one lock, N times each.
Prints ``ELAPSED <seconds>`` (the timed part only)."""

import sys
import threading
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
lock = threading.Lock()
counter = [0]


def work(n):
    for _ in range(n):
        with lock:
            counter[0] += 1


start = time.perf_counter()
threads = [threading.Thread(target=work, args=(N,)) for _ in range(2)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(f"ELAPSED {time.perf_counter() - start:.6f}")
