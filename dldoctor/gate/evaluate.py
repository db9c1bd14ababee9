"""Turn two sides' metrics into per-metric verdicts (``MetricResult``), paired or not."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatch

from dldoctor.gate import stats
from dldoctor.gate.model import (
    DEFAULT_THRESHOLDS,
    KINDS,
    MISSING,
    PASS,
    REGRESSION,
    TIME,
    GateInputError,
    Measurement,
    MetricResult,
    MetricSeries,
    MetricSpec,
    median,
)


@dataclass(frozen=True)
class Thresholds:
    """Relative thresholds: per metric name, else the spec's own, else per kind."""

    by_kind: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    by_name: dict[str, float] = field(default_factory=dict)

    def of(self, spec: MetricSpec) -> float:
        """Return the threshold that applies to ``spec``."""
        if spec.name in self.by_name:
            return self.by_name[spec.name]
        if spec.threshold is not None:
            return spec.threshold
        return self.by_kind.get(spec.kind, DEFAULT_THRESHOLDS[TIME])

    @classmethod
    def parse(cls, texts: Iterable[str]) -> Thresholds:
        """Build thresholds from ``--threshold`` values: ``10%`` or ``0.1`` (time metrics),
        ``memory=5%`` (a kind) or ``alloc_bytes=1%`` (one metric). Raise GateInputError."""
        by_kind = dict(DEFAULT_THRESHOLDS)
        by_name: dict[str, float] = {}
        for text in texts:
            key, _, value = text.rpartition("=")
            fraction = parse_fraction(value, text)
            if not key:
                by_kind[TIME] = fraction
            elif key in KINDS:
                by_kind[key] = fraction
            else:
                by_name[key] = fraction
        return cls(by_kind, by_name)


def parse_fraction(value: str, text: str | None = None) -> float:
    """Return a threshold as a fraction: ``10%``, ``10`` (percent, being >= 1) or ``0.1``.
    Raise GateInputError naming ``text`` (default: ``value``)."""
    text = value if text is None else text
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(%?)\s*", value)
    if not match:
        raise GateInputError(f"bad threshold {text!r}: expected e.g. 10%, 0.1 or memory=5%")
    number = float(match.group(1))
    fraction = number / 100 if match.group(2) or number >= 1 else number
    if fraction <= 0:
        raise GateInputError(f"bad threshold {text!r}: must be above 0")
    return fraction


@dataclass(frozen=True)
class Settings:
    """How verdicts are computed: thresholds, confidence level, bootstrap seed, and the
    metrics left out (``fnmatch`` patterns)."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    confidence: float = stats.CONFIDENCE
    seed: int = 0
    ignore: tuple[str, ...] = ()

    def judged(self, names: Iterable[str], specs: dict[str, MetricSpec]) -> list[str]:
        """Return the names not ignored, time metrics first, then memory, then
        deterministic, by name within a kind."""
        kept = [n for n in names if not any(fnmatch(n, p) for p in self.ignore)]
        return sorted(kept, key=lambda n: (KINDS.index(specs[n].kind)
                                           if specs[n].kind in KINDS else len(KINDS), n))


def _result(spec: MetricSpec, estimate: stats.Estimate, threshold: float,
            baseline: list[float], candidate: list[float], paired: bool) -> MetricResult:
    verdict = stats.decide(estimate, threshold)
    note = ""
    if verdict == REGRESSION and spec.floor:
        change = abs((median(candidate) or 0.0) - (median(baseline) or 0.0))
        if change <= spec.floor:
            verdict, note = PASS, f"change {change:g} {spec.unit} is within the floor"
    if estimate.n == 1 and spec.kind == TIME and not note:
        note = "a single sample on one side: no sound confidence interval"
    low, high = (stats.as_ratio(v, spec.better) for v in (estimate.low, estimate.high))
    return MetricResult(spec, threshold, verdict, baseline, candidate, paired,
                        stats.as_ratio(estimate.value, spec.better),
                        (min(low, high), max(low, high)), note)


def _missing(spec: MetricSpec, threshold: float, baseline: list[float],
             candidate: list[float], paired: bool) -> MetricResult:
    side = "candidate" if baseline else "baseline"
    return MetricResult(spec, threshold, MISSING, baseline, candidate, paired,
                        note=f"not measured on the {side} side")


def compare_paired(baseline: list[Measurement], candidate: list[Measurement],
                   settings: Settings) -> list[MetricResult]:
    """Return one result per metric from interleaved pairs (``baseline[i]`` with
    ``candidate[i]``), using only the pairs in which both sides have the metric."""
    specs = {**_specs(baseline), **_specs(candidate)}
    results = []
    for name in settings.judged(specs, specs):
        spec = specs[name]
        threshold = settings.thresholds.of(spec)
        both = [(b.values[name], c.values[name]) for b, c in zip(baseline, candidate)
                if name in b.values and name in c.values]
        if not both:
            base = [m.values[name] for m in baseline if name in m.values]
            cand = [m.values[name] for m in candidate if name in m.values]
            results.append(_missing(spec, threshold, base, cand, True))
            continue
        base, cand = [b for b, _ in both], [c for _, c in both]
        estimate = stats.paired_estimate(base, cand, spec.better, settings.confidence,
                                         seed=settings.seed)
        results.append(_result(spec, estimate, threshold, base, cand, True))
    return results


def compare_series(baseline: MetricSeries, candidate: MetricSeries,
                   settings: Settings) -> list[MetricResult]:
    """Return one result per metric of either side, comparing the sides' medians."""
    specs = {**candidate.specs, **baseline.specs}
    results = []
    for name in settings.judged(specs, specs):
        spec = specs[name]
        threshold = settings.thresholds.of(spec)
        base = baseline.samples.get(name, [])
        cand = candidate.samples.get(name, [])
        if not base or not cand:
            results.append(_missing(spec, threshold, base, cand, False))
            continue
        estimate = stats.unpaired_estimate(base, cand, spec.better, settings.confidence,
                                           seed=settings.seed)
        results.append(_result(spec, estimate, threshold, base, cand, False))
    return results


def _specs(runs: list[Measurement]) -> dict[str, MetricSpec]:
    specs: dict[str, MetricSpec] = {}
    for run in runs:
        specs.update({name: run.spec(name) for name in run.values})
    return specs

