"""Feature extraction split over four threads, written in plain Python: the threads take turns
on the GIL, so four threads are no faster than one."""

import threading
import time


def tokenize_and_count(lines, seconds, out, slot):
    counts = {}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for line in lines:
            for word in line.split():
                counts[word] = counts.get(word, 0) + 1
        total = 0
        for i in range(20_000):
            total += (i * i) % 7
    out[slot] = (counts, total)


if __name__ == "__main__":
    text = [f"the quick brown fox jumps over the lazy dog {i}" for i in range(200)]
    results = [None] * 4
    threads = [threading.Thread(target=tokenize_and_count, args=(text, 1.5, results, slot))
               for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(sum(len(r[0]) for r in results))
