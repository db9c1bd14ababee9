"""Accuracy of `dldoctor gate run` on this machine: false positives and detection.

Runs complete, independent gates (warm-up, adaptive interleaved ABBA pairs, bootstrap verdict)
on the sleep-dominated workload ``workloads/gate_sleeper.py`` for four scenarios and prints,
per scenario, how often the gate said regression / inconclusive / pass and the pairs it used:

- ``A/A``: the same command on both sides (every regression is a false positive);
- ``+2 %``: 2 % slower (below the 10 % threshold: must not be called a regression);
- ``+30 %``: 30 % slower (must be caught);
- ``alloc +10 %``: same time, 10 % more allocated bytes (the deterministic gate must catch it).

    python benchmarks/gate_accuracy.py [--gates 20] [--min-pairs 6] [--max-pairs 16]
                                       [--ignore wall_s] [--scenario A/A ...]
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from dldoctor.gate.evaluate import Settings
from dldoctor.gate.pipeline import run_gate
from dldoctor.gate.runner import PairPlan, Side

WORKLOAD = Path(__file__).resolve().parent / "workloads" / "gate_sleeper.py"
SCENARIOS = {"A/A": ("1", "1"), "+2 %": ("1", "1.02"), "+30 %": ("1", "1.3"),
             "alloc +10 %": ("1", "1 1.1")}


def command(args: str) -> str:
    """Return the shell command running the workload with ``args``."""
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(WORKLOAD))} {args}"


def main() -> None:
    """Run the scenarios and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gates", type=int, default=20)
    parser.add_argument("--min-pairs", type=int, default=6)
    parser.add_argument("--max-pairs", type=int, default=16)
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS),
                        help="run only these scenarios (default: all)")
    parser.add_argument("--ignore", action="append", default=[],
                        help="metrics to leave out, e.g. wall_s")
    options = parser.parse_args()
    plan = PairPlan(options.min_pairs, options.max_pairs, 1, 60)
    print(f"{'scenario':<12} {'gates':>5} {'regression':>10} {'inconcl.':>8} {'pass':>5} "
          f"{'pairs (median)':>14} {'seconds':>8}")
    for name in options.scenario or SCENARIOS:
        base, cand = SCENARIOS[name]
        verdicts: Counter[str] = Counter()
        pairs = []
        started = time.perf_counter()
        for seed in range(options.gates):
            result = run_gate(Side("baseline", command(base)), Side("candidate", command(cand)),
                              plan, Settings(seed=seed, ignore=tuple(options.ignore)))
            verdicts[result.verdict] += 1
            pairs.append(result.pairs)
        print(f"{name:<12} {options.gates:>5} {verdicts['regression']:>10} "
              f"{verdicts['inconclusive']:>8} {verdicts['pass']:>5} "
              f"{statistics.median(pairs):>14g} {time.perf_counter() - started:>8.1f}",
              flush=True)


if __name__ == "__main__":
    main()
