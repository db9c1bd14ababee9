"""Shared by the overhead benchmarks: run a workload (a script printing ``ELAPSED <seconds>``
for its own timed section) plain and under `dldoctor profile` variants, interleaved in rotating
order with a discarded warm-up, and return the times of every round."""

from __future__ import annotations

import math
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

PLAIN = None  # a variant whose options are None runs `python W` without dldoctor


# One run: (its own ELAPSED seconds, end-to-end wall seconds, median step, 99th-percentile
# step; the step figures are NaN for a workload that prints no ``STEPS <p50> <p99>`` line).
Timing = tuple[float, float, float, float]
NAN = float("nan")


def elapsed(cmd: list[str], env: Mapping[str, str] | None = None) -> Timing:
    """Run ``cmd``; return its ``Timing``."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    match = re.search(r"ELAPSED ([0-9.]+)", proc.stdout)
    if match is None:
        raise SystemExit(f"workload printed no ELAPSED line: {proc.stdout!r} {proc.stderr!r}")
    steps = re.search(r"STEPS ([0-9.e-]+) ([0-9.e-]+)", proc.stdout)
    p50, p99 = (float(steps.group(1)), float(steps.group(2))) if steps else (NAN, NAN)
    return float(match.group(1)), wall, p50, p99


def command(script: Path, args: list[str], options: list[str] | None, out: Path) -> list[str]:
    """Return the argv running ``script`` plain (``options`` None) or under dldoctor."""
    if options is None:
        return [sys.executable, str(script), *args]
    return [sys.executable, "-m", "dldoctor", "profile", "-q", "--out", str(out), *options,
            str(script), *args]


def rounds(script: Path, args: list[str], variants: Mapping[str, list[str] | None], count: int,
           env: Mapping[str, str] | None = None) -> list[dict[str, Timing]]:
    """Return, per round, variant name -> its ``Timing``; the order rotates every round."""
    with tempfile.TemporaryDirectory() as tmp:
        return rounds_of({name: command(script, args, options, Path(tmp) / name)
                          for name, options in variants.items()}, count, env)


def rounds_of(commands: Mapping[str, list[str]], count: int,
              env: Mapping[str, str] | None = None) -> list[dict[str, Timing]]:
    """``rounds`` for ready-made command lines (any profiler, not only dldoctor's); the first
    command, run once more before the rounds, is the discarded warm-up."""
    names = list(commands)
    elapsed(commands[names[0]], env)  # warm-up (page cache), discarded
    results = []
    for i in range(count):
        order = names[i % len(names):] + names[:i % len(names)]
        results.append({name: elapsed(commands[name], env) for name in order})
    return results


def ratios(results: list[dict[str, Timing]], top: str, bottom: str,
           wall: bool = False) -> list[float]:
    """Return per-round ratios ``top / bottom`` of ELAPSED (or of wall time)."""
    index = 1 if wall else 0
    return [r[top][index] / r[bottom][index] for r in results]


def step_ratio(results: list[dict[str, Timing]], top: str, bottom: str, which: int) -> float:
    """Return the median per-round ratio of the median (``which`` 2) or 99th-percentile (3)
    step, NaN where the workload reported none. They tell two costs apart: one every step pays
    (a hook, lost caches) moves the median step; a rare stall (a census) moves only the tail."""
    values = [r[top][which] / r[bottom][which] for r in results
              if not math.isnan(r[top][which]) and r[bottom][which]]
    return statistics.median(values) if values else NAN


def median_interval(values: list[float], level: float = 0.9, draws: int = 4000,
                    seed: int = 0) -> tuple[float, float]:
    """Return a bootstrap ``level`` confidence interval of the median of ``values``: how far
    the machine's noise leaves the median uncertain (a fixed seed keeps it reproducible)."""
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    tail = int(draws * (1 - level) / 2)
    return medians[tail], medians[draws - 1 - tail]


def min_ratio(results: list[dict[str, Timing]], top: str, bottom: str) -> float:
    """Return the ratio of the fastest ``top`` round to the fastest ``bottom`` round: noise on a
    shared machine only ever slows a run down, so the minima are the least disturbed figures."""
    return min(r[top][0] for r in results) / min(r[bottom][0] for r in results)
