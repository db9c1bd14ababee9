"""The in-target memory collector (``heap``): what holds memory, and who allocated it.

One mostly-sleeping thread wakes every ``TICK_S`` and

- reads the process's resident memory and, when the target uses CUDA, the caching allocator's
  allocated/reserved bytes (also at step ends, at most every ``STEP_READ_S``);
- runs a census of the user's variables (``retention.Census``) at growing intervals (a share of
  the time since a census first found something to follow, so slow imports do not thin them;
  while none has, a share of the whole run up to ``CENSUS_IDLE_MAX_S``), each costing at most
  ``CENSUS_DUTY`` of the time since the previous one (``CENSUS_STILL_DUTY`` while nothing it
  follows grows: a census holds the GIL, ~2 ms with a torch model's state, and that much stalls
  the training loop);
- runs a census of live torch tensors (``gc.get_objects()``, O(heap)) rarely: after
  ``TENSOR_FIRST_S``, then at most ``TENSOR_DUTY`` of the time;
- in the default mode, opens one short ``tracemalloc`` window only after ``WINDOW_AFTER_S``,
  when memory has grown for ten seconds and no census variable explains it (tracing makes the
  target 1.3-5x slower while it lasts); a CUDA allocation-history window (~2 us per CUDA
  allocation) once CUDA memory has grown for two seconds; with ``--memory=trace`` tracemalloc
  runs for the whole run, with ``--memory=native`` memray does.

``build_heap`` (supervisor side) turns the records into the Run's ``heap`` section and reads the
source for the lines that grow each variable."""

from __future__ import annotations

import _thread
import ast
import os
import select
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from dldoctor.collectors.allocations import NativeTrace, TraceWindow
from dldoctor.collectors.bounded import Decimator
from dldoctor.collectors.imports import when_imported
from dldoctor.collectors.ownthread import OwnThread
from dldoctor.collectors.retention import Budget, Census
from dldoctor.collectors.sites import _enclosing_function, assignment_sites, growth_sites
from dldoctor.collectors.source import _parse
from dldoctor.collectors.torch_memory import CudaHistory, TorchMemory
from dldoctor.run import (
    AllocationLine,
    AllocationWindow,
    GradObservation,
    Heap,
    HeapRoot,
    HeapSite,
    TensorCensus,
)

MODES = ("default", "trace", "native", "off")
TICK_S = 0.25
STEP_READ_S = 0.1
CENSUS_FIRST_S, CENSUS_MIN_S, CENSUS_MAX_S = 0.3, 0.4, 20.0
CENSUS_IDLE_MAX_S = 5.0  # while no census has found anything: a share of the run, up to this
CENSUS_FRACTION, CENSUS_DUTY = 0.12, 0.01  # of the time so far; of the time between two
CENSUS_STILL_DUTY = 0.003  # ... while no variable the census follows grows
# A tensor census walks the whole heap with the GIL held (~30 ms once torch is imported): not
# before 20 s, so that it stays ~0.1 % of any run it happens in.
TENSOR_FIRST_S, TENSOR_MIN_S, TENSOR_DUTY = 20.0, 60.0, 0.002
WINDOW_S, WINDOW_NFRAME, TRACE_NFRAME, TRACE_DUTY = 0.75, 4, 16, 0.25
TRACE_MIN_S, TRACE_MAX_S, TRACE_FRACTION = 1.5, 30.0, 0.25  # --memory=trace window lengths
FINISH_WAIT_S = 10.0  # how long finish() waits for a running tick (a snapshot) to end
WINDOW_AFTER_S = 60.0  # a window (2-5x slower for WINDOW_S) is then <= 3 % of the run
DEVICE_CAP = 4_000
MAX_ROOT_KEYS = 5_000
MAX_POINTS = 400  # per root series in the Run


@dataclass
class GrowthWatch:
    """Spots sustained growth of a reading inside the target: the minimum per ``bucket_s``
    rose ``buckets`` times in a row, by at least ``min_bytes`` and ``min_fraction`` in all."""

    bucket_s: float = 0.5
    buckets: int = 4
    min_bytes: int = 4 << 20
    min_fraction: float = 0.01
    min_rising: float = 1.0  # share of bucket-to-bucket steps that must rise
    floors: list[float] = field(default_factory=list)
    _bucket: int = -1

    def add(self, t: float, value: float) -> None:
        """Record one reading at time ``t``."""
        bucket = int(t / self.bucket_s)
        if bucket != self._bucket:
            self._bucket = bucket
            self.floors.append(value)
            del self.floors[:-(self.buckets + 1)]
        else:
            self.floors[-1] = min(self.floors[-1], value)

    def sustained(self) -> bool:
        """True if the last ``buckets`` complete buckets each rose enough."""
        done = self.floors[:-1]
        if len(done) < self.buckets:
            return False
        rising = sum(b > a for a, b in zip(done, done[1:])) / (len(done) - 1)
        grown = done[-1] - done[0]
        return rising >= self.min_rising and grown >= max(self.min_bytes,
                                                           self.min_fraction * done[0])


class HeapCollector:
    """The ``heap`` child collector (see the module docstring)."""

    name = "heap"

    def __init__(self, agent: Any) -> None:
        mode = agent.config.options.get("memory", "default")
        self.mode = mode if mode in MODES else "default"
        self._agent = agent
        self._clock: Callable[[], float] = agent._clock
        self._t0: float = agent.config.t0
        self._lock = _thread.allocate_lock()
        self._tick_lock = _thread.allocate_lock()  # one tick at a time, none after finish()
        self._stopped = False
        self._records: list[dict[str, Any]] = []
        self._notes: list[str] = []
        self.torch = TorchMemory()
        self._device: Decimator[list[float]] = Decimator(DEVICE_CAP)
        self._host_watch = GrowthWatch(bucket_s=1.0, buckets=10, min_bytes=32 << 20,
                                       min_rising=0.8)
        self._device_watch = GrowthWatch(min_bytes=16 << 20)
        self._window: TraceWindow | None = None
        self._window_start = 0.0
        self._window_length = WINDOW_S
        self._next_snapshot = 0.0
        self._cuda: CudaHistory | None = None
        self._cuda_start = 0.0
        self._cuda_index = -1
        self._cuda_done = False
        self._cuda_first: dict[tuple[str, int, str], Any] = {}
        self._windows = 0
        self._native: NativeTrace | None = None
        self._root_keys: dict[tuple[int, str], int] = {}
        self._next_census = CENSUS_FIRST_S
        self._explained = False
        self._active_since: float | None = None
        self._oldest: dict[str, int] = {}
        self._last_roots: dict[tuple[int, str], tuple[int, int]] = {}
        self._last_paths: dict[str, tuple[int, int]] = {}
        self._last_rss: tuple[float, int] | None = None
        self._next_tensors = TENSOR_FIRST_S
        self._last_step_read = 0.0
        self._cost = 0.0
        self._thread: OwnThread | None = None
        self._stop_r = self._stop_w = -1
        self._pid = os.getpid()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Install the torch hooks, start the tracer of the mode and the collector thread."""
        if self.mode == "off":
            return
        when_imported("torch", self._attach_torch)
        if self.mode == "trace":
            self._open_window(0.0, TRACE_NFRAME)
        elif self.mode == "native":
            channel_dir = os.path.dirname(os.path.abspath(self._agent.config.channel))
            self._native = NativeTrace(os.path.join(channel_dir, "memray.bin"))
            problem = self._native.start()
            if problem:
                self._native = None
                self._note(problem)
        self._stop_r, self._stop_w = os.pipe()
        self._thread = OwnThread(self._loop, "dldoctor-heap")
        self._thread.start()

    def drain(self) -> list[dict[str, Any]]:
        """Return the records gathered since the last drain (device readings batched)."""
        with self._lock:
            records, self._records = self._records, []
            points = self._device.take()
        if points:
            records.append({"type": "heap-device", "points": points,
                            "stride": self._device.stride})
        return records

    def finish(self) -> None:
        """Stop the thread, close tracing (last snapshots), report the collector's cost.

        A tick still running (a snapshot of a long trace can take seconds on a loaded
        machine) is waited for, so the thread and ``finish`` never work on one window; the
        status record is written whatever happens."""
        if self.mode == "off" or os.getpid() != self._pid:
            return
        try:
            if self._thread is not None and self._thread.is_alive():
                os.write(self._stop_w, b"x")
            if self._tick_lock.acquire(timeout=FINISH_WAIT_S):
                try:
                    self._stopped = True
                    self._close_all(self._now())
                finally:
                    self._tick_lock.release()
            else:
                self._note(f"the memory collector's last tick ran past {FINISH_WAIT_S:.0f} s "
                           "at exit: its last allocation snapshot is missing")
        finally:
            capacity = self.torch.device_capacity()
            self._emit({"type": "heap-status", "mode": self.mode,
                        "cost_s": round(self._cost, 6),
                        "backward": self.torch.backward_calls if self.torch.attached else None,
                        "device_free": capacity[0] if capacity else None,
                        "device_total": capacity[1] if capacity else None})

    def _close_all(self, now: float) -> None:
        if self._window is not None:
            self._close_window(now)
        if self._cuda is not None:
            self._close_cuda(now)
        if self._native is not None:
            native, self._native = self._native, None
            record = native.finish(self._next_window(), now)
            if record is not None:
                self._emit(record)

    # ------------------------------------------------------------------ the thread

    def _loop(self) -> None:
        self._agent.sampler.exclude_thread(_thread.get_ident())
        failed = False
        while True:
            ready, _, _ = select.select([self._stop_r], [], [], TICK_S)
            if ready:
                return
            try:
                with self._tick_lock:
                    if self._stopped:
                        return
                    self._tick()
            except Exception as exc:  # never break the target; say it once
                if not failed:
                    failed = True
                    self._note(f"memory collector error: {type(exc).__name__}: {exc}")

    def _tick(self) -> None:
        now = self._now()
        self._host_watch.add(now, _rss())
        reading = self.torch.device_reading() if self.torch.attached else None
        if reading is not None:
            self._device_point(now, reading)
        if now >= self._next_census:
            self._census(now)
        if self.torch.attached and now >= self._next_tensors:
            self._tensor_census(now)
        self._windows_tick(now)

    def _attach_torch(self, torch: Any) -> None:
        """Once the target imports torch: count backward passes and, with a CUDA (or ROCm)
        build of torch, read device memory at step ends (a NumPy target's steps, and a
        CPU-only torch's, then cost nothing extra)."""
        self.torch.attach(torch)
        version = getattr(torch, "version", None)
        if getattr(version, "cuda", None) or getattr(version, "hip", None):  # no device: no
            self._agent.steps.listen(self._on_step)  # device readings, no call per step

    def _on_step(self, _source: str, clock_now: float) -> None:
        """At a step's end (in the target's thread): a device reading, at most every 0.1 s."""
        if clock_now - self._last_step_read < STEP_READ_S:
            return
        self._last_step_read = clock_now
        reading = self.torch.device_reading()
        if reading is not None:
            self._device_point(clock_now - self._t0, reading)

    def _device_point(self, now: float, reading: tuple[int, int]) -> None:
        with self._lock:
            self._device.offer([round(now, 4), reading[0], reading[1]])
        self._device_watch.add(now, reading[0])

    # ------------------------------------------------------------------ censuses

    def _census(self, now: float) -> None:
        started = time.thread_time()
        census = Census(sys._current_frames(), Budget(), self._oldest).run()
        if len(self._oldest) > MAX_ROOT_KEYS:
            self._oldest.clear()
        self._explained = self._explains(now, census.roots)
        still = self._still(census.roots)
        rows, new = [], []
        for root in census.roots:
            ident = (root.key, root.path)
            index = self._root_keys.get(ident)
            if index is None:
                if len(self._root_keys) >= MAX_ROOT_KEYS:
                    continue
                index = self._root_keys[ident] = len(self._root_keys)
                new.append({"key": index, "path": root.path, "scope": root.scope,
                            "kind": root.kind, "file": root.file, "function": root.function,
                            "line": root.line, "item": root.item, "grad": root.grad})
            rows.append([index, root.length, root.bytes, root.device_bytes, root.graph_nodes])
        cost = time.thread_time() - started
        self._cost += cost
        self._emit({"type": "heap-census", "t": round(now, 4), "new": new, "roots": rows,
                    "grad": [[g.file, g.line, g.function, g.def_line, g.variable, g.grad_fn]
                             for g in census.grad_locals],
                    "backward": self.torch.backward_calls if self.torch.attached else None,
                    "available": _available(), "truncated": census.budget.truncated,
                    "cost_s": round(cost, 6)})
        if self._active_since is None and (census.roots or census.grad_locals):
            self._active_since = now  # the user's code holds something: follow it from here
        if self._active_since is None:  # nothing to follow yet: thin out, but keep looking
            base = min(CENSUS_IDLE_MAX_S, max(CENSUS_MIN_S, CENSUS_FRACTION * now))
        else:
            base = max(CENSUS_MIN_S, CENSUS_FRACTION * (now - self._active_since))
        duty = CENSUS_STILL_DUTY if still else CENSUS_DUTY
        self._next_census = now + min(CENSUS_MAX_S, max(base, min(cost / duty, 4 * base)))
        if self.mode == "default" and self._window is None and not self._windows \
                and now >= WINDOW_AFTER_S and self._host_watch.sustained() \
                and not self._explained:
            self._open_window(now, WINDOW_NFRAME)  # growth the census cannot name: trace it

    def _still(self, roots: list[Any]) -> bool:
        """True if the census found variables, all seen by the previous one too (by name:
        ``x = x + y`` makes a new object each time), none weighing more or holding more
        autograd nodes than then."""
        previous, self._last_paths = self._last_paths, {
            r.path: (r.bytes + r.device_bytes, r.graph_nodes) for r in roots}
        return bool(roots) and all(
            path in previous and weight <= previous[path][0] and nodes <= previous[path][1]
            for path, (weight, nodes) in self._last_paths.items())

    def _explains(self, now: float, roots: list[Any]) -> bool:
        """True if a followed variable grew as much as the process since the last census, or
        gained autograd nodes: the census names the leak, no allocation tracing is needed."""
        previous, self._last_roots = self._last_roots, {
            (r.key, r.path): (r.bytes + r.device_bytes, r.graph_nodes) for r in roots}
        rss = _rss()
        before, self._last_rss = self._last_rss, (now, rss)
        if before is None:
            return False
        grown = rss - before[1]
        for key, (weight, nodes) in self._last_roots.items():
            old = previous.get(key)
            if old is not None and (nodes > old[1] or weight - old[0] >= max(1, grown) / 2):
                return True
        return False

    def _tensor_census(self, now: float) -> None:
        record = self.torch.tensor_census()
        self._cost += record["duration_s"]
        self._emit({"type": "heap-tensors", "t": round(now, 4), **record})
        self._next_tensors = now + max(TENSOR_MIN_S, record["duration_s"] / TENSOR_DUTY)

    # ------------------------------------------------------------------ tracing windows

    def _windows_tick(self, now: float) -> None:
        if self._window is not None:
            if now - self._window_start >= self._window_length - 1e-6:
                if self.mode == "trace":  # back to back: each window traces from empty
                    inherited = self._close_window(now, keep=True)
                    self._open_window(self._now(), TRACE_NFRAME, inherited)
                else:
                    self._close_window(now)
            elif now >= self._next_snapshot:
                self._snapshot(now)
        if self._cuda is not None and now - self._cuda_start >= WINDOW_S:
            self._close_cuda(now)
        elif self._cuda is None and self.mode != "off" and self.torch.attached \
                and self._device_watch.sustained() and not self._cuda_done:
            self._open_cuda(now)

    def _next_window(self) -> int:
        self._windows += 1
        return self._windows - 1

    def _open_window(self, now: float, nframe: int, inherited: bool = False) -> None:
        self._window = TraceWindow(self._next_window(), nframe)
        self._window.open(inherited)
        self._window_start = now
        self._window_length = WINDOW_S if self.mode != "trace" else \
            min(TRACE_MAX_S, max(TRACE_MIN_S, TRACE_FRACTION * now))
        self._next_snapshot = now + max(TICK_S, self._window_length / 4)

    def _snapshot(self, now: float) -> None:
        assert self._window is not None
        started = time.thread_time()
        record = self._window.snapshot(now)
        if self._stopped:  # finish(): the target's code returned, what it freed is gone
            record["at_exit"] = True
        self._emit(record)
        cost = time.thread_time() - started
        self._cost += cost
        self._next_snapshot = now + max(TICK_S, self._window_length / 4, cost / TRACE_DUTY)

    def _close_window(self, now: float, keep: bool = False) -> bool:
        """Close the tracemalloc window (a last snapshot); return True if its tracing runs on
        for the next (``keep``: see ``TraceWindow.close``)."""
        window = self._window
        assert window is not None
        self._snapshot(now)
        handed_on = window.close(keep)
        self._window = None
        self._emit({"type": "heap-window", "index": window.index, "kind": "tracemalloc",
                    "start": round(self._window_start, 4), "end": round(now, 4),
                    "nframe": window.nframe})
        return handed_on

    def _open_cuda(self, now: float) -> None:
        history = CudaHistory(self.torch.torch)
        self._cuda_done = True
        if history.start():
            self._cuda, self._cuda_start = history, now
            self._cuda_index = self._next_window()
            self._cuda_first = history.lines()

    def _close_cuda(self, now: float) -> None:
        history = self._cuda
        assert history is not None
        lines = history.lines()
        history.stop()
        self._cuda = None
        for t, found in ((self._cuda_start, self._cuda_first), (now, lines)):
            top = sorted(found.items(), key=lambda item: -item[1].bytes)[:30]
            self._emit({"type": "heap-alloc", "window": self._cuda_index, "kind": "cuda-history",
                        "t": round(t, 4), "outside": 0,
                        "lines": [[f, n, c.bytes, c.count] for (f, n, _fn), c in top]})
        self._emit({"type": "heap-window", "index": self._cuda_index, "kind": "cuda-history",
                    "start": round(self._cuda_start, 4), "end": round(now, 4), "nframe": 0})

    # ------------------------------------------------------------------ helpers

    def _now(self) -> float:
        return self._clock() - self._t0

    def _emit(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._records.append(record)

    def _note(self, text: str) -> None:
        self._notes.append(text)
        self._emit({"type": "heap-status", "mode": self.mode, "notes": [text]})


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss() -> int:
    """Resident bytes of this process (``/proc/self/statm``; psutil elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        import psutil

        return int(psutil.Process().memory_info().rss)


def _available() -> int | None:
    """Memory the system can still give (``MemAvailable`` of ``/proc/meminfo``; psutil
    elsewhere: importing it inside the target mid-run costs the target ~15 ms)."""
    try:
        with open("/proc/meminfo", "rb") as handle:
            for line in handle:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:
        return None


# ---------------------------------------------------------------------- supervisor side


def build_heap(extra: dict[str, list[dict[str, Any]]]) -> Heap:
    """Return the Run's ``heap`` section from the collector's records (``RunBuilder.extra``)."""
    status = extra.get("heap-status", [])
    censuses = extra.get("heap-census", [])
    if not status and not censuses:
        return Heap()
    final = status[-1] if status else {}
    notes = [n for record in status for n in record.get("notes", [])]
    mode = next((r["mode"] for r in reversed(status) if r.get("mode")), "default")
    times = [float(c["t"]) for c in censuses]
    backward = [c.get("backward") for c in censuses]
    device, stride = _device_points(extra.get("heap-device", []))
    return Heap(
        mode=mode,
        available=next((c["available"] for c in reversed(censuses) if c.get("available")), None),
        censuses=times, backward=backward, backward_total=final.get("backward"),
        roots=_roots(censuses),
        tensors=[TensorCensus(**{k: r[k] for k in ("t", "count", "bytes", "device_bytes",
                                                   "with_grad", "duration_s") if k in r})
                 for r in extra.get("heap-tensors", [])],
        device=device, device_stride=stride,
        device_total=final.get("device_total"), device_free=final.get("device_free"),
        windows=[AllocationWindow(index=w["index"], kind=w["kind"], start=w["start"],
                                  end=w["end"], nframe=w.get("nframe", 0))
                 for w in extra.get("heap-window", [])],
        allocations=_allocations(extra.get("heap-alloc", [])),
        inference=_observations(censuses),
        cost_s=round(float(final.get("cost_s") or sum(float(c.get("cost_s", 0))
                                                      for c in censuses)), 6),
        notes=notes,
    )


def _device_points(records: list[dict[str, Any]]) -> tuple[list[list[float]], int]:
    kept: Decimator[list[float]] = Decimator(DEVICE_CAP)
    for record in records:
        kept.extend(record.get("points", []), int(record.get("stride", 1)))
    return sorted(kept.items, key=lambda p: p[0]), kept.stride


def _roots(censuses: list[dict[str, Any]]) -> list[HeapRoot]:
    """Merge each root's rows across censuses, keep the biggest, attach its growth sites."""
    meta: dict[int, dict[str, Any]] = {}
    series: dict[int, list[list[float]]] = {}
    for census in censuses:
        for new in census.get("new", []):
            meta[new["key"]] = new
        for key, length, nbytes, device_bytes, nodes in census.get("roots", []):
            series.setdefault(key, []).append([census["t"], length, nbytes, device_bytes, nodes])
    ranked = sorted(series, key=lambda k: -_weight(series[k]))[:40]
    roots = []
    for key in ranked:
        if key not in meta:
            continue
        rows = series[key][:: max(1, len(series[key]) // MAX_POINTS + 1)]
        info = meta[key]
        root = HeapRoot(path=info["path"], scope=info["scope"], kind=info["kind"],
                        file=info["file"], function=info["function"], line=info["line"],
                        item=info.get("item", ""), grad=bool(info.get("grad")),
                        t=[r[0] for r in rows], length=[int(r[1]) for r in rows],
                        bytes=[int(r[2]) for r in rows], device_bytes=[int(r[3]) for r in rows],
                        graph_nodes=[int(r[4]) for r in rows])
        roots.append(replace(root, sites=_root_sites(root)))
    return roots


def _weight(rows: list[list[float]]) -> float:
    """Rank roots by how much they grew (then by size)."""
    first, last = rows[0], rows[-1]
    grown = (last[2] + last[3] - first[2] - first[3]) + 1000 * (last[4] - first[4])
    return grown * 4 + last[2] + last[3] + 1000 * (last[1] - first[1])


def _root_sites(root: HeapRoot) -> list[HeapSite]:
    if root.kind == "lru_cache":
        return _line_site(root.file, root.line, root.function)
    path, _, rest = root.path.partition("[")
    key = _entry_key(rest)
    if root.scope == "default":
        name = path.rsplit("(", 1)[-1].rstrip("=)")
        return growth_sites(root.file, name, root.line, key=key)
    if root.scope == "closure":
        name = path.rsplit("<", 1)[-1].rstrip(">")
        return growth_sites(root.file, name, root.line, key=key)
    name = path.rsplit(".", 1)[-1]
    if root.scope in ("attribute", "class") or "." in path:
        return growth_sites(root.file, name, attribute=True, key=key)
    return growth_sites(root.file, name, root.line if root.scope == "local" else 0, key=key)


def _entry_key(rest: str) -> Any:
    """The key of a ``name['key']`` path (None for a plain name)."""
    if not rest.endswith("]") or "[" in rest:
        return None
    try:
        return ast.literal_eval(rest[:-1])
    except (ValueError, SyntaxError):
        return None


def _line_site(file: str, line: int, function: str) -> list[HeapSite]:
    _tree, lines = _parse(file)
    text = lines[line - 1].strip()[:200] if 0 < line <= len(lines) else ""
    return [HeapSite(file=file, line=line, function=function, text=text)]


def _allocations(records: list[dict[str, Any]]) -> list[AllocationLine]:
    """One series per (window, line), biggest last value first. A window's snapshot taken at
    exit counts only if the window has no other: it comes after the target's code returned,
    when what a leak held may have been freed in teardown (a generator's list, a function's
    locals), and would read as the growth stopping."""
    windows = {int(r.get("window", 0)) for r in records if not r.get("at_exit")}
    records = [r for r in records
               if not (r.get("at_exit") and int(r.get("window", 0)) in windows)]
    series: dict[tuple[int, str, int], list[tuple[float, int, int]]] = {}
    for record in records:
        for file, line, nbytes, count in record.get("lines", []):
            key = (int(record.get("window", 0)), file, int(line))
            series.setdefault(key, []).append((float(record["t"]), int(nbytes), int(count)))
    ranked = sorted(series.items(), key=lambda item: -item[1][-1][1])[:60]
    lines = []
    for (window, file, line), rows in ranked:
        site = _line_site(file, line, "")[0]
        rows = rows[:: max(1, len(rows) // MAX_POINTS + 1)]
        lines.append(AllocationLine(file=file, line=line, function=_function_of(file, line),
                                    text=site.text, window=window, t=[r[0] for r in rows],
                                    bytes=[r[1] for r in rows], count=[r[2] for r in rows]))
    return lines


def _function_of(file: str, line: int) -> str:
    tree, _lines = _parse(file)
    return _enclosing_function(tree, line) if tree is not None else ""


def _observations(censuses: list[dict[str, Any]]) -> list[GradObservation]:
    """Variables seen holding autograd graphs, with the assignment that made each."""
    found = []
    for census in censuses:
        for file, line, function, def_line, variable, grad_fn in census.get("grad", []):
            found.append((census["t"], file, line, function, def_line, variable, grad_fn))
    sites: dict[tuple[str, int, str, int], list[HeapSite]] = {}
    observations = []
    for t, file, line, function, def_line, variable, grad_fn in found[-2000:]:
        key = (file, def_line, variable, line)
        if key not in sites:
            sites[key] = assignment_sites(file, variable, def_line, line)
        observations.append(GradObservation(t=t, file=file, line=line, function=function,
                                            variable=variable, grad_fn=grad_fn,
                                            sites=sites[key]))
    return observations
