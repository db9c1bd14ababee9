"""``dldoctor models``: the bundled reference models."""

from __future__ import annotations

import click

from reference_models import MODELS, ModelSpec


def describe(spec: ModelSpec) -> list[str]:
    """Return the cells listed for ``spec``: name, framework, devices here, description."""
    if not spec.installed():
        devices = f"none ({spec.framework} not installed)"
    else:
        devices = ",".join(spec.available_devices()) or "none"
    return [spec.name, spec.framework, devices, spec.description]


@click.group("models")
def command() -> None:
    """Reference models that show what a healthy training run looks like here."""


@command.command("list")
def list_models() -> None:
    """List the reference models: name, framework, devices available on this machine."""
    rows = [["model", "framework", "devices here", "description"]]
    rows += [describe(spec) for spec in MODELS]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        click.echo("  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[3]]))
