"""In-process measurement for the pytest plugin: ``Probe`` measures blocks of code (wall and CPU
time, tracemalloc peak and retained bytes); ``SuiteBaseline`` checks each test's metrics
against a baseline file and saves them (``--dldoctor-save-baseline``).

Gated by default: the deterministic allocation figures, which repeat exactly run to run.
Time metrics are recorded but gated only when a test names a threshold for them, since a
single in-process timing on a shared CI machine cannot carry a sound verdict."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from dldoctor.gate.baseline import (
    baseline_dict,
    fingerprint,
    fingerprint_warnings,
    load_baseline,
    save_baseline,
)
from dldoctor.gate.evaluate import Settings, Thresholds, compare_series
from dldoctor.gate.metrics import infer_spec
from dldoctor.gate.model import (
    DETERMINISTIC,
    KINDS,
    REGRESSION,
    TIME,
    GateInputError,
    Measurement,
    MetricResult,
    MetricSeries,
    MetricSpec,
)
from dldoctor.gate.output import format_value

ALLOC_FLOOR = 4096.0  # bytes: smaller changes are interpreter noise, not a regression
_BUILTIN = {
    "wall_s": MetricSpec("wall_s", TIME, "s"),
    "cpu_s": MetricSpec("cpu_s", TIME, "s"),
    "alloc_peak_bytes": MetricSpec("alloc_peak_bytes", DETERMINISTIC, "B", floor=ALLOC_FLOOR),
    "alloc_retained_bytes": MetricSpec("alloc_retained_bytes", DETERMINISTIC, "B",
                                       floor=ALLOC_FLOOR),
}
_SUMMED = ("wall_s", "cpu_s", "alloc_retained_bytes")


class Probe:
    """Measures blocks of code in this process; repeated blocks add their times and retained
    bytes and keep the highest peak. ``record`` adds a metric of your own."""

    def __init__(self) -> None:
        self._values: dict[str, float] = {}
        self._specs: dict[str, MetricSpec] = {}

    @property
    def used(self) -> bool:
        """Return whether anything was measured or recorded."""
        return bool(self._values)

    @contextmanager
    def measure(self) -> Iterator[Probe]:
        """Measure the body of the ``with`` block (tracemalloc runs only inside it)."""
        started = not tracemalloc.is_tracing()
        if started:
            tracemalloc.start()
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield self
        finally:
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            current, peak = tracemalloc.get_traced_memory()
            if started:
                tracemalloc.stop()
            self._add("wall_s", wall)
            self._add("cpu_s", cpu)
            self._add("alloc_peak_bytes", float(max(peak - before, 0)))
            self._add("alloc_retained_bytes", float(max(current - before, 0)))

    def _add(self, name: str, value: float) -> None:
        old = self._values.get(name)
        if old is not None:
            value = old + value if name in _SUMMED else max(old, value)
        self._values[name] = value
        self._specs[name] = _BUILTIN[name]

    def record(self, name: str, value: float, kind: str | None = None, unit: str | None = None,
               better: str | None = None, threshold: float | None = None) -> None:
        """Record metric ``name`` (kind, unit and direction inferred from the name unless
        given; see ``dldoctor.gate.metrics.infer_spec``)."""
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        self._values[name] = float(value)
        self._specs[name] = infer_spec(name, kind, unit, better, threshold)

    def measurement(self) -> Measurement:
        """Return what was measured so far."""
        return Measurement(dict(self._values), dict(self._specs))


def _key(nodeid: str, metric: str) -> str:
    return f"{nodeid}::{metric}"


@dataclass
class SuiteBaseline:
    """The baseline file of one pytest session: loaded on first use, checked per test,
    written at the end in save mode (merged into what the file already holds)."""

    path: Path
    save: bool = False
    measured: list[tuple[str, Measurement]] = field(default_factory=list)
    without_baseline: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    _stored: MetricSeries | None = None
    _error: GateInputError | None = None
    _loaded: bool = False

    def _baseline(self) -> MetricSeries | None:
        """Return the stored baseline (None when there is no file); raise GateInputError,
        for every gated test, when the file is corrupt."""
        if not self._loaded:
            self._loaded = True
            try:
                self._stored = load_baseline(self.path) if self.path.exists() else None
            except GateInputError as exc:
                self._error = exc
            if self._stored is not None:
                self.warnings += fingerprint_warnings(self._stored.fingerprint, fingerprint(),
                                                      str(self.path))
        if self._error is not None:
            raise self._error
        return self._stored

    def check(self, nodeid: str, measured: Measurement,
              thresholds: dict[str, float] | None = None) -> str | None:
        """Record ``measured`` for ``nodeid``; return a failure message when a gated metric
        regressed against the baseline, else None. Raise GateInputError on a corrupt file."""
        self.measured.append((nodeid, measured))
        if self.save:
            return None
        stored = self._baseline()
        gated = _gated(measured, thresholds or {})
        keys = {name: _key(nodeid, name) for name in gated.values}
        if stored is None or not any(k in stored.samples for k in keys.values()):
            self.without_baseline.append(nodeid)
            return None
        base = MetricSeries({n: stored.samples[k] for n, k in keys.items() if k in stored.samples},
                            {n: gated.specs[n] for n, k in keys.items() if k in stored.samples})
        current = MetricSeries.from_measurements([gated])
        settings = Settings(Thresholds(by_name=dict(thresholds or {})))
        failed = [r for r in compare_series(base, current, settings) if r.verdict == REGRESSION]
        return "\n".join(_failure_line(r) for r in failed) or None

    def finish(self) -> list[str]:
        """Save in save mode; return (and keep in ``summary``) the lines for the terminal."""
        lines = self.summary
        lines += [f"warning: {w}" for w in self.warnings]
        if self.save and self.measured:
            try:
                self._write()
                lines.append(f"saved metrics of {len(self.measured)} test(s) to {self.path}")
            except GateInputError as exc:
                lines.append(f"error: {exc}")
        elif self.without_baseline:
            lines.append(f"{len(self.without_baseline)} gated test(s) have no baseline in "
                         f"{self.path}: run pytest --dldoctor-save-baseline to record it")
        return lines

    def _write(self) -> None:
        try:
            old = load_baseline(self.path) if self.path.exists() else MetricSeries()
        except GateInputError:
            old = MetricSeries()  # a corrupt file is replaced
        samples, specs = dict(old.samples), dict(old.specs)
        for nodeid, measured in self.measured:
            for name, value in measured.values.items():
                samples[_key(nodeid, name)] = [value]
                specs[_key(nodeid, name)] = measured.specs[name]
        save_baseline(self.path, baseline_dict(MetricSeries(samples, specs), KINDS))


def _failure_line(result: MetricResult) -> str:
    """Return the line that explains one regressed metric of a test."""
    spec = result.spec
    before = format_value(result.baseline[0], spec.unit)
    now = format_value(result.candidate[0], spec.unit)
    return (f"dldoctor gate: {spec.name} regressed {((result.ratio or 1) - 1) * 100:+.1f}% "
            f"(limit +{result.threshold * 100:g}%): baseline {before}, now {now}")


def _gated(measured: Measurement, thresholds: dict[str, float]) -> Measurement:
    """Return the metrics to gate: all but time metrics, plus those named in ``thresholds``."""
    names = [n for n, s in measured.specs.items() if s.kind != TIME or n in thresholds]
    return Measurement({n: measured.values[n] for n in names},
                       {n: measured.specs[n] for n in names})
