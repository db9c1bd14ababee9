"""Shared fixtures: run the real dldoctor CLI in a subprocess on small scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Completed:
    """A finished dldoctor (or python) process."""

    returncode: int
    stdout: bytes
    stderr: bytes
    out_dir: Path | None = None

    def report(self) -> dict[str, Any]:
        """Return the parsed report.json of this run."""
        assert self.out_dir is not None
        return json.loads((self.out_dir / "report.json").read_text())


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_cli(args: list[str], cwd: Path, stdin: bytes | None = None, timeout: float = 120,
            env: dict[str, str] | None = None) -> Completed:
    """Run ``python -m dldoctor ARGS`` in ``cwd``."""
    proc = subprocess.run([sys.executable, "-m", "dldoctor", *args], cwd=cwd, input=stdin,
                          capture_output=True, timeout=timeout, env={**os.environ, **(env or {})})
    return Completed(proc.returncode, proc.stdout, proc.stderr)


def run_plain(script: Path, *args: str, stdin: bytes | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``python SCRIPT ARGS`` in the script's folder (where ``profile`` runs it too): what
    a profiled run's output and exit code must equal."""
    return subprocess.run([sys.executable, str(script), *args], cwd=script.parent, input=stdin,
                          capture_output=True, timeout=timeout)


@pytest.fixture
def write_script(tmp_path: Path):
    """Write a dedented script into tmp_path and return its path."""

    def _write(name: str, body: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))
        return path

    return _write


@pytest.fixture
def profile(tmp_path: Path):
    """Profile a script with the real CLI (``--out`` in tmp_path); return a Completed."""
    counter = {"n": 0}

    def _profile(script: Path | str, *args: str, options: tuple[str, ...] = (),
                 stdin: bytes | None = None, timeout: float = 120) -> Completed:
        counter["n"] += 1
        out = tmp_path / f"run{counter['n']}"
        result = run_cli(["profile", "--out", str(out), *options, str(script), *args],
                         cwd=tmp_path, stdin=stdin, timeout=timeout)
        result.out_dir = out
        return result

    return _profile
