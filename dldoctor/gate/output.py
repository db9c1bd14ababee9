"""The gate's output formats: a terminal table, Markdown (for ``$GITHUB_STEP_SUMMARY``),
JUnit XML (one testcase per metric) and JSON. Each format is a class with a ``name`` and
``render(result) -> str``; the rows they show come from one place (``rows``)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from abc import ABC, abstractmethod
from dataclasses import dataclass

from dldoctor.gate.model import (
    IMPROVED,
    INCONCLUSIVE,
    MISSING,
    REGRESSION,
    GateResult,
    MetricResult,
    median,
)
from dldoctor.units import human_bytes, human_seconds

_MARKS = {REGRESSION: "✗", INCONCLUSIVE: "?", MISSING: "–", IMPROVED: "✓"}
HEADER = ("metric", "kind", "baseline", "candidate", "change", "95% CI", "limit", "n", "verdict")


def format_value(value: float | None, unit: str) -> str:
    """Return ``value`` in its unit, human-readable (``12.3 ms``, ``4.0 MiB``, ``1.23e+06``)."""
    if value is None:
        return "-"
    if unit == "s":
        return human_seconds(value)
    if unit == "B":
        return human_bytes(value)
    text = f"{value:,.0f}" if abs(value) >= 1e4 and float(value).is_integer() else f"{value:.4g}"
    return f"{text} {unit}".rstrip()


def _percent(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}%"


@dataclass(frozen=True)
class Row:
    """One metric, as text cells in HEADER order."""

    cells: tuple[str, ...]
    result: MetricResult


def rows(result: GateResult) -> list[Row]:
    """Return one row per metric, cells formatted for display."""
    out = []
    for m in result.metrics:
        spec = m.spec
        change = _percent(m.ratio) if m.ratio is not None else "-"
        ci = (f"{_percent(m.ratio_ci[0])} … {_percent(m.ratio_ci[1])}"
              if m.ratio_ci and m.ratio_ci[0] != m.ratio_ci[1] else "-")
        limit = f"{'+' if spec.better == 'lower' else '-'}{m.threshold * 100:g}%"
        n = str(min(len(m.baseline), len(m.candidate)) or max(len(m.baseline),
                                                              len(m.candidate)))
        out.append(Row((spec.name, spec.kind, format_value(median(m.baseline), spec.unit),
                        format_value(median(m.candidate), spec.unit), change, ci, limit, n,
                        m.verdict), m))
    return out


def headline(result: GateResult) -> str:
    """Return the one-line summary: verdict, what was compared, pairs."""
    how = f", {result.pairs} interleaved pairs" if result.pairs else ""
    return (f"dldoctor gate: {result.verdict.upper()} ({result.candidate_label} vs "
            f"{result.baseline_label}{how})")


class GateFormat(ABC):
    """Turns a GateResult into text."""

    name = ""

    @abstractmethod
    def render(self, result: GateResult) -> str:
        """Return the rendered output."""


class TableFormat(GateFormat):
    """Plain-text table for the terminal."""

    name = "table"

    def render(self, result: GateResult) -> str:
        """Return the headline, an aligned table, notes and warnings."""
        table = [HEADER, *(row.cells for row in rows(result))]
        widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
        lines = [headline(result)]
        for line in table:
            lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(line, widths))
                         .rstrip())
        lines += _notes(result)
        return "\n".join(lines) + "\n"


def _notes(result: GateResult) -> list[str]:
    notes = [f"  note: {m.spec.name}: {m.note}" for m in result.metrics if m.note]
    return notes + [f"  warning: {w}" for w in result.warnings]


class MarkdownFormat(GateFormat):
    """GitHub-flavoured Markdown, for ``$GITHUB_STEP_SUMMARY`` or a PR comment."""

    name = "markdown"

    def render(self, result: GateResult) -> str:
        """Return a heading, a table and notes."""
        lines = [f"### {headline(result)}", "",
                 "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        for row in rows(result):
            cells = [c.replace("|", "\\|") for c in row.cells]
            cells[-1] = f"{_MARKS.get(row.result.verdict, '✓')} {cells[-1]}"
            cells[0] = f"`{cells[0]}`"
            lines.append("| " + " | ".join(cells) + " |")
        notes = [line.strip() for line in _notes(result)]
        if notes:
            lines += ["", *(f"- {note}" for note in notes)]
        return "\n".join(lines) + "\n"


class JUnitFormat(GateFormat):
    """JUnit XML: one testcase per metric; regressions fail, inconclusive/missing are
    skipped (with the reason)."""

    name = "junit"

    def render(self, result: GateResult) -> str:
        """Return the XML document."""
        failures = sum(m.verdict == REGRESSION for m in result.metrics)
        skipped = sum(m.verdict in (INCONCLUSIVE, MISSING) for m in result.metrics)
        suite = ET.Element("testsuite", name="dldoctor-gate", tests=str(len(result.metrics)),
                           failures=str(failures), errors="0", skipped=str(skipped))
        for row in rows(result):
            case = ET.SubElement(suite, "testcase", classname="dldoctor.gate",
                                 name=row.result.spec.name)
            text = ", ".join(f"{h}: {c}" for h, c in zip(HEADER, row.cells))
            if row.result.note:
                text += f" ({row.result.note})"
            if row.result.verdict == REGRESSION:
                ET.SubElement(case, "failure", message=f"regression {row.cells[4]}").text = text
            elif row.result.verdict in (INCONCLUSIVE, MISSING):
                ET.SubElement(case, "skipped", message=row.result.verdict).text = text
            else:
                ET.SubElement(case, "system-out").text = text
        root = ET.Element("testsuites")
        root.append(suite)
        ET.indent(root)
        return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


class JsonFormat(GateFormat):
    """Everything, with per-sample values: a gate result can be compared again later."""

    name = "json"

    def render(self, result: GateResult) -> str:
        """Return the result as indented JSON."""
        return json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n"


FORMATS: dict[str, type[GateFormat]] = {
    cls.name: cls for cls in (TableFormat, MarkdownFormat, JUnitFormat, JsonFormat)}
