"""The lock monitor: lock sites (every lock created at one place), their contention and hold
times, the lock-order graph, wait spans, and the deadlock watchdog. The wrappers in
``collectors.locks`` report to the installed monitor; ``drain()`` turns it all into records."""

from __future__ import annotations

import _thread
import os
import sys
import threading
import time
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from dldoctor.collectors import locks
from dldoctor.collectors.frames import classify
from dldoctor.run import DLDOCTOR, USER

MIN_SPAN_S = 0.001  # lock waits shorter than this are counted but not kept as trace spans
SPAN_CAP = 2000  # spans kept per drain
INSTANCE_EDGE_CAP = 10_000  # lock-order edges kept between two locks of one site
STUCK_S = 2.0  # a thread blocked this long in acquire may be part of a deadlock
EDGE_THREADS = 8

_get_native_id = _thread.get_native_id  # kernel ids: not reused at once, unlike idents
_getframe = sys._getframe
_clock = time.monotonic


class LockSite:
    """All locks created at one place, and what happened to them (mutable, in the target)."""

    __slots__ = ("index", "kind", "created", "creator", "instances", "acquisitions",
                 "contended", "wait_s", "gil_wait_s", "max_wait_s", "hold_s", "holds", "timed",
                 "waits", "waiters")

    def __init__(self, index: int, kind: str, created: list[Any] | None, creator: str) -> None:
        self.index = index
        self.kind = kind
        self.created = created  # [file, line, function] of the user's line, or None
        self.creator = creator  # library function that made it ("Queue.__init__"), or ""
        self.instances = 0
        self.acquisitions = 0
        self.contended = 0
        self.wait_s = 0.0
        self.gil_wait_s = 0.0
        self.max_wait_s = 0.0
        self.hold_s = 0.0
        self.holds = 0
        self.timed = False
        self.waits: dict[tuple[CodeType, int], list[float]] = {}  # line -> [n, s, max]
        self.waiters: set[int] = set()


class _Edge:
    __slots__ = ("held", "acquired", "count", "held_at", "acquired_at", "threads", "guards",
                 "instances")

    def __init__(self, held: LockSite, acquired: LockSite, held_at: list[Any] | None,
                 acquired_at: list[Any] | None, guards: frozenset[int],
                 instances: tuple[int, int] | None = None) -> None:
        self.held, self.acquired = held, acquired
        self.instances = instances  # (held, acquired) lock numbers, for two locks of one site
        self.count = 0
        self.held_at, self.acquired_at = held_at, acquired_at
        self.threads: set[int] = set()
        self.guards = guards  # sites held around every observation (a gate lock: no deadlock)


class LockMonitor:
    """Owns the lock sites, the lock-order graph and the wait spans; ``drain()`` reports them."""

    def __init__(self, t0: float = 0.0, clock: Callable[[], float] = _clock) -> None:
        self.t0 = t0
        self._clock = clock
        self._lock = _thread.allocate_lock()  # raw: never one of ours
        self._sites: dict[tuple[Any, ...], LockSite] = {}
        self.sites: list[LockSite] = []
        self.edges: dict[tuple[int, int], _Edge] = {}
        self.instance_edges: dict[tuple[int, int], _Edge] = {}
        self._spans: list[list[float]] = []
        self._dropped_spans = 0
        self._sent: dict[int, tuple[Any, ...]] = {}
        self._edges_sent: dict[tuple[int, int], tuple[Any, ...]] = {}
        self._deadlocks: set[frozenset[int]] = set()
        self._saved: tuple[Any, Any] | None = None

    # -- install -------------------------------------------------------------------------
    def install(self) -> None:
        """Replace ``threading.Lock`` and ``threading.RLock`` with instrumented factories."""
        locks._MONITOR = self
        self._saved = (threading.Lock, threading.RLock)
        threading.Lock = locks.make_lock  # type: ignore[assignment,misc]
        threading.RLock = locks.make_rlock  # type: ignore[assignment]

    def uninstall(self) -> None:
        """Put the original factories back (locks already made keep working)."""
        if self._saved is not None and threading.Lock is locks.make_lock:  # type: ignore[comparison-overlap]
            threading.Lock, threading.RLock = self._saved  # type: ignore[misc]
        self._saved = None
        locks.forget_released()

    # -- called by the wrappers ------------------------------------------------------------
    def site_for(self, frame: FrameType | None, kind: str) -> LockSite | None:
        """Return the site of a lock created with ``frame`` as the creating caller, or None
        for dldoctor's own locks."""
        creator: CodeType | None = None
        while frame is not None:
            code = frame.f_code
            where = classify(code.co_filename)
            if where == USER:
                break
            if where == DLDOCTOR:
                return None
            creator = creator or code
            frame = frame.f_back
        user = (frame.f_code, frame.f_lineno) if frame is not None else None
        key = (kind, user, creator)
        site = self._sites.get(key)
        if site is None:
            with self._lock:
                site = self._sites.get(key)
                if site is None:
                    created = _describe(*user) if user is not None else None
                    label = _creator_label(creator)
                    site = LockSite(len(self.sites), kind, created, label)
                    self.sites.append(site)
                    self._sites[key] = site
        site.instances += 1
        return site

    def waited(self, site: LockSite, frame: FrameType, start: float, waited: float,
               thread: int, gil: float = 0.0) -> None:
        """Record one contended acquisition that waited ``waited`` seconds for the lock and
        then ``gil`` seconds for the GIL."""
        key = _user_line(frame)
        with self._lock:
            site.contended += 1
            site.wait_s += waited
            site.gil_wait_s += gil
            site.max_wait_s = max(site.max_wait_s, waited)
            site.timed = True
            if len(site.waiters) < 64:
                site.waiters.add(thread)
            if key is not None:
                cell = site.waits.setdefault(key, [0, 0.0, 0.0])
                cell[0] += 1
                cell[1] += waited
                cell[2] = max(cell[2], waited)
            if waited >= MIN_SPAN_S:
                if len(self._spans) < SPAN_CAP:
                    self._spans.append([round(start - self.t0, 6), round(waited, 6), thread,
                                        site.index])
                else:
                    self._dropped_spans += 1

    def nested(self, held: list[Any], lock: Any, thread: int) -> None:
        """Record lock-order edges: every lock in ``held`` was held while ``lock`` was taken."""
        site = lock._site
        for other in held:
            if other._site is site:
                key = (other._serial, lock._serial)
                edges = self.instance_edges
            else:
                key = (other._site.index, site.index)
                edges = self.edges
            edge = edges.get(key)
            if edge is None:
                if other is lock or len(edges) >= INSTANCE_EDGE_CAP:
                    continue
                edge = self._new_edge(other, lock, held, edges, key)
            edge.count += 1
            if edge.guards:
                edge.guards = edge.guards & {h._site.index for h in held if h is not other}
            if len(edge.threads) < EDGE_THREADS:
                edge.threads.add(_get_native_id())

    def _new_edge(self, other: Any, lock: Any, held: list[Any],
                  edges: dict[tuple[int, int], _Edge], key: tuple[int, int]) -> _Edge:
        held_at = _acquired_at(other)
        acquired_at = _acquired_at(lock, _getframe(1))
        guards = frozenset(h._site.index for h in held if h is not other)
        same_site = other._site is lock._site
        with self._lock:
            edge = edges.get(key)
            if edge is None:
                edge = _Edge(other._site, lock._site, held_at, acquired_at, guards,
                             key if same_site else None)
                edges[key] = edge
        return edge

    # -- watchdog and drain ----------------------------------------------------------------
    def find_deadlocks(self, now: float | None = None) -> list[dict[str, Any]]:
        """Return a ``deadlock`` record for each new cycle of threads blocked (> STUCK_S) on
        locks held by each other."""
        now = self._clock() if now is None else now
        stuck = {ident: entry for ident, entry in dict(locks._WAITING).items()
                 if now - entry[1] >= STUCK_S}
        records = []
        for start in stuck:
            cycle = _cycle_from(start, stuck)
            if cycle and frozenset(cycle) not in self._deadlocks:
                self._deadlocks.add(frozenset(cycle))
                records.append(self._deadlock_record(cycle, stuck, now))
        return records

    def _deadlock_record(self, cycle: list[int], stuck: dict[int, tuple[Any, float, FrameType]],
                         now: float) -> dict[str, Any]:
        threads = []
        for ident in cycle:
            lock, since, frame = stuck[ident]
            holds = [{"lock": h._site.index, "instance": h._serial, "at": _acquired_at(h)}
                     for h in locks.held_by(ident)]
            threads.append({"thread": ident, "name": _thread_name(ident),
                            "waits_for": lock._site.index, "instance": lock._serial,
                            "waits_at": _frame_site(frame),
                            "since": round(since - self.t0, 3), "holds": holds})
        return {"type": "deadlock", "t": round(now - self.t0, 3), "threads": threads,
                "sites": [self.describe_site(s) for s in self._cycle_sites(threads)]}

    def _cycle_sites(self, threads: list[dict[str, Any]]) -> list[LockSite]:
        indexes = {t["waits_for"] for t in threads} | {h["lock"] for t in threads
                                                       for h in t["holds"]}
        return [self.sites[i] for i in sorted(indexes)]

    def drain(self) -> list[dict[str, Any]]:
        """Return the sites and edges changed since the last drain, new wait spans and new
        deadlocks (one ``locks`` record, plus ``deadlock`` records)."""
        deadlocks = self.find_deadlocks()
        locks.forget_released()
        with self._lock:
            sites = [self.describe_site(s) for s in list(self.sites)]
            edges = [_edge_dict(e) for e in list(self.edges.values())]
            edges += [_edge_dict(e) for key, e in list(self.instance_edges.items())
                      if (key[1], key[0]) in self.instance_edges]
            spans, self._spans = self._spans, []
            dropped, self._dropped_spans = self._dropped_spans, 0
        sites = [s for s in sites if self._changed(self._sent, s["index"], s)]
        edges = [e for e in edges if self._changed(self._edges_sent, _edge_key(e), e)]
        record = {"type": "locks", "sites": sites, "edges": edges, "spans": spans,
                  "dropped_spans": dropped}
        return [record, *deadlocks] if sites or edges or spans or dropped else deadlocks

    @staticmethod
    def _changed(sent: dict[Any, tuple[Any, ...]], key: Any, value: dict[str, Any]) -> bool:
        signature = tuple(repr(v) for v in value.values())
        if sent.get(key) == signature:
            return False
        sent[key] = signature
        return True

    def describe_site(self, site: LockSite) -> dict[str, Any]:
        """Return the JSON-ready, cumulative figures of one lock site."""
        waits = sorted(site.waits.items(), key=lambda kv: -kv[1][1])[:10]
        return {"index": site.index, "kind": site.kind, "created": site.created,
                "creator": site.creator, "instances": site.instances,
                "acquisitions": site.acquisitions, "contended": site.contended,
                "wait_s": round(site.wait_s, 6), "gil_wait_s": round(site.gil_wait_s, 6),
                "max_wait_s": round(site.max_wait_s, 6),
                "hold_s": round(site.hold_s, 6), "holds": site.holds,
                "waiters": sorted(site.waiters),
                "waits": [[*_describe(code, line), int(n), round(s, 6), round(m, 6)]
                          for (code, line), (n, s, m) in waits]}


# -- sites -------------------------------------------------------------------------------------
def _describe(code: CodeType, line: int) -> list[Any]:
    return [code.co_filename, line, getattr(code, "co_qualname", code.co_name)]


def _line_of(code: CodeType, lasti: int) -> int:
    for start, end, line in code.co_lines():
        if start <= lasti < end and line is not None:
            return line
    return code.co_firstlineno


def _user_line(frame: FrameType | None, lasti: int | None = None) -> tuple[CodeType, int] | None:
    """Return (code, line) of the first user frame from ``frame`` outwards (the innermost
    non-dldoctor frame when there is none). ``lasti`` pins the line of ``frame`` itself."""
    fallback = None
    first = True
    while frame is not None:
        code = frame.f_code
        where = classify(code.co_filename)
        line = _line_of(code, lasti) if first and lasti is not None else frame.f_lineno
        first = False
        if where == USER:
            return code, line or code.co_firstlineno
        if where != DLDOCTOR and fallback is None:
            fallback = (code, line or code.co_firstlineno)
        frame = frame.f_back
    return fallback


def _frame_site(frame: FrameType | None, lasti: int | None = None) -> list[Any] | None:
    found = _user_line(frame, lasti)
    return _describe(*found) if found is not None else None


def _acquired_at(lock: Any, frame: FrameType | None = None) -> list[Any] | None:
    """Return where ``lock`` was acquired (its recorded frame), or where ``frame`` is."""
    if frame is not None:
        return _frame_site(frame)
    acq = lock._acq
    return _frame_site(acq, lock._lasti) if acq is not None else None


def _cycle_from(start: int, stuck: dict[int, tuple[Any, float, FrameType]]) -> list[int]:
    """Follow waits-for from ``start``; return the cycle it ends in (threads), or []."""
    path: list[int] = []
    position: dict[int, int] = {}
    current: int | None = start
    while current is not None and current in stuck and current not in position:
        position[current] = len(path)
        path.append(current)
        lock = stuck[current][0]
        current = lock._owner if lock._lock.locked() else None
    if current is None or current not in position:
        return []
    cycle = path[position[current]:]
    return cycle if start in cycle else []


def _thread_name(ident: int) -> str:
    thread = threading._active.get(ident)  # type: ignore[attr-defined]
    return thread.name if thread is not None else f"thread-{ident}"


def _edge_dict(edge: _Edge) -> dict[str, Any]:
    return {"held": edge.held.index, "acquired": edge.acquired.index, "count": edge.count,
            "held_at": edge.held_at, "acquired_at": edge.acquired_at,
            "threads": sorted(edge.threads), "guarded": bool(edge.guards),
            "instances": list(edge.instances) if edge.instances else []}


def _edge_key(edge: dict[str, Any]) -> tuple[int, ...]:
    return (edge["held"], edge["acquired"], *edge["instances"])


def _creator_label(code: CodeType | None) -> str:
    """Name the library function that made a lock: ``Queue.__init__``, ``import of logging``."""
    if code is None:
        return ""
    if code.co_filename.startswith("<frozen importlib"):
        return "import of an extension module"
    name = getattr(code, "co_qualname", code.co_name)
    if name == "<module>":
        return f"import of {os.path.splitext(os.path.basename(code.co_filename))[0]}"
    return name
