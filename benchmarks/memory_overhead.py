"""Overhead of the in-target memory collector (`heap`): median wall-time ratios.

Runs each workload three ways, interleaved (rotating order): plain `python W`,
`dldoctor profile --memory off W` (everything but the memory collector) and `dldoctor profile W`
(default mode), and prints per workload the median of the target's own ELAPSED ratios
default/plain (all of dldoctor), default/off (the memory collector alone) and off/plain.
`--mode trace` measures `--memory=trace` instead of the default mode (its cost is opt-in).

    python benchmarks/memory_overhead.py [--rounds 5] [--workload torch_train ...] [--mode trace]
                                         [--one-thread]

`--one-thread` runs BLAS/OpenMP/torch pools with one thread: on a shared, loaded machine their
spinning workers make timings swing by 10x, which drowns a percent-level difference.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

from interleave import PLAIN, ratios, rounds

HERE = Path(__file__).resolve().parent
WORKLOADS = {
    "numpy_train": (HERE / "workloads" / "numpy_train.py", ["400"]),
    "python_loop": (HERE / "workloads" / "python_loop.py", ["300"]),
    "torch_train": (HERE / "workloads" / "torch_train.py", ["2500"]),
}
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
ENV = dict(os.environ)
PAIRS = (("default", "plain"), ("default", "off"), ("off", "plain"))


def measure(name: str, count: int, mode: str) -> dict[str, list[float]]:
    """Return per-round ratios (default/plain, default/off, off/plain) for one workload."""
    script, args = WORKLOADS[name]
    variants = {"plain": PLAIN, "off": ["--memory", "off"], "default": ["--memory", mode]}
    results = rounds(script, args, variants, count, ENV)
    return {f"{top}/{bottom}": ratios(results, top, bottom) for top, bottom in PAIRS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workload", action="append", choices=sorted(WORKLOADS))
    parser.add_argument("--mode", choices=("default", "trace"), default="default")
    parser.add_argument("--one-thread", action="store_true")
    args = parser.parse_args()
    if args.one_thread:
        ENV.update(ONE_THREAD)
    print(f"memory mode: {args.mode}")
    print(f"{'workload':<14} {'ratio':<14} {'median':>8} {'(min..max)':>16}")
    for name in args.workload or sorted(WORKLOADS):
        for label, values in measure(name, args.rounds, args.mode).items():
            print(f"{name:<14} {label:<14} {statistics.median(values):>8.3f} "
                  f"{min(values):>7.3f}..{max(values):<7.3f}")


if __name__ == "__main__":
    main()
