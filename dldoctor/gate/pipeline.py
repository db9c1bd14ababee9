"""The gate's operations, one function each, independent of the command line:
``run_gate`` (interleaved pairs), ``compare_files``, ``collect_series`` (what a baseline
is saved from) and ``check_baseline``. Each returns data; nothing here prints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dldoctor.gate.baseline import fingerprint, fingerprint_warnings
from dldoctor.gate.evaluate import Settings, compare_paired, compare_series
from dldoctor.gate.metrics import load_series
from dldoctor.gate.model import INCONCLUSIVE, REGRESSION, GateResult, MetricSeries
from dldoctor.gate.runner import (
    PairPlan,
    Pairs,
    Side,
    count_instructions,
    run_once,
    run_pairs,
    valgrind_available,
)

NO_VALGRIND = "valgrind not found: instruction counts skipped"


def run_gate(baseline: Side, candidate: Side, plan: PairPlan, settings: Settings,
             instructions: bool = False,
             progress: Callable[[str], None] = lambda _line: None) -> GateResult:
    """Run both sides interleaved (adding pairs while a verdict is inconclusive and none is a
    regression yet) and return the verdicts; with ``instructions``, also count instructions
    once per side (callgrind)."""

    def more_needed(pairs: Pairs) -> bool:
        found = {r.verdict for r in compare_paired(pairs.baseline, pairs.candidate, settings)}
        return INCONCLUSIVE in found and REGRESSION not in found

    pairs = run_pairs(baseline, candidate, plan, more_needed, progress)
    results = compare_paired(pairs.baseline, pairs.candidate, settings)
    warnings = []
    if instructions and valgrind_available():
        progress("counting instructions under callgrind")
        counted = compare_paired([count_instructions(baseline, plan.timeout_s)],
                                 [count_instructions(candidate, plan.timeout_s)], settings)
        results += counted
    elif instructions:
        warnings.append(NO_VALGRIND)
    return GateResult(results, "run", len(pairs), baseline.command, candidate.command,
                      warnings, fingerprint())


def compare_files(baseline: Path, candidate: Path, settings: Settings) -> GateResult:
    """Compare two saved files (reports, baselines, gate results, metrics JSON)."""
    base, cand = load_series(baseline), load_series(candidate)
    warnings = fingerprint_warnings(base.fingerprint, cand.fingerprint, str(baseline))
    return GateResult(compare_series(base, cand, settings), "compare",
                      baseline_label=str(baseline), candidate_label=str(candidate),
                      warnings=warnings, fingerprint=cand.fingerprint)


def collect_series(side: Side, runs: int, timeout_s: float | None = None,
                   instructions: bool = False) -> tuple[MetricSeries, list[str]]:
    """Run ``side`` ``runs`` times (fresh processes) and return its metric series and warnings."""
    measured = [run_once(side, timeout_s) for _ in range(runs)]
    warnings = []
    if instructions and valgrind_available():
        measured[0] = measured[0].merged(count_instructions(side, timeout_s))
    elif instructions:
        warnings.append(NO_VALGRIND)
    return MetricSeries.from_measurements(measured, side.command, fingerprint()), warnings


def check_baseline(stored: MetricSeries, current: MetricSeries, settings: Settings,
                   warnings: list[str] | None = None) -> GateResult:
    """Compare ``current`` against the baseline ``stored`` on the baseline's metrics only
    (a metric the baseline lacks is not judged; one the current run lacks is reported)."""
    wanted = MetricSeries({k: v for k, v in current.samples.items() if k in stored.samples},
                          {k: v for k, v in current.specs.items() if k in stored.samples},
                          current.fingerprint, current.label)
    notes = [*(warnings or []),
             *fingerprint_warnings(stored.fingerprint, current.fingerprint or fingerprint())]
    return GateResult(compare_series(stored, wanted, settings), "check",
                      baseline_label=stored.label, candidate_label=current.label or "current",
                      warnings=notes, fingerprint=current.fingerprint)

