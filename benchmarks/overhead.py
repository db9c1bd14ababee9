"""Overhead of default-mode `dldoctor profile`: instrumented / plain wall-time ratios.

Runs each workload plain (`python W`) and under `dldoctor profile -q W`, interleaved in ABBA
order, and prints per workload the median ratio of

- the target's own measured time (ELAPSED, printed by the workload: the in-run overhead the
  budget in DESIGN.md §6 is about: <= 1.03), and
- the end-to-end wall time of the command (adds dldoctor's fixed start-up and report writing).

    python benchmarks/overhead.py [--pairs 7] [--workload numpy_train ...]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from interleave import PLAIN, ratios, rounds

HERE = Path(__file__).resolve().parent
WORKLOADS = {
    "numpy_train": (HERE / "workloads" / "numpy_train.py", ["400"]),
    "python_loop": (HERE / "workloads" / "python_loop.py", ["300"]),
    "torch_train": (HERE / "workloads" / "torch_train.py", ["2500"]),
}
BUDGET = 1.03


VARIANTS = {"plain": PLAIN, "profiled": []}


def measure(name: str, pairs: int) -> dict[str, float]:
    """Return median ratios for one workload over ``pairs`` interleaved pairs (ABBA order)."""
    script, args = WORKLOADS[name]
    results = rounds(script, args, VARIANTS, pairs)
    inner = ratios(results, "profiled", "plain")
    outer = ratios(results, "profiled", "plain", wall=True)
    return {"inner": statistics.median(inner), "outer": statistics.median(outer),
            "inner_min": min(inner), "inner_max": max(inner)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--workload", action="append", choices=sorted(WORKLOADS))
    args = parser.parse_args()
    names = args.workload or sorted(WORKLOADS)
    print(f"{'workload':<14} {'in-run ratio':>12} {'(min..max)':>16} {'end-to-end':>11}  budget")
    worst = 0.0
    for name in names:
        r = measure(name, args.pairs)
        worst = max(worst, r["inner"])
        print(f"{name:<14} {r['inner']:>12.4f} {r['inner_min']:>7.3f}..{r['inner_max']:<7.3f} "
              f"{r['outer']:>11.4f}  {'ok' if r['inner'] <= BUDGET else 'OVER'} (<= {BUDGET})")
    print(f"worst in-run median ratio: {worst:.4f}")


if __name__ == "__main__":
    main()
