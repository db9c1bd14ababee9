"""Worker threads compute outside the lock and only add their result to a shared total under
it: the lock is rarely contended."""

import threading
import time

import numpy as np

total = {"samples": 0, "loss": 0.0}
total_lock = threading.Lock()


def worker(seed, seconds):
    rng = np.random.default_rng(seed)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        x = rng.standard_normal(20_000)
        loss = float(np.mean(np.tanh(x) ** 2))
        time.sleep(0.002)
        with total_lock:
            total["samples"] += x.size
            total["loss"] += loss


if __name__ == "__main__":
    threads = [threading.Thread(target=worker, args=(seed, 1.2)) for seed in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(total["samples"])
