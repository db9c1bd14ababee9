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
from dldoctor.findings import Finding, Location
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
class SyncSite:
    """A device-to-host synchronising call in the user's code, counted inside training steps."""

    kind: str  # item|cpu|numpy|tolist|float|int|bool|format|repr|array|to-cpu|synchronize
    file: str
    line: int
    function: str = ""
    steps: int = 0  # steps in which it was called
    calls: int = 0  # calls inside steps
    time_s: float = 0.0  # wall time inside the calls: the stall, on CUDA


@dataclass(frozen=True)
class TransferSite:
    """A ``.to(device)``/``.cuda()`` call in the user's code, counted inside training steps."""

    kind: str  # "h2d": host to accelerator | "move": a device move that was a no-op (CPU torch)
    file: str
    line: int
    function: str = ""
    steps: int = 0
    calls: int = 0
    bytes: int = 0
    time_s: float = 0.0
    pageable_bytes: int = 0  # copied from pageable (not pinned) host memory
    same_data: int = 0  # calls that sent the very tensor this line had sent the time before
    non_blocking: int = 0


@dataclass(frozen=True)
class LoaderInfo:
    """A torch DataLoader the target iterated: its settings, where its code is, its data time."""

    dataset: str = ""
    dataset_file: str = ""  # the Dataset's ``__getitem__``
    dataset_line: int = 0
    collate: str = ""
    collate_file: str = ""
    collate_line: int = 0
    num_workers: int = 0
    pin_memory: bool = False
    batch_size: int | None = None
    persistent_workers: bool = False
    start_method: str = ""
    file: str = ""  # where the user's code iterates it
    line: int = 0
    function: str = ""
    # Batches fetched and seconds in ``__next__`` while the step hooks were in place: before
    # the training loop's first step, then in the steps timed (StepBreakdown.steps of them).
    batches: int = 0
    data_s: float = 0.0


@dataclass(frozen=True)
class StepBreakdown:
    """Where training-step time went, per phase, over the steps of ``source`` (torch hooks).

    ``rows`` holds ``[t_end, duration, *seconds per phase]`` for every ``stride``-th step; phases
    are exclusive and ``other`` (last) is the rest of the step."""

    available: bool = False
    reason: str = ""
    source: str = "none"
    cuda: bool = False
    phases: list[str] = field(default_factory=list)
    steps: int = 0
    duration_s: float = 0.0
    totals_s: list[float] = field(default_factory=list)
    rows: list[list[float]] = field(default_factory=list)
    stride: int = 1
    syncs: list[SyncSite] = field(default_factory=list)
    transfers: list[TransferSite] = field(default_factory=list)
    loaders: list[LoaderInfo] = field(default_factory=list)
    forward_roots: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GpuDevice:
    """One GPU's NVML timeline: ``samples`` rows ``[t, gpu_util_pct, memory_util_pct,
    memory_used_bytes]`` (every ``stride``-th); ``used`` if the target ran on it."""

    index: int
    name: str = ""
    used: bool = False
    memory_total: int = 0
    samples: list[list[float]] = field(default_factory=list)
    stride: int = 1


@dataclass(frozen=True)
class GpuTimeline:
    """NVML utilisation sampled by the supervisor, or why it could not be."""

    available: bool = False
    reason: str = ""
    interval_s: float = 0.1
    devices: list[GpuDevice] = field(default_factory=list)


@dataclass(frozen=True)
class NativeFrame:
    """A frame of a native stack: a C/C++ function in a shared library (``kind`` "native",
    ``line`` 0) or a Python function (``kind`` user/library/dldoctor, ``line`` the line run)."""

    function: str
    file: str
    line: int = 0
    kind: str = "native"


@dataclass(frozen=True)
class NativeProfile:
    """py-spy's native stack samples (``--native``), or why there are none. ``stacks[i]`` lists
    frame indexes from the outermost call to the innermost; ``counts`` rows are ``[thread,
    stack, samples]`` (threads named as py-spy names them, other processes prefixed by pid);
    ``dropped`` samples were in stacks beyond the kept ones."""

    available: bool = False
    reason: str = ""
    rate: int = 0
    frames: list[NativeFrame] = field(default_factory=list)
    stacks: list[list[int]] = field(default_factory=list)
    threads: list[str] = field(default_factory=list)
    counts: list[list[int]] = field(default_factory=list)
    dropped: int = 0


@dataclass(frozen=True)
class Workers:
    """Forked child processes (DataLoader workers) followed by the agent: their stack samples,
    merged (one thread entry per worker process)."""

    processes: int = 0
    cpu_s: float = 0.0
    samples: Samples = field(default_factory=Samples)


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
    status: str = "ok"  # ok | error | crashed | killed | timeout | interrupted | hung (interim)
    incomplete: bool = False
    exception: str | None = None
    pid: int = 0
    profiler_cpu_s: dict[str, float] = field(default_factory=dict)  # dldoctor's own CPU use


@dataclass(frozen=True)
class LockWait:
    """Contended acquisitions of one lock site at one line of code."""

    file: str
    line: int
    function: str = ""
    count: int = 0
    wait_s: float = 0.0
    max_wait_s: float = 0.0


@dataclass(frozen=True)
class LockSite:
    """Every lock created at one place (a "lock class", as lockdep calls it) and its use."""

    index: int
    kind: str = "Lock"  # Lock | RLock
    created: Location | None = None  # the user's line that created it
    creator: str = ""  # the library function that made it, e.g. "Queue.__init__"
    instances: int = 0
    acquisitions: int = 0
    contended: int = 0
    wait_s: float = 0.0  # waiting for the lock to be released
    gil_wait_s: float = 0.0  # then waiting for the GIL, once the lock was released to the thread
    max_wait_s: float = 0.0
    hold_s: float = 0.0  # timed only once the site had been contended
    holds: int = 0
    waiters: list[int] = field(default_factory=list)  # ids of the threads that waited
    waits: list[LockWait] = field(default_factory=list)  # most waited-at lines first


@dataclass(frozen=True)
class LockEdge:
    """Lock order: lock site ``held`` was held while lock site ``acquired`` was acquired."""

    held: int
    acquired: int
    count: int = 0
    held_at: Location | None = None
    acquired_at: Location | None = None
    threads: list[int] = field(default_factory=list)  # native ids of the threads that did it
    guarded: bool = False  # another lock was held around every such acquisition
    instances: list[int] = field(default_factory=list)  # [held, acquired]: two locks of one site


@dataclass(frozen=True)
class HeldLock:
    """A lock a blocked thread holds, and where it acquired it."""

    lock: int
    at: Location | None = None
    instance: int = 0


@dataclass(frozen=True)
class BlockedThread:
    """One thread of a deadlock: the locks it holds and the one it waits for."""

    thread: int
    name: str = ""
    waits_for: int = -1
    instance: int = 0  # which lock of the site ``waits_for``
    waits_at: Location | None = None
    since: float = 0.0
    holds: list[HeldLock] = field(default_factory=list)


@dataclass(frozen=True)
class Deadlock:
    """Threads seen blocked on each other's locks (a wait-for cycle) at time ``t``."""

    t: float
    threads: list[BlockedThread] = field(default_factory=list)


@dataclass(frozen=True)
class ThreadTarget:
    """A function threads ran: a ``Thread`` target or ``run`` override, or an executor task."""

    file: str
    line: int
    function: str = ""
    via: str = "thread"  # thread | executor
    starts: int = 0  # threads started with it / tasks submitted
    concurrency: int = 0  # most threads that could run it at once
    names: list[str] = field(default_factory=list)
    shared: list[str] = field(default_factory=list)  # parameters given one object every time
    private: list[str] = field(default_factory=list)  # parameters given a new object each time
    objects: dict[str, int] = field(default_factory=dict)  # parameter -> id of its first argument


@dataclass(frozen=True)
class SharedWrite:
    """A read-modify-write of state several threads reach, outside any ``with lock:`` (read
    from the source of the functions threads ran)."""

    file: str
    line: int
    function: str
    target: str  # the expression written: ``self.count``, ``w``, ``counts[key]``
    scope: str  # global | closure | attribute | argument
    text: str = ""
    threads: int = 0  # most threads that could run it at once
    starts: int = 0  # threads started (tasks submitted) running it, overlapping or not
    evidence: str = "static"  # static | runtime (a shared object was seen at thread start)


@dataclass(frozen=True)
class PoolReading:
    """BLAS/OpenMP and torch thread-pool sizes in effect from time ``t`` on."""

    t: float
    pools: list[dict[str, Any]] = field(default_factory=list)
    torch_threads: int | None = None


@dataclass(frozen=True)
class Threads:
    """Thread behaviour: locks and their contention, lock order, deadlocks, the functions
    threads ran and the shared writes in them, thread-pool sizes during the run."""

    available: bool = False
    reason: str = ""
    locks: list[LockSite] = field(default_factory=list)
    edges: list[LockEdge] = field(default_factory=list)
    deadlocks: list[Deadlock] = field(default_factory=list)
    waits: list[list[float]] = field(default_factory=list)  # [t, s, thread id, lock], >= 1 ms
    waits_dropped: int = 0
    targets: list[ThreadTarget] = field(default_factory=list)
    shared_writes: list[SharedWrite] = field(default_factory=list)
    pools: list[PoolReading] = field(default_factory=list)


@dataclass(frozen=True)
class HeapSite:
    """A line of user code that grows, fills or creates something that holds memory."""

    file: str
    line: int
    function: str = ""
    text: str = ""


@dataclass(frozen=True)
class HeapRoot:
    """A variable that held memory, followed across censuses: a container (list, dict, deque,
    set, ``lru_cache``), a large tensor or array, or a tensor whose autograd graph stays alive.
    The series hold one value per census in which it was seen (``t``)."""

    path: str  # as the user names it: "losses", "trainer.history", "log(history=)"
    scope: str  # local | global | attribute | default | class | cache
    kind: str  # list | dict | deque | set | lru_cache | tensor | ndarray
    file: str = ""  # the file of the frame or module that holds it
    function: str = ""
    line: int = 0  # first line of that function (0 for module globals)
    item: str = ""  # a typical item, e.g. "ndarray float64 (64, 256)"
    grad: bool = False  # holds tensors with ``grad_fn`` (their autograd graphs stay alive)
    t: list[float] = field(default_factory=list)
    length: list[int] = field(default_factory=list)
    bytes: list[int] = field(default_factory=list)  # estimated host bytes
    device_bytes: list[int] = field(default_factory=list)
    graph_nodes: list[int] = field(default_factory=list)  # autograd nodes reachable
    sites: list[HeapSite] = field(default_factory=list)  # lines that grow it, loops first


@dataclass(frozen=True)
class AllocationLine:
    """Bytes still allocated from one user line (the innermost user frame of each allocation)
    across the snapshots of one allocation trace window."""

    file: str
    line: int
    function: str = ""
    text: str = ""
    window: int = 0
    t: list[float] = field(default_factory=list)
    bytes: list[int] = field(default_factory=list)
    count: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class AllocationWindow:
    """A stretch of time during which allocations were traced."""

    index: int
    kind: str  # tracemalloc | cuda-history | memray
    start: float
    end: float
    nframe: int = 0
    overhead_bytes: int = 0  # the tracer's own memory at the end


@dataclass(frozen=True)
class TensorCensus:
    """Live torch tensors at time ``t`` (one pass over the garbage collector's objects)."""

    t: float
    count: int = 0
    bytes: int = 0  # host storage, each storage counted once
    device_bytes: int = 0
    with_grad: int = 0  # non-leaf tensors holding a ``grad_fn``
    duration_s: float = 0.0


@dataclass(frozen=True)
class GradObservation:
    """A user variable seen holding a tensor with ``grad_fn``: an autograd graph recorded there."""

    t: float
    file: str
    line: int  # where the frame was
    function: str = ""
    variable: str = ""
    grad_fn: str = ""
    sites: list[HeapSite] = field(default_factory=list)  # where the variable is assigned


@dataclass(frozen=True)
class Heap:
    """What held the target's memory over time (the in-target memory collector, ``heap``).

    ``censuses``/``backward``: time of each census of the user's variables and the count of
    ``backward()`` calls by then (None before torch was imported). ``device`` holds rows
    ``[t, allocated, reserved]`` of the CUDA caching allocator (every ``device_stride``-th)."""

    mode: str = "off"  # off | default | trace | native
    available: int | None = None  # host memory available at the last census
    censuses: list[float] = field(default_factory=list)
    backward: list[int | None] = field(default_factory=list)
    backward_total: int | None = None  # backward() calls in the whole run
    roots: list[HeapRoot] = field(default_factory=list)
    tensors: list[TensorCensus] = field(default_factory=list)
    device: list[list[float]] = field(default_factory=list)
    device_stride: int = 1
    device_total: int | None = None
    device_free: int | None = None
    windows: list[AllocationWindow] = field(default_factory=list)
    allocations: list[AllocationLine] = field(default_factory=list)
    inference: list[GradObservation] = field(default_factory=list)
    cost_s: float = 0.0  # time the collector spent holding the interpreter
    notes: list[str] = field(default_factory=list)


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
    breakdown: StepBreakdown = field(default_factory=StepBreakdown)
    gpu: GpuTimeline = field(default_factory=GpuTimeline)
    workers: Workers = field(default_factory=Workers)
    threads: Threads = field(default_factory=Threads)
    heap: Heap = field(default_factory=Heap)
    native: NativeProfile = field(default_factory=NativeProfile)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """A Run and the findings derived from it: the content of report.json."""

    run: Run
    findings: list[Finding] = field(default_factory=list)
    analyzer_errors: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """Return the report as JSON text: ``format``, ``schema_version``, run, findings."""
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
            report = from_dict(cls, data)
        except (TypeError, ValueError) as exc:
            raise ReportLoadError(f"{source} is damaged: {exc}") from None
        from dldoctor.integrity import check_references  # it imports this module's types

        check_references(report.run, source)
        return report

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
