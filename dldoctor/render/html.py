"""report.html: one self-contained page (inline CSS/JS, no network), every string escaped.

The renderer gathers a view model from the Report (via ``dldoctor.stats``) and the Jinja2
template only lays it out; charts are drawn in the browser from data embedded with ``tojson``."""

from __future__ import annotations

from typing import Any

import jinja2

from dldoctor.findings import SEVERITIES
from dldoctor.render.base import Renderer
from dldoctor.render.bottlenecks import breakdown_view
from dldoctor.render.memory import memory_view
from dldoctor.render.native import native_view
from dldoctor.render.threads import thread_view
from dldoctor.run import LIBRARY, USER, Report, Run
from dldoctor.serialize import to_dict
from dldoctor.stats import display_path, hot_functions, hot_lines, step_stats, totals
from dldoctor.units import human_bytes, human_seconds

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("dldoctor.render", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class HtmlRenderer(Renderer):
    """The human-facing report."""

    name = "html"
    filename = "report.html"

    def render(self, report: Report) -> str:
        """Return the page."""
        return _ENV.get_template("report.html.j2").render(**view_model(report))


def _functions(run: Run, kind: str, total: int) -> list[dict[str, Any]]:
    cwd = run.meta.cwd
    return [{"where": f"{display_path(f.file, cwd)}:{f.shown_line}", "function": f.function,
             "self_share": f.self_wall / total if total else 0.0,
             "total_share": f.total_wall / total if total else 0.0,
             "cpu_s": f.self_cpu_s}
            for f in hot_functions(run, kind=kind, limit=25)]


def _lines(run: Run, total: int) -> list[dict[str, Any]]:
    text = {(s.file, s.line): s.text for s in run.sources}
    cwd = run.meta.cwd
    return [{"where": f"{display_path(s.file, cwd)}:{s.line}", "function": s.function,
             "share": s.wall / total if total else 0.0, "cpu_s": s.cpu_s,
             "text": text.get((s.file, s.line), "")}
            for s in hot_lines(run)[:25]]


def _threads(run: Run) -> list[dict[str, Any]]:
    rows = []
    for index, thread in enumerate(run.samples.threads):
        counts = [c for c in run.samples.counts if c.thread == index]
        rows.append({"name": thread.name, "main": thread.main,
                     "wall_s": sum(c.wall for c in counts) * run.samples.interval_s,
                     "cpu_s": sum(c.cpu_s for c in counts)})
    return rows


def _chart_data(run: Run) -> dict[str, Any]:
    points = run.memory.points
    times = run.steps.times
    stride = max(1, run.steps.stride)
    return {
        "memory": {"t": [p.t for p in points], "rss": [p.rss for p in points],
                   "uss": [[p.t, p.uss] for p in points if p.uss is not None]},
        "steps": {"step": [(i + 2) * stride for i in range(len(times) - 1)],
                  "duration": [(b - a) / stride for a, b in zip(times, times[1:])]},
    }


def view_model(report: Report) -> dict[str, Any]:
    """Return everything the template shows, already derived and formatted where needed."""
    run = report.run
    total_wall, total_cpu = totals(run)
    cwd = run.meta.cwd
    findings = [{**to_dict(f), "where": (f"{display_path(f.location.file, cwd)}:"
                                         f"{f.location.line}" if f.location else "")}
                for f in report.findings]
    return {
        "meta": run.meta,
        "target": display_path(run.meta.target, cwd),
        "env": run.environment,
        "collectors": run.collectors,
        "findings": findings,
        "severity_counts": {s: sum(f.severity == s for f in report.findings) for s in SEVERITIES},
        "analyzer_errors": report.analyzer_errors,
        "user_functions": _functions(run, USER, total_wall),
        "library_functions": _functions(run, LIBRARY, total_wall),
        "lines": _lines(run, total_wall),
        "threads": _threads(run),
        "thread_view": thread_view(run),
        "breakdown_view": breakdown_view(run),
        "memory_view": memory_view(run),
        "native_view": native_view(run),
        "total_wall": total_wall,
        "total_cpu": total_cpu,
        "samples": run.samples,
        "peak_rss": human_bytes(run.memory.peak_rss) if run.memory.peak_rss else "n/a",
        "peak_uss": human_bytes(run.memory.peak_uss) if run.memory.peak_uss else "n/a",
        "steps": step_stats(run),
        "human_seconds": human_seconds,
        "step_source": run.steps.source,
        "charts": _chart_data(run),
        "human_bytes": human_bytes,
    }
