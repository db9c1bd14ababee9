"""Where the gate's metrics come from: ``DLDOCTOR_METRICS`` lines a command prints, a dldoctor
report.json, and saved files (reports, baselines, gate results, plain metrics JSON).

The line convention, for benchmark scripts: print one line per run (or several; later values
win) ::

    DLDOCTOR_METRICS {"step_s": 0.0123, "alloc_bytes": 52400}
    DLDOCTOR_METRICS {"throughput": {"value": 812.5, "unit": "samples/s", "better": "higher"}}

A value is a number, or an object with ``value`` and optional ``kind`` (time, memory,
deterministic), ``unit``, ``better`` (lower, higher), ``threshold`` (fraction) and ``floor``.
Without ``kind``, the name decides: ``alloc``/``instructions``/``count``/``calls`` make it
deterministic; ``rss``/``uss``/``memory``/``bytes`` memory; anything else time."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from dldoctor.gate.model import (
    DETERMINISTIC,
    HIGHER,
    KINDS,
    LOWER,
    MEMORY,
    TIME,
    GateInputError,
    Measurement,
    MetricSeries,
    MetricSpec,
)
from dldoctor.run import FORMAT_NAME, Report
from dldoctor.serialize import to_dict
from dldoctor.stats import step_stats

PREFIX = "DLDOCTOR_METRICS"
BASELINE_FORMAT = "dldoctor-gate-baseline"
RESULT_FORMAT = "dldoctor-gate"
_DETERMINISTIC_WORDS = ("alloc", "instructions", "count", "calls", "blocks", "traced")
_MEMORY_WORDS = ("rss", "uss", "memory", "bytes", "_mb", "_mib", "_gb")
_HIGHER_WORDS = ("per_s", "per_sec", "/s", "throughput", "gflop", "flops", "speedup")
_UNITS = {TIME: "s", MEMORY: "B"}


def infer_spec(name: str, kind: str | None = None, unit: str | None = None,
               better: str | None = None, threshold: float | None = None,
               floor: float = 0.0) -> MetricSpec:
    """Return a spec for ``name``, filling what is not given from the name's words."""
    lowered = name.lower()
    if kind is None:
        if any(word in lowered for word in _DETERMINISTIC_WORDS):
            kind = DETERMINISTIC
        elif any(word in lowered for word in _MEMORY_WORDS):
            kind = MEMORY
        else:
            kind = TIME
    if better is None:
        better = HIGHER if any(word in lowered for word in _HIGHER_WORDS) else LOWER
    if unit is None:
        unit = "B" if "bytes" in lowered else ("" if better == HIGHER else _UNITS.get(kind, ""))
    return MetricSpec(name, kind, unit, better, threshold, floor)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GateInputError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def parse_metric(name: str, raw: Any, where: str) -> tuple[float, MetricSpec]:
    """Return (value, spec) for one entry of a metrics object; raise GateInputError."""
    if not isinstance(raw, dict):
        return _number(raw, f"{where} {name}"), infer_spec(name)
    kind, better = raw.get("kind"), raw.get("better")
    if kind is not None and kind not in KINDS:
        raise GateInputError(f"{where} {name}: kind must be one of {', '.join(KINDS)}")
    if better is not None and better not in (LOWER, HIGHER):
        raise GateInputError(f"{where} {name}: better must be 'lower' or 'higher'")
    threshold = raw.get("threshold")
    spec = infer_spec(name, kind, raw.get("unit"), better,
                      None if threshold is None else _number(threshold, f"{where} {name}"),
                      _number(raw.get("floor", 0.0), f"{where} {name}"))
    return _number(raw.get("value"), f"{where} {name}"), spec


def parse_metrics_object(data: Any, where: str) -> Measurement:
    """Return the metrics of a ``{name: value | {value, ...}}`` object."""
    if not isinstance(data, dict):
        raise GateInputError(f"{where}: expected a JSON object of metrics")
    values, specs = {}, {}
    for name, raw in data.items():
        values[str(name)], specs[str(name)] = parse_metric(str(name), raw, where)
    return Measurement(values, specs)


def from_output(text: str) -> Measurement:
    """Return the metrics printed as ``DLDOCTOR_METRICS {json}`` lines in ``text``."""
    found = Measurement()
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped.startswith(PREFIX):
            continue
        payload = stripped[len(PREFIX):].strip()
        try:
            data = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise GateInputError(f"output line {number}: {PREFIX} is not followed by JSON "
                                 f"({exc.msg}): {payload[:80]!r}") from None
        found = found.merged(parse_metrics_object(data, f"output line {number}"))
    return found


def from_report(report: Report) -> Measurement:
    """Return the gateable figures of a dldoctor report: duration, peak memory, median step
    time, and any allocation figures or ``run.extra["metrics"]`` it carries."""
    run = report.run
    values: dict[str, float] = {"duration_s": run.meta.duration_s}
    if run.memory.peak_rss:
        values["peak_rss_bytes"] = float(run.memory.peak_rss)
    steps = step_stats(run)
    if steps is not None:
        values["step_median_s"] = steps.median_s
    values.update(_allocation_figures(to_dict(run)))
    found = Measurement(values, {name: infer_spec(name) for name in values})
    extra = run.extra.get("metrics") if isinstance(run.extra, dict) else None
    if isinstance(extra, dict):
        found = found.merged(parse_metrics_object(extra, "report run.extra.metrics"))
    return found


def _allocation_figures(run: dict[str, Any]) -> dict[str, float]:
    """Return numeric scalars whose key mentions allocations, one level into each section of
    the run (and into dict entries of ``extra``), named ``section.key``."""
    found: dict[str, float] = {}
    sections = {k: v for k, v in run.items() if k != "extra" and isinstance(v, dict)}
    extra = run.get("extra")
    if isinstance(extra, dict):
        sections.update({k: v for k, v in extra.items() if isinstance(v, dict)})
    for section, body in sections.items():
        for key, value in body.items():
            if "alloc" in key.lower() and isinstance(value, (int, float)) \
                    and not isinstance(value, bool) and math.isfinite(value):
                found[f"{section}.{key}"] = float(value)
    return found


def find_report(directory: Path) -> Path | None:
    """Return the newest report.json under ``directory`` (a ``dldoctor profile`` out dir)."""
    reports = sorted(directory.rglob("report.json"), key=lambda p: p.stat().st_mtime)
    return reports[-1] if reports else None


def load_json(path: Path) -> Any:
    """Return the parsed JSON of ``path``; raise GateInputError (exit 2) saying what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GateInputError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GateInputError(f"cannot read {path}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise GateInputError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); "
                             "truncated or corrupt?") from None


def load_series(path: Path) -> MetricSeries:
    """Return the metrics saved in ``path``: a report.json (or its run directory), a gate
    baseline, a gate result (its candidate side), or a plain ``{name: value}`` JSON object."""
    if path.is_dir():
        path = path / "report.json"
    data = load_json(path)
    label = str(path)
    if isinstance(data, dict) and data.get("format") == FORMAT_NAME:
        report = Report.from_json(json.dumps(data), source=label)
        env = report.run.environment
        fingerprint = {"python": env.python.split()[-1] if env.python else "",
                       "cpus": env.cpu_count}
        return MetricSeries.from_measurements([from_report(report)], label, fingerprint)
    if isinstance(data, dict) and data.get("format") == BASELINE_FORMAT:
        return series_from_baseline(data, label)
    if isinstance(data, dict) and data.get("format") == RESULT_FORMAT:
        return _series_from_result(data, label)
    if isinstance(data, dict) and isinstance(data.get("metrics"), dict):
        data = data["metrics"]
    return MetricSeries.from_measurements([parse_metrics_object(data, label)], label)


def series_from_baseline(data: dict[str, Any], label: str) -> MetricSeries:
    """Return the series of a baseline file's parsed JSON; raise GateInputError if damaged."""
    metrics = data.get("metrics")
    if not isinstance(metrics, dict):
        raise GateInputError(f"{label}: baseline has no 'metrics' object")
    samples, specs = {}, {}
    for name, entry in metrics.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("samples"), list) \
                or not entry["samples"]:
            raise GateInputError(f"{label}: metric {name!r} has no samples")
        spec_fields = {k: entry[k] for k in ("kind", "unit", "better", "threshold", "floor")
                       if k in entry}
        _value, specs[name] = parse_metric(name, {"value": entry["samples"][0], **spec_fields},
                                           label)
        samples[name] = [_number(v, f"{label} {name}") for v in entry["samples"]]
    fingerprint = data.get("fingerprint") if isinstance(data.get("fingerprint"), dict) else None
    return MetricSeries(samples, specs, fingerprint, label)


def _series_from_result(data: dict[str, Any], label: str) -> MetricSeries:
    entries = data.get("metrics")
    if not isinstance(entries, list):
        raise GateInputError(f"{label}: gate result has no 'metrics' list")
    converted = {}
    for entry in entries:
        if not isinstance(entry, dict) or "name" not in entry:
            raise GateInputError(f"{label}: damaged metric entry {entry!r:.80}")
        side = entry.get("candidate") or {}
        spec = {k: entry[k] for k in ("kind", "unit", "better", "floor") if k in entry}
        converted[entry["name"]] = {**spec, "samples": side.get("samples") or []}
    present = {k: v for k, v in converted.items() if v["samples"]}
    return series_from_baseline({"metrics": present, "fingerprint": data.get("fingerprint")},
                                label)
