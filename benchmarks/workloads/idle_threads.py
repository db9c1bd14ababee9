"""Benchmark workload: a pure-Python loop beside many threads parked in ``Event.wait`` (a
thread-per-connection server, a big executor at rest): what every sample costs per idle
thread. Prints ELAPSED. Usage: idle_threads.py ROUNDS [THREADS]"""

import sys
import threading
import time


def work(n: int) -> float:
    total = 0.0
    for i in range(n):
        total += (i % 7) * 0.5 - (i % 3)
    return total


def main(rounds: int, idle: int) -> None:
    stop = threading.Event()
    parked = [threading.Thread(target=stop.wait, daemon=True) for _ in range(idle)]
    for thread in parked:
        thread.start()
    start = time.perf_counter()
    for _ in range(rounds):
        work(200_000)
    print(f"ELAPSED {time.perf_counter() - start:.6f}")
    stop.set()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100,
         int(sys.argv[2]) if len(sys.argv) > 2 else 200)
