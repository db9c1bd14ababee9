"""Overhead of the lock instrumentation on lock-heavy code: median wall-time ratios.

Runs each workload three ways, interleaved (rotating order): plain `python W`,
`dldoctor profile --threads off W` (sampler etc., no lock wrappers) and `dldoctor profile W`
(default: locks instrumented), and prints per workload the median of the target's own ELAPSED
ratios default/plain (all of dldoctor) and default/off (the lock wrappers alone).

    python benchmarks/threads_overhead.py [--rounds 5] [--workload lock_loop ...]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from interleave import PLAIN, ratios, rounds

HERE = Path(__file__).resolve().parent
WORKLOADS = {
    "lock_loop": (HERE / "workloads" / "lock_loop.py", ["1000000"]),
    "queue_pipeline": (HERE / "workloads" / "queue_pipeline.py", ["200000"]),
}
VARIANTS = {"plain": PLAIN, "off": ["--threads", "off"], "default": []}
PAIRS = (("default", "plain"), ("default", "off"), ("off", "plain"))


def measure(name: str, count: int) -> dict[str, list[float]]:
    """Return per-round ratios (default/plain, default/off, off/plain) for one workload."""
    script, args = WORKLOADS[name]
    results = rounds(script, args, VARIANTS, count)
    return {f"{top}/{bottom}": ratios(results, top, bottom) for top, bottom in PAIRS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workload", action="append", choices=sorted(WORKLOADS))
    args = parser.parse_args()
    print(f"{'workload':<16} {'ratio':<14} {'median':>8} {'(min..max)':>16}")
    for name in args.workload or sorted(WORKLOADS):
        for label, values in measure(name, args.rounds).items():
            print(f"{name:<16} {label:<14} {statistics.median(values):>8.3f} "
                  f"{min(values):>7.3f}..{max(values):<7.3f}")


if __name__ == "__main__":
    main()
