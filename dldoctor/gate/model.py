"""The gate's data model: what a metric is, what one side measured, and the verdicts.

A metric has a *kind* that sets how it is gated: ``time`` metrics are noisy and are judged by a
paired statistic with a loose threshold (10 %); ``memory`` metrics (peak RSS) are mildly noisy
(5 %); ``deterministic`` metrics (allocated bytes, allocation and instruction counts) repeat
exactly and are gated tightly (2 %)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from dldoctor.errors import DldoctorError

TIME, MEMORY, DETERMINISTIC = "time", "memory", "deterministic"
KINDS = (TIME, MEMORY, DETERMINISTIC)
DEFAULT_THRESHOLDS = {TIME: 0.10, MEMORY: 0.05, DETERMINISTIC: 0.02}
LOWER, HIGHER = "lower", "higher"  # which direction is better

PASS, IMPROVED, REGRESSION, INCONCLUSIVE, MISSING = (
    "pass", "improved", "regression", "inconclusive", "missing")
VERDICTS = (REGRESSION, INCONCLUSIVE, MISSING, IMPROVED, PASS)
EXIT_CODES = {PASS: 0, REGRESSION: 1, INCONCLUSIVE: 3}


class GateInputError(DldoctorError):
    """A baseline, report or metrics line that is missing, corrupt or not understood (exit 2)."""


class CommandFailed(DldoctorError):
    """A gated command exited non-zero or timed out (exit 2); ``detail`` holds its stderr."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class MetricSpec:
    """How one metric is read and gated. ``threshold`` None means the kind's default;
    ``floor`` is an absolute change (in the metric's unit) too small to call a regression."""

    name: str
    kind: str = TIME
    unit: str = ""
    better: str = LOWER
    threshold: float | None = None
    floor: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as JSON-ready data (without the name, which keys it)."""
        data: dict[str, Any] = {"kind": self.kind, "unit": self.unit, "better": self.better}
        if self.threshold is not None:
            data["threshold"] = self.threshold
        if self.floor:
            data["floor"] = self.floor
        return data


@dataclass(frozen=True)
class Measurement:
    """The metrics of one run of one side: ``values[name]``, described by ``specs[name]``."""

    values: dict[str, float] = field(default_factory=dict)
    specs: dict[str, MetricSpec] = field(default_factory=dict)

    def spec(self, name: str) -> MetricSpec:
        """Return the spec of metric ``name`` (a default time spec when none was given)."""
        return self.specs.get(name) or MetricSpec(name)

    def merged(self, other: Measurement) -> Measurement:
        """Return a Measurement with ``other``'s metrics added (``other`` wins on a clash)."""
        return Measurement({**self.values, **other.values}, {**self.specs, **other.specs})


@dataclass(frozen=True)
class MetricSeries:
    """Samples of metrics from one side, unpaired (a saved baseline, a report, a metrics file)."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    specs: dict[str, MetricSpec] = field(default_factory=dict)
    fingerprint: dict[str, Any] | None = None
    label: str = ""

    @classmethod
    def from_measurements(cls, runs: list[Measurement], label: str = "",
                          fingerprint: dict[str, Any] | None = None) -> MetricSeries:
        """Return the series of values each metric took over ``runs`` (in run order)."""
        samples: dict[str, list[float]] = {}
        specs: dict[str, MetricSpec] = {}
        for run in runs:
            for name, value in run.values.items():
                samples.setdefault(name, []).append(value)
                specs[name] = run.spec(name)
        return cls(samples, specs, fingerprint, label)


@dataclass(frozen=True)
class MetricResult:
    """The verdict on one metric. ``ratio`` is candidate/baseline (median), ``ratio_ci`` its
    confidence interval; both None when the metric is missing on one side."""

    spec: MetricSpec
    threshold: float
    verdict: str
    baseline: list[float]
    candidate: list[float]
    paired: bool = False
    ratio: float | None = None
    ratio_ci: tuple[float, float] | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data."""
        return {
            "name": self.spec.name, **self.spec.to_dict(), "threshold": self.threshold,
            "verdict": self.verdict, "paired": self.paired, "ratio": _finite(self.ratio),
            "ratio_ci": [_finite(v) for v in self.ratio_ci] if self.ratio_ci else None,
            "baseline": {"median": median(self.baseline), "samples": self.baseline},
            "candidate": {"median": median(self.candidate), "samples": self.candidate},
            "note": self.note,
        }


@dataclass(frozen=True)
class GateResult:
    """The verdicts on all metrics of one gate evaluation, and what it compared."""

    metrics: list[MetricResult]
    mode: str = "compare"  # run | compare | check
    pairs: int = 0
    baseline_label: str = "baseline"
    candidate_label: str = "candidate"
    warnings: list[str] = field(default_factory=list)
    fingerprint: dict[str, Any] | None = None

    @property
    def verdict(self) -> str:
        """Return ``regression`` if any metric regressed, else ``inconclusive`` if any is,
        else ``pass``."""
        found = {m.verdict for m in self.metrics}
        for verdict in (REGRESSION, INCONCLUSIVE):
            if verdict in found:
                return verdict
        return PASS

    @property
    def exit_code(self) -> int:
        """Return the process exit code: 0 pass, 1 regression, 3 inconclusive."""
        return EXIT_CODES[self.verdict]

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data (``format: dldoctor-gate``)."""
        return {
            "format": "dldoctor-gate", "version": 1, "verdict": self.verdict,
            "exit_code": self.exit_code, "mode": self.mode, "pairs": self.pairs,
            "baseline": self.baseline_label, "candidate": self.candidate_label,
            "warnings": self.warnings, "fingerprint": self.fingerprint,
            "metrics": [m.to_dict() for m in self.metrics],
        }


def median(values: list[float]) -> float | None:
    """Return the median of ``values``, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
