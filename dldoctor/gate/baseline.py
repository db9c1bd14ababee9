"""Checked-in baseline files: metric samples keyed by metric name, with the machine's
fingerprint so a check on another machine warns instead of silently comparing apples to pears.

Format (JSON)::

    {"format": "dldoctor-gate-baseline", "version": 1, "created": "...",
     "fingerprint": {"system": "Linux", "machine": "x86_64", "cpu": "...", "cpus": 2, ...},
     "metrics": {"alloc_bytes": {"kind": "deterministic", "unit": "B", "better": "lower",
                                 "samples": [52400.0, 52400.0, 52400.0]}}}
"""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dldoctor.gate.metrics import BASELINE_FORMAT, load_json, series_from_baseline
from dldoctor.gate.model import GateInputError, MetricSeries
from dldoctor.run import write_atomic

# Keys whose difference makes timings and memory figures incomparable.
_FINGERPRINT_KEYS = ("system", "machine", "cpu", "cpus", "python", "platform")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def fingerprint() -> dict[str, Any]:
    """Return what identifies this machine and interpreter for benchmarking purposes."""
    return {"system": platform.system(), "machine": platform.machine(), "cpu": _cpu_model(),
            "cpus": os.cpu_count() or 0, "python": platform.python_version()}


def fingerprint_warnings(stored: dict[str, Any] | None, current: dict[str, Any] | None,
                         what: str = "the baseline") -> list[str]:
    """Return one warning per fingerprint key whose value differs (keys both sides have)."""
    if not stored or not current:
        return []
    warnings = []
    for key in _FINGERPRINT_KEYS:
        if key in stored and key in current and stored[key] != current[key]:
            warnings.append(f"machine differs from {what}: {key} {stored[key]!r} "
                            f"now {current[key]!r}")
    return warnings


def baseline_dict(series: MetricSeries, kinds: tuple[str, ...]) -> dict[str, Any]:
    """Return the baseline file content for the metrics of ``series`` whose kind is listed."""
    metrics = {name: {**series.specs[name].to_dict(), "samples": samples}
               for name, samples in sorted(series.samples.items())
               if series.specs[name].kind in kinds and samples}
    return {"format": BASELINE_FORMAT, "version": 1,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "fingerprint": series.fingerprint or fingerprint(), "metrics": metrics}


def save_baseline(path: Path, content: dict[str, Any]) -> None:
    """Write a baseline file atomically; raise GateInputError if it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(content, indent=2, sort_keys=False) + "\n")
    except OSError as exc:
        raise GateInputError(f"cannot write baseline {path}: {exc.strerror or exc}") from None


def load_baseline(path: Path) -> MetricSeries:
    """Return the metrics of a baseline file; raise GateInputError (exit 2) when it is
    missing, corrupt or not a dldoctor baseline."""
    if not path.exists():
        raise GateInputError(f"baseline {path} does not exist; create it with "
                             f"`dldoctor gate baseline save {path} --cmd ...`")
    data = load_json(path)
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT:
        raise GateInputError(f"{path} is not a dldoctor gate baseline "
                             f"(expected \"format\": \"{BASELINE_FORMAT}\")")
    return series_from_baseline(data, str(path))
