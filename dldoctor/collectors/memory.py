"""Process-tree memory timeline: RSS (and USS, less often) of the target and its children.

Runs in the supervisor, outside the target, via psutil. Child processes are re-enumerated once a
second from the tree's own ``/proc/<pid>/task/<tid>/children`` lists (psutil's
``children(recursive=True)`` reads the stat file of every process on the machine: ~0.6 ms with 66
processes here, more on a busy desktop); where the kernel has no such lists, psutil's walk is the
fallback. RSS alone is cheap enough for every tick. USS is read from ``USS_FIRST_S`` on, at a
duty cycle: it walks the target's page tables through smaps_rollup (~0.3 ms for a small process,
~2 ms for a torch one) while the target's own mmap/munmap calls wait, and measured on the
torch-mlp reference model a read cost the target ~5x its own duration (one read a second: +1.7 %
wall time). So the next read waits ``duration / USS_DUTY``, between ``USS_MIN_GAP_S`` and
``USS_MAX_GAP_S``: a second for a small script, a few seconds for a torch process."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import psutil

from dldoctor.collectors.bounded import Decimator
from dldoctor.run import Memory, MemoryPoint

POINT_CAP = 4_000
SLOW_EVERY_S = 1.0
USS_FIRST_S, USS_MIN_GAP_S, USS_MAX_GAP_S = 0.5, 1.0, 30.0
USS_DUTY = 0.0005  # a read's own duration over the gap to the next (its cost to the target: ~5x)


class ProcessTreeMemory:
    """Samples the memory of process ``pid`` and its descendants into a bounded timeline."""

    def __init__(self, pid: int, interval_s: float = 0.1, t0: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._t0 = clock() if t0 is None else t0
        self._root = _process(pid)
        self._tree: list[psutil.Process] = [self._root] if self._root else []
        self._kernel_lists = True  # /proc/<pid>/task/<tid>/children exists (CONFIG_PROC_CHILDREN)
        self._points: Decimator[MemoryPoint] = Decimator(POINT_CAP)
        self._next_slow = 0.0
        self._next_uss = self._t0 + USS_FIRST_S  # a process that just started has no USS yet
        self._last_uss: int | None = None
        self.peak_rss = 0
        self.peak_uss: int | None = None

    def sample(self) -> None:
        """Take one reading of the whole process tree."""
        now = self._clock()
        if now >= self._next_slow:
            self._next_slow = now + SLOW_EVERY_S
            self._refresh_tree()
        slow = now >= self._next_uss
        rss, uss, alive = 0, 0 if slow else None, 0
        for proc in self._tree:
            try:
                if slow:
                    info = proc.memory_full_info()
                    uss = (uss or 0) + int(getattr(info, "uss", 0))
                else:
                    info = proc.memory_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            if not info.rss:  # exiting: its memory is already released (statm reads zeros)
                continue
            rss += int(info.rss)
            alive += 1
        if slow:
            spent = self._clock() - now
            self._next_uss = now + min(USS_MAX_GAP_S, max(USS_MIN_GAP_S, spent / USS_DUTY))
        if not alive:
            return
        self.peak_rss = max(self.peak_rss, rss)
        if uss is not None:
            self.peak_uss = max(self.peak_uss or 0, uss)
        self._points.offer(MemoryPoint(round(now - self._t0, 4), rss, uss, alive))

    def _refresh_tree(self) -> None:
        if self._root is None:
            return
        pids = descendants(self._root.pid) if self._kernel_lists else None
        if pids is None:
            self._kernel_lists = False
            try:
                self._tree = [self._root, *self._root.children(recursive=True)]
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                self._tree = []
            return
        known = {proc.pid: proc for proc in self._tree}
        tree = [self._root]
        for pid in pids:
            proc = known.get(pid) or _process(pid)
            if proc is not None:
                tree.append(proc)
        self._tree = tree

    def result(self) -> Memory:
        """Return the timeline collected so far."""
        return Memory(interval_s=self.interval_s * self._points.stride,
                      points=list(self._points.items), peak_rss=self.peak_rss,
                      peak_uss=self.peak_uss)


def descendants(pid: int) -> list[int] | None:
    """Return the pids of ``pid``'s descendants from the kernel's per-thread children lists,
    or None where the kernel keeps none (a process that is gone has none: ``[]``)."""
    if not os.path.isdir("/proc/self/task"):
        return None  # not Linux
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue  # gone
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children", "rb") as file:
                    children = [int(child) for child in file.read().split()]
            except FileNotFoundError:
                if not os.path.exists(f"/proc/{parent}/task/{tid}"):
                    continue  # the thread ended between the listing and the read
                return None  # the kernel has no children lists
            except OSError:
                continue
            found.extend(children)
            todo.extend(children)
    return found


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None
