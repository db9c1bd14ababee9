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
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = {
    "numpy_train": (HERE / "workloads" / "numpy_train.py", ["400"]),
    "python_loop": (HERE / "workloads" / "python_loop.py", ["300"]),
    "torch_train": (HERE / "workloads" / "torch_train.py", ["2500"]),
}
BUDGET = 1.03


def run_once(script: Path, args: list[str], instrumented: bool, out: Path) -> tuple[float, float]:
    """Return (target's own ELAPSED seconds, end-to-end wall seconds)."""
    if instrumented:
        cmd = [sys.executable, "-m", "dldoctor", "profile", "-q", "--out", str(out), str(script)]
    else:
        cmd = [sys.executable, str(script)]
    start = time.perf_counter()
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    match = re.search(r"ELAPSED ([0-9.]+)", proc.stdout)
    if match is None:
        raise SystemExit(f"workload printed no ELAPSED line: {proc.stdout!r} {proc.stderr!r}")
    return float(match.group(1)), wall


def measure(name: str, pairs: int) -> dict[str, float]:
    """Return median ratios for one workload over ``pairs`` interleaved pairs (ABBA order)."""
    script, args = WORKLOADS[name]
    inner, outer = [], []
    with tempfile.TemporaryDirectory() as tmp:
        run_once(script, args, False, Path(tmp))  # warm-up (page cache), discarded
        for i in range(pairs):
            order = (False, True) if i % 2 == 0 else (True, False)
            results = {flag: run_once(script, args, flag, Path(tmp) / f"r{i}") for flag in order}
            inner.append(results[True][0] / results[False][0])
            outer.append(results[True][1] / results[False][1])
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
