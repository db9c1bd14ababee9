"""The short summary printed after a run (and by ``dldoctor report``)."""

from __future__ import annotations

from pathlib import Path

import click

from dldoctor.findings import ERROR, SEVERITIES, WARNING
from dldoctor.render.base import Renderer
from dldoctor.run import Report
from dldoctor.stats import (
    display_path,
    hot_functions,
    native_asked,
    native_functions,
    step_stats,
    totals,
)
from dldoctor.units import human_bytes, human_seconds

_SEVERITY_COLOR = {ERROR: "red", WARNING: "yellow"}


class TerminalRenderer(Renderer):
    """Plain text, optionally styled for a terminal."""

    name = "terminal"

    def __init__(self, paths: dict[str, Path] | None = None, color: bool = False,
                 top: int = 5) -> None:
        self.paths = paths or {}
        self.color = color
        self.top = top

    def _style(self, text: str, **styles: object) -> str:
        return click.style(text, **styles) if self.color else text  # type: ignore[arg-type]

    def render(self, report: Report) -> str:
        """Return the summary, one line per fact, ending with a newline."""
        lines = [*self._header(report), *self._hot(report), *self._native(report),
                 *self._findings(report), *self._paths()]
        return "\n".join(lines) + "\n"

    def _header(self, report: Report) -> list[str]:
        meta, run = report.run.meta, report.run
        title = self._style(f"dldoctor: {display_path(meta.target, meta.cwd)}", bold=True)
        ended = f"exit {meta.exit_code} ({meta.status}) in {meta.duration_s:.2f} s"
        lines = [f"{title}  {ended}" + ("  [incomplete]" if meta.incomplete else "")]
        samples = run.samples
        rate = round(1 / samples.interval_s) if samples.interval_s else 0
        lines.append(f"  samples      {samples.ticks:,} at {rate} Hz over "
                     f"{len(samples.threads)} thread(s)")
        if run.memory.peak_rss:
            procs = max((p.processes for p in run.memory.points), default=1)
            lines.append(f"  peak memory  {human_bytes(run.memory.peak_rss)} RSS "
                         f"({procs} process{'es' if procs != 1 else ''})")
        steps = step_stats(run)
        if steps is not None:
            lines.append(f"  steps        {steps.count:,} ({run.steps.source}), "
                         f"median {human_seconds(steps.median_s)}, "
                         f"p90 {human_seconds(steps.p90_s)}")
        return lines

    def _hot(self, report: Report) -> list[str]:
        total_wall, _cpu = totals(report.run)
        functions = [f for f in hot_functions(report.run, limit=self.top) if f.self_wall]
        if not functions or not total_wall:
            return ["  hottest user code: none sampled"]
        lines = ["  hottest user code (self time, share of sampled wall time):"]
        cwd = report.run.meta.cwd
        for f in functions:
            lines.append(f"    {f.self_wall / total_wall:6.1%}  {f.self_cpu_s:7.2f} s CPU  "
                         f"{display_path(f.file, cwd)}:{f.shown_line}  {f.function}")
        return lines

    def _native(self, report: Report) -> list[str]:
        native = report.run.native
        if not native.available:
            return [f"  native code: none sampled: {native.reason}"] \
                if native_asked(report.run) else []
        stats = native_functions(report.run, limit=self.top)
        if not stats:
            return ["  native code: no sample of the program's threads"]
        lines = ["  hottest native code (py-spy, self samples):"]
        cwd = report.run.meta.cwd
        for s in stats:
            under = f"  under {display_path(s.caller[0], cwd)}:{s.caller[1]}" if s.caller else ""
            lines.append(f"    {s.share:6.1%}  {_clip(s.function, 60)}"
                         f"{f' ({s.library})' if s.library else ''}{under}")
        return lines

    def _findings(self, report: Report) -> list[str]:
        counts = {s: sum(f.severity == s for f in report.findings) for s in SEVERITIES}
        summary = ", ".join(f"{counts[s]} {s}" for s in reversed(SEVERITIES))
        lines = [f"  findings: {summary}"]
        cwd = report.run.meta.cwd
        for f in report.findings:
            where = (f"{display_path(f.location.file, cwd)}:{f.location.line}"
                     if f.location else "-")
            tag = self._style(f"[{f.severity}]", fg=_SEVERITY_COLOR.get(f.severity), bold=True)
            lines.append(f"    {tag} {f.rule}  {where}  {f.title}")
        for error in report.analyzer_errors:
            lines.append(f"    [analyzer failed] {error}")
        return lines

    def _paths(self) -> list[str]:
        present = [self.paths[n] for n in ("html", "json", "trace") if n in self.paths]
        return [f"{'  reports' if i == 0 else '         '}    {path}"
                for i, path in enumerate(present)]


def _clip(text: str, width: int) -> str:
    """Return ``text`` cut to ``width`` characters (C++ template names run long)."""
    return text if len(text) <= width else text[:width - 1] + "…"
