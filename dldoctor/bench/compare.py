"""``compare``: run models x devices (each run in its own process), collect one ``Entry`` per
pair (ok, skipped where the device or framework is absent, failed), and write the table as
JSON and as a self-contained HTML page."""

from __future__ import annotations

import dataclasses
import json
import platform
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

from dldoctor.bench.runner import run_child, unavailable_reason
from dldoctor.bench.table import COLUMNS, Entry, row
from dldoctor.run import write_atomic
from reference_models import ModelResult, ModelSpec, RunConfig

SCHEMA = "dldoctor-compare/1"
Runner = Callable[[ModelSpec, RunConfig], ModelResult]


def run_entry(spec: ModelSpec, device: str, config: RunConfig, runner: Runner) -> Entry:
    """Return the comparison entry for ``spec`` on ``device``: run, skipped, or failed."""
    reason = unavailable_reason(spec, device)
    if reason:
        return Entry(spec.name, device, "skipped", reason=reason)
    try:
        result = runner(spec, dataclasses.replace(config, device=device))
    except (RuntimeError, OSError, ValueError) as exc:
        return Entry(spec.name, device, "failed", reason=str(exc))
    return Entry(spec.name, device, "ok", result)


def run_compare(
    models: Sequence[ModelSpec], devices: Sequence[str], config: RunConfig,
    runner: Runner = run_child,
) -> Iterator[Entry]:
    """Yield one entry per (model, device), in model order, as each run finishes."""
    for spec in models:
        for device in devices:
            yield run_entry(spec, device, config, runner)


def to_document(entries: Sequence[Entry], config: RunConfig) -> dict[str, Any]:
    """Return the JSON document of a comparison: schema, host, config and entries."""
    return {
        "schema": SCHEMA,
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": {"machine": platform.machine(), "python": platform.python_version(),
                 "node": platform.node()},
        "config": dataclasses.asdict(config),
        "entries": [
            {"model": e.model, "device": e.device, "status": e.status, "reason": e.reason,
             "result": e.result.to_dict() if e.result else None}
            for e in entries
        ],
    }


def render_html(document: dict[str, Any], entries: Sequence[Entry]) -> str:
    """Return the comparison as one self-contained, autoescaped HTML page."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("dldoctor.bench", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined,
    )
    template = env.get_template("compare.html.j2")
    return template.render(doc=document, columns=COLUMNS, rows=[row(e) for e in entries])


def default_out_dir(now: datetime | None = None) -> Path:
    """Return ``reports/compare-<YYYYmmdd-HHMMSS>`` for ``now`` (default: the current time)."""
    return Path("reports") / f"compare-{(now or datetime.now()):%Y%m%d-%H%M%S}"


def write_outputs(entries: Sequence[Entry], config: RunConfig, out_dir: Path) -> list[Path]:
    """Write ``compare.json`` and ``compare.html`` atomically into ``out_dir``; return paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = to_document(entries, config)
    json_path, html_path = out_dir / "compare.json", out_dir / "compare.html"
    write_atomic(json_path, json.dumps(document, indent=2) + "\n")
    write_atomic(html_path, render_html(document, entries))
    return [json_path, html_path]
