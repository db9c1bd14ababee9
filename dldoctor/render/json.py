"""report.json: the Report itself, schema-versioned."""

from __future__ import annotations

from dldoctor.render.base import Renderer
from dldoctor.run import Report


class JsonRenderer(Renderer):
    """The machine-readable report (loads back with ``Report.load``)."""

    name = "json"
    filename = "report.json"

    def render(self, report: Report) -> str:
        """Return compact JSON text."""
        return report.to_json()
