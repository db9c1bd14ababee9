"""The pytest plugin (entry point ``pytest11``), run as a real pytest in a subprocess on a small
test file: record a baseline, pass against it, fail on a planted allocation increase, and leave
unmarked tests alone (also when the baseline is corrupt)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = """
import os
import pytest

N = int(os.environ.get("N", "20000"))

@pytest.mark.dldoctor_gate
def test_marked():
    rows = [bytes(100) for _ in range(N)]
    assert rows

def test_fixture(dldoctor_gate):
    setup = bytearray(10**6)  # outside the measured block: not counted
    with dldoctor_gate.measure():
        data = bytearray(N * 50)
    dldoctor_gate.record("items_per_s", 1000.0)

@pytest.mark.dldoctor_gate(thresholds={"wall_s": 0.5})
def test_timed():
    import time
    time.sleep(0.05 * float(os.environ.get("SLOW", "1")))

def test_plain():
    assert True
"""


def pytest_in(path: Path, *args: str, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    """Run pytest (plugins auto-loaded, as for a user) on the test file in ``path``."""
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "test_probe.py", *args], cwd=path, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory holding the small test file."""
    (tmp_path / "test_probe.py").write_text(textwrap.dedent(TESTS))
    return tmp_path


def test_record_then_pass_then_catch_an_allocation_increase(project: Path) -> None:
    saved = pytest_in(project, "--dldoctor-save-baseline")
    assert saved.returncode == 0, saved.stdout
    assert "saved metrics of 3 test(s)" in saved.stdout
    baseline = json.loads((project / "dldoctor-baseline.json").read_text())
    peak = baseline["metrics"]["test_probe.py::test_fixture::alloc_peak_bytes"]["samples"][0]
    assert 1_000_000 <= peak < 1_100_000  # the measured block only, not the setup
    assert "test_probe.py::test_plain::wall_s" not in baseline["metrics"]

    again = pytest_in(project)
    assert again.returncode == 0, again.stdout

    grown = pytest_in(project, env={"N": "30000"})
    assert grown.returncode == 1
    assert "2 failed, 2 passed" in grown.stdout
    assert "dldoctor gate: alloc_peak_bytes regressed +50" in grown.stdout


def test_time_is_gated_only_where_a_threshold_is_named(project: Path) -> None:
    assert pytest_in(project, "--dldoctor-save-baseline").returncode == 0
    slow = pytest_in(project, "-k", "timed", env={"SLOW": "4"})
    assert slow.returncode == 1
    assert "wall_s regressed" in slow.stdout


def test_without_baseline_gated_tests_pass_and_say_so(project: Path) -> None:
    done = pytest_in(project)
    assert done.returncode == 0, done.stdout
    assert "3 gated test(s) have no baseline" in done.stdout


def test_corrupt_baseline_fails_gated_tests_only(project: Path) -> None:
    (project / "custom.json").write_text("{not json")
    done = pytest_in(project, "--dldoctor-baseline", "custom.json")
    assert done.returncode == 1
    assert "3 failed, 1 passed" in done.stdout
    assert "custom.json is not valid JSON" in done.stdout


def test_plugin_is_registered_and_lightweight() -> None:
    entry_points = importlib.metadata.entry_points(group="pytest11")
    assert "dldoctor.pytest_plugin" in {e.value for e in entry_points}
    probe = ("import sys, dldoctor.pytest_plugin as p; "
             "print(p.MARKER, 'numpy' in sys.modules, 'dldoctor.gate.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["dldoctor_gate", "False", "False"]
