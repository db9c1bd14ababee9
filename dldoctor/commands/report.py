"""dldoctor report: re-render the terminal summary and HTML (and trace) from a saved report.json."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dldoctor.render import write_reports
from dldoctor.render.terminal import TerminalRenderer
from dldoctor.run import Report
from dldoctor.runner.profile import prepare_out_dir


@click.command("report")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path, file_okay=False),
              help="Where to write report.html and trace.json (default: next to report.json).")
@click.option("--no-html", is_flag=True, help="Only print the terminal summary.")
def command(path: Path, out: Path | None, no_html: bool) -> int:
    """Load PATH (a report.json or its run directory) and render it again."""
    report = Report.load(path)
    run_dir = path if path.is_dir() else path.parent
    paths = {}
    if not no_html:
        paths = write_reports(report, prepare_out_dir(out or run_dir), names=("html", "trace"))
    renderer = TerminalRenderer(paths=paths, color=sys.stdout.isatty())
    click.echo(renderer.render(report), nl=False)
    return 0
