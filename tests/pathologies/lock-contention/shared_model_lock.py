"""Inference server style: four request threads share one model behind a lock and do the whole
forward pass while holding it, so they mostly queue for the lock."""

import threading
import time

import numpy as np

rng = np.random.default_rng(0)
weights = [rng.standard_normal((256, 256)) for _ in range(4)]
model_lock = threading.Lock()
served = []


def forward(x):
    for w in weights:
        x = np.tanh(x @ w)
    return x


def handle_requests(seconds):
    deadline = time.perf_counter() + seconds
    batch = rng.standard_normal((64, 256))
    count = 0
    while time.perf_counter() < deadline:
        with model_lock:
            out = forward(batch)
        count += out.shape[0]
    served.append(count)


if __name__ == "__main__":
    threads = [threading.Thread(target=handle_requests, args=(1.5,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(sum(served))
