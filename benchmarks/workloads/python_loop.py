"""Benchmark workload: pure-Python numeric loops (the sampler's worst case). Prints ELAPSED."""

import sys
import time


def work(n: int) -> float:
    total = 0.0
    for i in range(n):
        total += (i % 7) * 0.5 - (i % 3)
    return total


def main(rounds: int) -> None:
    start = time.perf_counter()
    for _ in range(rounds):
        work(200_000)
    print(f"ELAPSED {time.perf_counter() - start:.6f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
