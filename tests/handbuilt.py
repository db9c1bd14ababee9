"""A small hand-built Report used by the unit tests of the model and renderers."""

from __future__ import annotations

from dldoctor.findings import Finding, Location
from dldoctor.run import (
    Environment,
    Frame,
    Memory,
    MemoryPoint,
    Report,
    Run,
    RunMeta,
    Samples,
    SourceLine,
    StackCount,
    Steps,
    ThreadInfo,
)


def handbuilt_report(function_name: str = "train_step") -> Report:
    """Return a Report with two threads, three frames, memory and step data, and one finding."""
    frames = [Frame("/proj/train.py", "<module>", 1, "user"),
              Frame("/proj/train.py", function_name, 10, "user"),
              Frame("/usr/lib/python3.11/site-packages/numpy/core.py", "dot", 5, "library")]
    samples = Samples(
        interval_s=0.01, ticks=100, frames=frames,
        stacks=[[0, 20, 1, 12], [0, 20, 1, 14, 2, 7], [0, 21]],
        threads=[ThreadInfo(1, "MainThread", True), ThreadInfo(2, "worker")],
        counts=[StackCount(0, 0, 60, 0.6), StackCount(0, 1, 30, 0.3), StackCount(1, 2, 10, 0.0)],
        timeline=[[0.0, 0, 0], [0.01, 0, 0], [0.02, 0, 1], [0.03, 1, 2]],
    )
    run = Run(
        meta=RunMeta(dldoctor_version="0.1.0", target="/proj/train.py", argv=["--lr", "0.1"],
                     cwd="/proj", started_at="2026-11-24T04:00:00+00:00", duration_s=1.25,
                     exit_code=0, status="ok", pid=42),
        environment=Environment(python="CPython 3.11.7", cpu_count=2, memory_total=2**30),
        samples=samples,
        memory=Memory(points=[MemoryPoint(0.0, 100 * 2**20, 90 * 2**20),
                              MemoryPoint(0.1, 150 * 2**20)], peak_rss=150 * 2**20,
                      peak_uss=90 * 2**20),
        steps=Steps(source="explicit", count=3, times=[0.1, 0.3, 0.5, 0.8]),
        sources=[SourceLine("/proj/train.py", 12, "s += a[i] * b[i]")],
    )
    finding = Finding(rule="slow-python-loop", severity="warning", title="Loop is slow",
                      message="The loop is slow.", evidence={"cpu_share": 0.6},
                      location=Location("/proj/train.py", 12, function_name),
                      advice="Vectorise it.", confidence=0.9)
    return Report(run=run, findings=[finding])
