"""Overhead of the lock instrumentation on lock-heavy code: median wall-time ratios.

Runs each workload three ways, interleaved (rotating order): plain `python W`,
`dldoctor profile --threads off W` (sampler etc., no lock wrappers) and `dldoctor profile W`
(default: locks instrumented), and prints per workload the median of the target's own ELAPSED
ratios default/plain (all of dldoctor) and default/off (the lock wrappers alone).

    python benchmarks/threads_overhead.py [--rounds 5] [--workload lock_loop ...]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = {
    "lock_loop": (HERE / "workloads" / "lock_loop.py", ["1000000"]),
    "queue_pipeline": (HERE / "workloads" / "queue_pipeline.py", ["200000"]),
}
VARIANTS = ("plain", "off", "default")


def run_once(script: Path, args: list[str], variant: str, out: Path) -> float:
    """Return the workload's own ELAPSED seconds under ``variant``."""
    cmd = [sys.executable, str(script)]
    if variant != "plain":
        cmd = [sys.executable, "-m", "dldoctor", "profile", "-q", "--out", str(out),
               "--threads", variant, str(script)]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, check=True)
    match = re.search(r"ELAPSED ([0-9.]+)", proc.stdout)
    if match is None:
        raise SystemExit(f"workload printed no ELAPSED line: {proc.stdout!r} {proc.stderr!r}")
    return float(match.group(1))


def measure(name: str, rounds: int) -> dict[str, list[float]]:
    """Return per-round ratios (default/plain, default/off, off/plain) for one workload."""
    script, args = WORKLOADS[name]
    ratios: dict[str, list[float]] = {"default/plain": [], "default/off": [], "off/plain": []}
    with tempfile.TemporaryDirectory() as tmp:
        run_once(script, args, "plain", Path(tmp))  # warm-up, discarded
        for i in range(rounds):
            order = VARIANTS[i % 3:] + VARIANTS[:i % 3]
            t = {v: run_once(script, args, v, Path(tmp) / f"r{i}{v}") for v in order}
            ratios["default/plain"].append(t["default"] / t["plain"])
            ratios["default/off"].append(t["default"] / t["off"])
            ratios["off/plain"].append(t["off"] / t["plain"])
    return ratios


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
