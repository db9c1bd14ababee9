"""Resolve model and device names, and run reference models: in this process (``bench``),
in a child process (``compare``: clean peak memory and thread settings per run), or under
``dldoctor profile`` (``bench --profile``)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence

from dldoctor.errors import UsageError
from reference_models import MODELS, ModelResult, ModelSpec, RunConfig, UnknownModelError, get_model
from reference_models.data import DataError
from reference_models.metrics import device_available

DEVICES = ("cpu", "cuda")


def resolve_model(name: str) -> ModelSpec:
    """Return the registered model ``name``; raise ``UsageError`` for an unknown one."""
    try:
        return get_model(name)
    except UnknownModelError as exc:
        raise UsageError(exc.args[0]) from None


def parse_models(text: str) -> list[ModelSpec]:
    """Return the models named in a comma-separated list ("all" for every model)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(MODELS)
    if not names:
        raise UsageError("--models is empty (give names separated by commas, or 'all')")
    return [resolve_model(name) for name in dict.fromkeys(names)]


def parse_devices(text: str) -> list[str]:
    """Return the devices in a comma-separated list; raise ``UsageError`` for unknown ones."""
    devices = list(dict.fromkeys(d.strip() for d in text.split(",") if d.strip()))
    unknown = [d for d in devices if d not in DEVICES]
    if unknown or not devices:
        raise UsageError(f"unknown device {', '.join(unknown) or '(none)'!s}; use cpu and/or cuda")
    return devices


def unavailable_reason(spec: ModelSpec, device: str) -> str | None:
    """Return why ``spec`` cannot run on ``device`` here, or None when it can."""
    if device not in spec.devices:
        return f"{spec.name} runs on {', '.join(spec.devices)} only"
    if not spec.installed():
        return f"{spec.name} needs torch (pip install 'dldoctor[torch]')"
    if not device_available(device):
        return f"{device} is not available on this machine"
    return None


def check_runnable(spec: ModelSpec, device: str) -> None:
    """Raise ``UsageError`` when ``spec`` cannot run on ``device`` here."""
    reason = unavailable_reason(spec, device)
    if reason:
        raise UsageError(reason)


def run_here(spec: ModelSpec, config: RunConfig) -> ModelResult:
    """Train ``spec`` in this process; return its result (bad data -> ``UsageError``)."""
    check_runnable(spec, config.device)
    try:
        return spec.run(config)
    except DataError as exc:
        raise UsageError(str(exc)) from None


def module_command(spec: ModelSpec, config: RunConfig) -> list[str]:
    """Return the command line that trains ``spec`` alone and prints its result as JSON."""
    return [sys.executable, "-m", spec.module, *config.to_args(), "--json"]


def run_child(spec: ModelSpec, config: RunConfig) -> ModelResult:
    """Train ``spec`` in a child Python process; return its result.

    Raises ``RuntimeError`` carrying the child's last stderr line when it fails.
    """
    proc = subprocess.run(
        module_command(spec, config), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"]
        raise RuntimeError(lines[-1])
    return ModelResult.from_dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def profile_command(spec: ModelSpec, config: RunConfig, extra: Sequence[str] = ()) -> list[str]:
    """Return the ``dldoctor profile`` command line that runs ``spec`` under instrumentation."""
    return [
        sys.executable, "-m", "dldoctor", "profile", *extra,
        "-m", spec.module, "--", *config.to_args(),
    ]


def run_profiled(spec: ModelSpec, config: RunConfig) -> int:
    """Run ``spec`` under ``dldoctor profile`` (output passes through); return its exit code."""
    check_runnable(spec, config.device)
    return subprocess.run(profile_command(spec, config), check=False).returncode
