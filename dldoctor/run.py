"""The Run: everything one profiled execution produced, as one versioned tree of dataclasses.

Collectors each fill one section; analyzers and renderers read only this model. ``Report`` pairs a
Run with the findings the analyzers derived from it and is what ``report.json`` holds."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dldoctor.errors import ReportLoadError
from dldoctor.findings import Finding
from dldoctor.serialize import from_dict, to_dict

SCHEMA_VERSION = 1
FORMAT_NAME = "dldoctor-report"

# Frame kinds: where a sampled frame's code lives.
USER, LIBRARY, DLDOCTOR = "user", "library", "dldoctor"


@dataclass(frozen=True)
class Frame:
    """One function (code object) seen in samples."""

    file: str
    function: str
    line: int  # first line of the function
    kind: str = USER


@dataclass(frozen=True)
class ThreadInfo:
    """A Python thread seen by the sampler."""

    id: int
    name: str
    main: bool = False


@dataclass(frozen=True)
class StackCount:
    """How often one thread was seen in one stack: wall samples and CPU seconds attributed."""

    thread: int  # index into Samples.threads
    stack: int  # index into Samples.stacks
    wall: int
    cpu_s: float


@dataclass(frozen=True)
class Samples:
    """Aggregated stack samples of all Python threads.

    ``stacks[i]`` is a flat list ``[frame, line, frame, line, ...]`` from the outermost call to the
    innermost. ``timeline`` holds ``[t, thread, stack]`` rows, every ``timeline_stride``-th sample,
    for the trace; its length stays bounded however long the run."""

    interval_s: float = 0.01
    ticks: int = 0
    frames: list[Frame] = field(default_factory=list)
    stacks: list[list[int]] = field(default_factory=list)
    threads: list[ThreadInfo] = field(default_factory=list)
    counts: list[StackCount] = field(default_factory=list)
    timeline: list[list[float]] = field(default_factory=list)
    timeline_stride: int = 1
    sampler_cpu_s: float = 0.0


@dataclass(frozen=True)
class MemoryPoint:
    """Process-tree memory at time ``t`` (seconds since the run started)."""

    t: float
    rss: int
    uss: int | None = None
    processes: int = 1


@dataclass(frozen=True)
class Memory:
    """Resident memory of the target and its child processes over time (decimated)."""

    interval_s: float = 0.1
    points: list[MemoryPoint] = field(default_factory=list)
    peak_rss: int = 0
    peak_uss: int | None = None


@dataclass(frozen=True)
class Steps:
    """Training-step marks: ``dldoctor.step()`` calls, or optimizer steps when none were marked."""

    source: str = "none"  # "explicit" | "optimizer" | "none"
    count: int = 0
    times: list[float] = field(default_factory=list)  # every ``stride``-th step end, run-relative
    stride: int = 1


@dataclass(frozen=True)
class LoopInfo:
    """A ``for``/``while`` loop enclosing a source line."""

    line: int
    end_line: int
    kind: str  # "for" | "while" | "comprehension"
    targets: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)  # of the whole loop, nested loops included


@dataclass(frozen=True)
class SourceLine:
    """Facts about one hot line of user code, read from its source when the run ended."""

    file: str
    line: int
    text: str
    loops: list[LoopInfo] = field(default_factory=list)
    features: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CollectorStatus:
    """Whether a collector ran here, and why not if it did not."""

    name: str
    available: bool
    reason: str = ""


@dataclass(frozen=True)
class Environment:
    """The machine and software the run saw."""

    python: str = ""
    platform: str = ""
    cpu_count: int = 0
    memory_total: int = 0
    packages: dict[str, str] = field(default_factory=dict)
    thread_pools: list[dict[str, Any]] = field(default_factory=list)
    torch_threads: int | None = None
    gpus: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class RunMeta:
    """What was run, how it ended."""

    dldoctor_version: str = ""
    target: str = ""
    mode: str = "script"  # "script" | "module" | "api"
    argv: list[str] = field(default_factory=list)
    cwd: str = ""
    started_at: str = ""
    duration_s: float = 0.0
    exit_code: int | None = None
    signal: int | None = None
    status: str = "ok"  # ok | error | crashed | killed | timeout | interrupted
    incomplete: bool = False
    exception: str | None = None
    pid: int = 0


@dataclass(frozen=True)
class Run:
    """One profiled execution."""

    meta: RunMeta = field(default_factory=RunMeta)
    environment: Environment = field(default_factory=Environment)
    collectors: list[CollectorStatus] = field(default_factory=list)
    samples: Samples = field(default_factory=Samples)
    memory: Memory = field(default_factory=Memory)
    steps: Steps = field(default_factory=Steps)
    sources: list[SourceLine] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """A Run and the findings derived from it: the content of report.json."""

    run: Run
    findings: list[Finding] = field(default_factory=list)
    analyzer_errors: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """Return the report as JSON text (``format``, ``schema_version``, ``run``, ``findings``)."""
        payload = {"format": FORMAT_NAME, "schema_version": SCHEMA_VERSION, **to_dict(self)}
        return json.dumps(payload, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str, source: str = "report") -> Report:
        """Parse report JSON; raise ``ReportLoadError`` with one line saying what is wrong."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReportLoadError(f"{source} is not valid JSON ({exc.msg}); truncated?") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME or "run" not in data:
            raise ReportLoadError(f"{source} is not a dldoctor report.json")
        try:
            return from_dict(cls, data)
        except (TypeError, ValueError) as exc:
            raise ReportLoadError(f"{source} is damaged: {exc}") from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Report:
        """Read a report.json file; raise ``ReportLoadError`` if missing or unreadable."""
        path = Path(path)
        if path.is_dir():
            path = path / "report.json"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ReportLoadError(f"no such report: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ReportLoadError(f"cannot read {path}: {exc}") from None
        return cls.from_json(text, source=str(path))


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename, so no reader sees half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
