"""``dldoctor bench MODEL``: train one reference model and print its figures."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dldoctor.bench.runner import DEVICES, resolve_model, run_here, run_profiled
from dldoctor.bench.table import format_result
from dldoctor.run import write_atomic
from reference_models import RunConfig
from reference_models.run import SIZES


@click.command("bench")
@click.argument("model")
@click.option("--device", type=click.Choice(DEVICES), default="cpu", show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), help="Training epochs (model default).")
@click.option("--threads", type=click.IntRange(min=1), help="Worker / BLAS / torch threads.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Mini-batch size.")
@click.option("--size", type=click.Choice(SIZES), default="small", show_default=True,
              help="Network size; 'large' is meant for GPUs.")
@click.option("--data", "data_dir", type=click.Path(), help="Directory with MNIST IDX files.")
@click.option("--seed", type=int, default=0, show_default=True, help="Split and init seed.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False),
              help="Also write the figures as JSON to this file.")
@click.option("--profile", is_flag=True, help="Run the model under `dldoctor profile`.")
def command(model: str, json_path: str | None, profile: bool, **options: object) -> int:
    """Train MODEL, then print samples/s, achieved GFLOP/s, share of this machine's
    measured matmul peak, peak memory and test accuracy."""
    spec = resolve_model(model)
    config = RunConfig(**options)  # type: ignore[arg-type]
    if profile:
        return run_profiled(spec, config)
    result = run_here(spec, config)
    click.echo(format_result(result))
    if json_path:
        write_atomic(Path(json_path), json.dumps(result.to_dict(), indent=2) + "\n")
    return 0
