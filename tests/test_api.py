"""The in-process API: ``with dldoctor.profile() as session`` and ``dldoctor.step()``."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import dldoctor


def busy(seconds: float) -> float:
    total, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        total += 1.0
    return total


def test_session_collects_samples_steps_and_writes_reports(tmp_path: Path) -> None:
    hooked = (os._exit, threading.Lock, threading.RLock, threading.Condition,
              threading.Thread.start)
    with dldoctor.profile(out=tmp_path / "run") as session:
        for _ in range(5):
            busy(0.05)
            dldoctor.step()
    # hooks are removed afterwards: the process is left as the session found it
    assert (os._exit, threading.Lock, threading.RLock, threading.Condition,
            threading.Thread.start) == hooked
    assert [t.name for t in threading.enumerate()] == ["MainThread"]
    report = session.report
    assert report is not None
    assert report.run.meta.mode == "api"
    assert report.run.steps.count == 5 and report.run.steps.source == "explicit"
    functions = {f.function for f in report.run.samples.frames}
    assert "busy" in functions
    assert report.run.memory.peak_rss > 0
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "report.html", "report.json", "trace.json"]


def test_step_is_a_noop_outside_a_session() -> None:
    dldoctor.step()  # must not raise or record anything


def test_session_without_writing(tmp_path: Path) -> None:
    with dldoctor.profile(write=False) as session:
        busy(0.05)
    assert session.report is not None and session.paths == {}
