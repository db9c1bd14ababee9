"""Allocation attribution: which line of the user's code allocated the memory that stays.

Two tracers, both attributing each allocation to the innermost frame of the user's code on its
stack (not to numpy's or torch's frames):

- ``TraceWindow``: ``tracemalloc`` (Python objects and NumPy buffers; not torch's CPU tensors).
  Tracing costs 1.3–5x on allocation-heavy code, so in the default mode a window is opened only
  once the target's memory has grown for a while, and closed after a few snapshots; with
  ``--memory=trace`` one window spans the whole run (deeper stacks, periodic snapshots).
- ``NativeTrace``: memray (``--memory=native``), which also sees native allocations (torch's CPU
  allocator, C extensions) and reports what was still allocated when the target ended. memray
  is optional; without it the mode says how to install it and the run goes on.

Both produce ``heap-alloc`` records: ``lines`` rows ``[file, line, bytes, count]`` per snapshot."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dldoctor.collectors.frames import classify
from dldoctor.run import DLDOCTOR, LIBRARY, USER

TOP_LINES = 30
OUTSIDE = ("", 0, "")  # allocations with no user frame within the traced depth


@dataclass
class LineBytes:
    """Bytes and blocks attributed to one line."""

    bytes: int = 0
    count: int = 0


def innermost_user(frames: Iterable[tuple[str, int, str]]) -> tuple[str, int, str] | None:
    """Return the first (innermost) ``(file, line, function)`` in the user's code, or None
    (also for dldoctor's own allocations). ``frames`` go from the allocation outwards."""
    for file, line, function in frames:
        kind = classify(file) if file else LIBRARY
        if kind == DLDOCTOR:
            return None
        if kind == USER:
            return file, line, function
    return None


def lines_record(found: dict[tuple[str, int, str], LineBytes], window: int, kind: str,
                 t: float, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return a ``heap-alloc`` record of the ``TOP_LINES`` biggest lines of ``found``."""
    top = sorted(found.items(), key=lambda item: -item[1].bytes)[:TOP_LINES]
    return {"type": "heap-alloc", "window": window, "kind": kind, "t": round(t, 4),
            "lines": [[file, line, cell.bytes, cell.count] for (file, line, _fn), cell in top
                      if (file, line) != OUTSIDE[:2]],
            "outside": found.get(OUTSIDE, LineBytes()).bytes, **(extra or {})}


class TraceWindow:
    """``tracemalloc`` for a stretch of time. If the target traces already, its tracing is
    used and left running."""

    def __init__(self, index: int, nframe: int) -> None:
        self.index = index
        self.nframe = nframe
        self._owned = False
        self._kinds: dict[tuple[tuple[str, int], ...], tuple[str, int, str]] = {}

    def open(self, inherited: bool = False) -> None:
        """Start tracing (unless the target already does). ``inherited``: the tracing running
        now is the previous window's, handed on by its ``close(keep=True)``: this window
        owns it."""
        if not tracemalloc.is_tracing():
            tracemalloc.start(self.nframe)
            self._owned = True
        elif inherited:
            self._owned = True

    def snapshot(self, t: float) -> dict[str, Any]:
        """Return a ``heap-alloc`` record: live bytes per user line allocated since opening."""
        snapshot = tracemalloc.take_snapshot()
        by_stack: dict[tuple[tuple[str, int], ...], LineBytes] = {}
        for _domain, size, frames, *_rest in _raw_traces(snapshot):
            cell = by_stack.get(frames)
            if cell is None:
                cell = by_stack[frames] = LineBytes()
            cell.bytes += size
            cell.count += 1
        found: dict[tuple[str, int, str], LineBytes] = {}
        for frames, cell in by_stack.items():
            where = self._where(frames)
            total = found.setdefault(where, LineBytes())
            total.bytes += cell.bytes
            total.count += cell.count
        return lines_record(found, self.index, "tracemalloc", t,
                            {"overhead": tracemalloc.get_tracemalloc_memory()})

    def _where(self, frames: tuple[tuple[str, int], ...]) -> tuple[str, int, str]:
        where = self._kinds.get(frames)
        if where is None:  # raw frames are innermost first
            where = innermost_user((f, n, "") for f, n in frames) or OUTSIDE
            self._kinds[frames] = where
        return where

    def close(self, keep: bool = False) -> bool:
        """Stop tracing if this window started it (its traces are freed). With ``keep``, for a
        next window right after this one, tracing runs on with its traces cleared instead,
        and True says it is handed on (``open(inherited=True)``): on CPython before 3.12.9 and
        3.13.2, ``tracemalloc.stop()`` while another thread allocates can crash the process
        (gh-128679), so windows back to back never stop it."""
        handed_on = False
        if self._owned and tracemalloc.is_tracing():
            if keep:
                tracemalloc.clear_traces()
                handed_on = True
            else:
                tracemalloc.stop()
        self._owned = False
        return handed_on


def _raw_traces(snapshot: tracemalloc.Snapshot) -> Iterable[tuple[Any, ...]]:
    """The snapshot's traces as ``(domain, size, frames innermost first, ...)`` tuples."""
    raw = getattr(snapshot.traces, "_traces", None)
    if raw is not None:
        return raw
    return [(0, t.size, tuple((f.filename, f.lineno) for f in reversed(t.traceback)))
            for t in snapshot.traces]


class NativeTrace:
    """memray tracking for the whole run; ``finish()`` reports what was still allocated."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._tracker: Any = None

    def start(self) -> str:
        """Start tracking; return "" or a one-line reason why it cannot run here."""
        try:
            import memray
        except ImportError:
            return ("--memory=native needs memray, which is not installed "
                    "(pip install memray); native allocations were not traced")
        try:
            if os.path.exists(self.path):
                os.unlink(self.path)
            self._tracker = memray.Tracker(
                self.path, native_traces=False,
                file_format=memray.FileFormat.AGGREGATED_ALLOCATIONS)
            self._tracker.__enter__()
        except Exception as exc:
            self._tracker = None
            return f"memray could not start: {exc}"
        return ""

    def finish(self, index: int, t: float) -> dict[str, Any] | None:
        """Stop tracking; return a ``heap-alloc`` record of the allocations still alive."""
        if self._tracker is None:
            return None
        try:
            import memray

            self._tracker.__exit__(None, None, None)
            found: dict[tuple[str, int, str], LineBytes] = {}
            reader = memray.FileReader(self.path)
            for record in reader.get_leaked_allocation_records(merge_threads=True):
                stack = [(file, line, function) for function, file, line
                         in record.stack_trace(max_stacks=64)]
                cell = found.setdefault(innermost_user(stack) or OUTSIDE, LineBytes())
                cell.bytes += int(record.size)
                cell.count += int(record.n_allocations)
            reader.close()
        except Exception as exc:
            return {"type": "heap-status", "notes": [f"memray results unreadable: {exc}"]}
        finally:
            self._tracker = None
        return lines_record(found, index, "memray", t, {"file": self.path})
