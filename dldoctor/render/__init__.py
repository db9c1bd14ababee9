"""Renderers: each turns a Report into one output and declares its own name and file name.

They only read the Report; figures they show come from ``dldoctor.stats``."""

from __future__ import annotations

from pathlib import Path

from dldoctor.render.base import Renderer
from dldoctor.render.html import HtmlRenderer
from dldoctor.render.json import JsonRenderer
from dldoctor.render.terminal import TerminalRenderer
from dldoctor.render.trace import TraceRenderer
from dldoctor.run import Report, write_atomic

RENDERERS: dict[str, type[Renderer]] = {
    cls.name: cls for cls in (JsonRenderer, HtmlRenderer, TraceRenderer, TerminalRenderer)
}
FILE_OUTPUTS = ("json", "html", "trace")


def write_reports(report: Report, out_dir: Path, names: tuple[str, ...] = FILE_OUTPUTS
                  ) -> dict[str, Path]:
    """Write each named file output atomically into ``out_dir``; return name -> path."""
    paths = {}
    for name in names:
        renderer = RENDERERS[name]()
        path = out_dir / renderer.filename
        write_atomic(path, renderer.render(report))
        paths[name] = path
    return paths
