"""The threads collector: lock instrumentation (``collectors.locks``), the functions threads
are started with (and whether their arguments are shared), and BLAS/OpenMP/torch thread-pool
sizes while the target runs.

In the target, ``ThreadCollector`` hooks ``threading.Thread.start`` and
``ThreadPoolExecutor.submit`` (both rare calls) and reads pool sizes at the agent's 1 s flush.
In the supervisor, ``build_threads`` turns the records into the Run's ``threads`` section,
adding the unguarded shared writes found in the source of the thread targets
(``collectors.races``)."""

from __future__ import annotations

import _thread
import functools
import sys
import threading
import weakref
from collections.abc import Callable
from types import CodeType, MethodType
from typing import Any

from dldoctor.collectors.frames import classify
from dldoctor.collectors.imports import when_imported
from dldoctor.collectors.lockmonitor import LockMonitor
from dldoctor.findings import Location
from dldoctor.run import (
    USER,
    BlockedThread,
    Deadlock,
    HeldLock,
    LockEdge,
    LockSite,
    LockWait,
    PoolReading,
    Threads,
    ThreadTarget,
)

NAME_CAP = 8
IMMUTABLE = (int, float, complex, str, bytes, bool, type(None), frozenset, range)
ID_CAP = 1000
WAIT_SPAN_CAP = 20_000


class _Target:
    """What was seen of one thread-target function."""

    def __init__(self, code: CodeType, via: str) -> None:
        self.code = code
        self.via = via
        self.starts = 0
        self.concurrency = 0
        self.names: list[str] = []
        self.first: dict[str, int] = {}
        self.seen: dict[str, set[int]] = {}
        self.shared: set[str] = set()
        self.alive: weakref.WeakSet[threading.Thread] = weakref.WeakSet()

    def note_args(self, labelled: list[tuple[str, Any]]) -> None:
        """A parameter is shared once two starts got the very same object for it."""
        for label, value in labelled:
            if isinstance(value, IMMUTABLE):  # one shared 1.5 or "train" means nothing
                continue
            self.first.setdefault(label, id(value))
            seen = self.seen.setdefault(label, set())
            if id(value) in seen:
                self.shared.add(label)
            elif len(seen) < ID_CAP:
                seen.add(id(value))

    @property
    def private(self) -> set[str]:
        """Parameters that got a different object in every start (two starts at least)."""
        return {label for label, seen in self.seen.items()
                if label not in self.shared and len(seen) >= 2}

    def record(self) -> dict[str, Any]:
        code = self.code
        private = self.private
        return {"file": code.co_filename, "line": code.co_firstlineno,
                "function": getattr(code, "co_qualname", code.co_name), "via": self.via,
                "starts": self.starts, "concurrency": self.concurrency, "names": self.names,
                "shared": sorted(self.shared), "private": sorted(private),
                "objects": {k: v for k, v in self.first.items() if k not in private}}


class TargetLog:
    """The user functions threads were started with (``Thread`` targets, ``run`` overrides,
    executor tasks), keyed by code object."""

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        self._targets: dict[CodeType, _Target] = {}
        self._sent: dict[CodeType, dict[str, Any]] = {}

    def note_thread(self, thread: threading.Thread) -> None:
        """Record a thread about to start."""
        target = getattr(thread, "_target", None)
        if target is not None:
            fn, args = _unwrap(target, tuple(getattr(thread, "_args", ())),
                               dict(getattr(thread, "_kwargs", {}) or {}))
        elif type(thread).run is not threading.Thread.run:
            fn, args = _unwrap(thread.run, (), {})
        else:
            return
        entry = self._entry(fn, "thread")
        if entry is None:
            return
        with self._lock:
            entry.note_args(args)
            entry.starts += 1
            entry.alive.add(thread)
            entry.concurrency = max(entry.concurrency,
                                    sum(1 for t in entry.alive if t.is_alive()) + 1)
            if len(entry.names) < NAME_CAP:
                entry.names.append(thread.name)

    def note_task(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                  workers: int) -> None:
        """Record a task submitted to a thread pool of ``workers`` threads."""
        fn, labelled = _unwrap(fn, args, kwargs)
        entry = self._entry(fn, "executor")
        if entry is None:
            return
        with self._lock:
            entry.note_args(labelled)
            entry.starts += 1
            entry.concurrency = max(entry.concurrency, min(workers, entry.starts))

    def _entry(self, fn: Any, via: str) -> _Target | None:
        code = getattr(fn, "__code__", None)
        if not isinstance(code, CodeType) or classify(code.co_filename) != USER:
            return None
        entry = self._targets.get(code)
        if entry is None:
            entry = self._targets.setdefault(code, _Target(code, via))
        return entry

    def drain(self) -> list[dict[str, Any]]:
        """Return a ``thread-targets`` record with the targets changed since the last drain."""
        with self._lock:
            records = [(code, t.record()) for code, t in self._targets.items()]
        changed = [r for code, r in records if self._sent.get(code) != r]
        self._sent.update(records)
        return [{"type": "thread-targets", "targets": changed}] if changed else []


def _unwrap(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
            ) -> tuple[Any, list[tuple[str, Any]]]:
    """Return (plain function, [(parameter name, argument)]) for a callable and its call
    arguments, seeing through ``functools.partial``, bound methods and callable objects."""
    while isinstance(fn, functools.partial):
        args, kwargs, fn = (*fn.args, *args), {**fn.keywords, **kwargs}, fn.func
    if isinstance(fn, MethodType):
        args, fn = (fn.__self__, *args), fn.__func__
    elif not hasattr(fn, "__code__"):
        call = vars(type(fn)).get("__call__")
        if hasattr(call, "__code__"):
            args, fn = (fn, *args), call
    code = getattr(fn, "__code__", None)
    if code is None:
        return fn, []
    names = code.co_varnames[:code.co_argcount]
    labelled = [(names[i] if i < len(names) else f"*args[{i - len(names)}]", value)
                for i, value in enumerate(args)]
    labelled.extend((name, value) for name, value in kwargs.items())
    return fn, labelled


class PoolWatch:
    """BLAS/OpenMP (threadpoolctl) and torch intra-op thread counts, recorded when they change:
    at every flush and when a thread starts (so a ``threadpool_limits`` block shorter than a
    flush is seen). Reads nothing until the target has imported numpy or torch."""

    def __init__(self, clock: Callable[[], float], t0: float, min_gap_s: float = 0.2) -> None:
        self._clock = clock
        self._t0 = t0
        self._min_gap_s = min_gap_s
        self._lock = _thread.allocate_lock()
        self._last: tuple[Any, ...] | None = None
        self._last_read = -1e9
        self._pending: list[dict[str, Any]] = []

    def sample(self, force: bool = False) -> None:
        """Read the pool sizes (at most every ``min_gap_s`` unless ``force``)."""
        now = self._clock()
        if "numpy" not in sys.modules and "torch" not in sys.modules or \
                (not force and now - self._last_read < self._min_gap_s):
            return
        self._last_read = now
        from dldoctor.collectors.pools import runtime_info

        info = runtime_info()
        pools = [{k: p.get(k) for k in ("user_api", "internal_api", "num_threads")}
                 for p in info.get("thread_pools", [])]
        signature = (repr(pools), info.get("torch_threads"))
        with self._lock:
            if signature != self._last:
                self._last = signature
                self._pending.append({"type": "pools", "t": round(now - self._t0, 3),
                                      "pools": pools, "torch_threads": info.get("torch_threads")})

    def drain(self) -> list[dict[str, Any]]:
        """Return the ``pools`` records of changes seen since the last drain."""
        self.sample(force=True)
        with self._lock:
            pending, self._pending = self._pending, []
        return pending


class ThreadCollector:
    """In-target collector ``threads`` (enabled by default; ``--threads off`` disables it)."""

    name = "threads"

    def __init__(self, agent: Any) -> None:
        self._enabled = agent.config.options.get("threads", "default") != "off"
        self.monitor = LockMonitor(agent.config.t0, agent._clock)
        self.targets = TargetLog()
        self.pools = PoolWatch(agent._clock, agent.config.t0)
        self._started = False
        self._original_start: Callable[..., Any] | None = None
        self._executor: tuple[Any, Any] | None = None

    def start(self) -> None:
        """Instrument the lock factories and hook thread starts and executor submits."""
        if not self._enabled:
            return
        self.monitor.install()
        self._hook_thread_start()
        when_imported("concurrent.futures.thread", self._hook_executor)
        self._started = True

    def _hook_thread_start(self) -> None:
        original = threading.Thread.start
        log, pools = self.targets, self.pools

        @functools.wraps(original)
        def start(thread: threading.Thread) -> None:
            try:
                log.note_thread(thread)
                pools.sample()
            except Exception:  # never break the target's thread start
                pass
            original(thread)

        self._original_start = original
        threading.Thread.start = start  # type: ignore[method-assign,assignment]

    def _hook_executor(self, module: Any) -> None:
        pool_class = module.ThreadPoolExecutor
        original = pool_class.submit
        log = self.targets
        self._executor = (pool_class, original)

        @functools.wraps(original)
        def submit(executor: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            try:
                log.note_task(fn, args, kwargs, int(getattr(executor, "_max_workers", 1)))
            except Exception:
                pass
            return original(executor, fn, *args, **kwargs)

        pool_class.submit = submit

    def drain(self) -> list[dict[str, Any]]:
        """Return lock, deadlock, thread-target and pool records new since the last drain."""
        if not self._started:
            return []
        return [*self.monitor.drain(), *self.targets.drain(), *self.pools.drain()]

    def finish(self) -> None:
        """Stop instrumenting new locks (locks already made keep working) and unhook thread
        starts and executor submits (an in-process session leaves the process as it found it)."""
        if self._started:
            self.monitor.uninstall()
            if self._original_start is not None:
                threading.Thread.start = self._original_start  # type: ignore[method-assign]
            if self._executor is not None:
                pool_class, submit = self._executor
                pool_class.submit = submit


# -- supervisor side ----------------------------------------------------------------------------
def _location(value: Any) -> Location | None:
    if not value:
        return None
    file, line, function = value
    return Location(str(file), int(line), str(function))


def _lock_site(record: dict[str, Any]) -> LockSite:
    return LockSite(
        index=int(record["index"]), kind=record.get("kind", "Lock"),
        created=_location(record.get("created")), creator=record.get("creator", ""),
        instances=int(record.get("instances", 0)), acquisitions=int(record.get("acquisitions", 0)),
        contended=int(record.get("contended", 0)), wait_s=float(record.get("wait_s", 0.0)),
        gil_wait_s=float(record.get("gil_wait_s", 0.0)),
        max_wait_s=float(record.get("max_wait_s", 0.0)), hold_s=float(record.get("hold_s", 0.0)),
        holds=int(record.get("holds", 0)), waiters=list(record.get("waiters", [])),
        waits=[LockWait(f, int(line), fn, int(n), float(s), float(m))
               for f, line, fn, n, s, m in record.get("waits", [])])


def _edge(record: dict[str, Any]) -> LockEdge:
    return LockEdge(held=int(record["held"]), acquired=int(record["acquired"]),
                    count=int(record.get("count", 0)), held_at=_location(record.get("held_at")),
                    acquired_at=_location(record.get("acquired_at")),
                    threads=list(record.get("threads", [])),
                    guarded=bool(record.get("guarded", False)),
                    instances=list(record.get("instances", [])))


def _deadlock(record: dict[str, Any]) -> Deadlock:
    threads = [BlockedThread(thread=int(t["thread"]), name=t.get("name", ""),
                             waits_for=int(t.get("waits_for", -1)),
                             instance=int(t.get("instance", 0)),
                             waits_at=_location(t.get("waits_at")),
                             since=float(t.get("since", 0.0)),
                             holds=[HeldLock(int(h["lock"]), _location(h.get("at")),
                                             int(h.get("instance", 0)))
                                    for h in t.get("holds", [])])
               for t in record.get("threads", [])]
    return Deadlock(t=float(record.get("t", 0.0)), threads=threads)


def merge_lock_records(records: list[dict[str, Any]], deadlocks: list[dict[str, Any]]
                       ) -> tuple[list[LockSite], list[LockEdge], list[list[float]], int,
                                  list[Deadlock]]:
    """Return (lock sites, edges, wait spans, spans dropped, deadlocks) from the channel's
    ``locks`` and ``deadlock`` records (sites and edges are cumulative: the last one wins)."""
    sites: dict[int, dict[str, Any]] = {}
    edges: dict[tuple[int, ...], dict[str, Any]] = {}
    spans: list[list[float]] = []
    dropped = 0
    for record in records:
        for site in record.get("sites", []):
            sites[int(site["index"])] = site
        for edge in record.get("edges", []):
            edges[(int(edge["held"]), int(edge["acquired"]), *edge.get("instances", []))] = edge
        spans.extend(record.get("spans", []))
        dropped += int(record.get("dropped_spans", 0))
    for site in _deadlock_sites(deadlocks):
        sites.setdefault(int(site["index"]), site)
    if len(spans) > WAIT_SPAN_CAP:
        dropped += len(spans) - WAIT_SPAN_CAP
        spans = sorted(spans, key=lambda s: -s[1])[:WAIT_SPAN_CAP]
        spans.sort(key=lambda s: s[0])
    return ([_lock_site(sites[i]) for i in sorted(sites)], [_edge(e) for e in edges.values()],
            spans, dropped, [_deadlock(d) for d in deadlocks])


def _deadlock_sites(deadlocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [site for record in deadlocks for site in record.get("sites", [])]


def _pools(records: list[dict[str, Any]]) -> list[PoolReading]:
    return [PoolReading(t=float(r.get("t", 0.0)), pools=list(r.get("pools", [])),
                        torch_threads=r.get("torch_threads")) for r in records]


def _targets(records: list[dict[str, Any]]) -> list[ThreadTarget]:
    latest: dict[tuple[str, int, str], dict[str, Any]] = {}
    for record in records:
        for target in record.get("targets", []):
            latest[(target["file"], int(target["line"]), target.get("function", ""))] = target
    fields = ("via", "starts", "concurrency", "names", "shared", "private", "objects")
    return [ThreadTarget(file=f, line=line, function=fn, **{k: t[k] for k in fields if k in t})
            for (f, line, fn), t in latest.items()]


def build_threads(extra: dict[str, list[dict[str, Any]]]) -> Threads:
    """Return the Run's ``threads`` section from the records the supervisor kept
    (``RunBuilder.extra``), with the shared writes found in the thread targets' source."""
    from dldoctor.collectors.races import shared_writes

    lock_records = extra.get("locks", [])
    if not lock_records and "thread-targets" not in extra and "deadlock" not in extra:
        return Threads(reason="the threads collector did not run in the target")
    locks, edges, spans, dropped, deadlocks = merge_lock_records(lock_records,
                                                                 extra.get("deadlock", []))
    targets = _targets(extra.get("thread-targets", []))
    return Threads(available=True, locks=locks, edges=edges, deadlocks=deadlocks, waits=spans,
                   waits_dropped=dropped, targets=targets, shared_writes=shared_writes(targets),
                   pools=_pools(extra.get("pools", [])))
