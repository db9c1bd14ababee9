"""``dldoctor compare``: reference models side by side across devices, in one table."""

from __future__ import annotations

from pathlib import Path

import click

from dldoctor.bench.compare import default_out_dir, run_compare, write_outputs
from dldoctor.bench.runner import parse_devices, parse_models
from dldoctor.bench.table import format_table
from dldoctor.errors import UsageError
from reference_models import RunConfig
from reference_models.data import DataError, load_dataset
from reference_models.run import SIZES


@click.command("compare")
@click.option("--models", "models_text", default="all", show_default=True,
              help="Comma-separated model names, or 'all'.")
@click.option("--devices", "devices_text", default="cpu", show_default=True,
              help="Comma-separated devices (cpu, cuda); absent ones are reported as skipped.")
@click.option("--epochs", type=click.IntRange(min=1), help="Training epochs (model defaults).")
@click.option("--size", type=click.Choice(SIZES), default="small", show_default=True)
@click.option("--data", "data_dir", type=click.Path(), help="Directory with MNIST IDX files.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Where to write compare.json and compare.html [reports/compare-<time>].")
def command(models_text: str, devices_text: str, out_dir: str | None, **options: object) -> int:
    """Run reference models on each device, print one table, write it as JSON and HTML.
    Exits 1 when a run failed."""
    models, devices = parse_models(models_text), parse_devices(devices_text)
    config = RunConfig(**options)  # type: ignore[arg-type]
    try:
        load_dataset(config.data_dir, config.seed)  # fail once, up front, on bad data
    except DataError as exc:
        raise UsageError(str(exc)) from None
    entries = []
    for entry in run_compare(models, devices, config):
        click.echo(f"{entry.model} on {entry.device}: {entry.status} {entry.reason}".rstrip(),
                   err=True)
        entries.append(entry)
    click.echo(format_table(entries))
    for path in write_outputs(entries, config, Path(out_dir) if out_dir else default_out_dir()):
        click.echo(f"wrote {path}")
    return 1 if any(e.status == "failed" for e in entries) else 0
