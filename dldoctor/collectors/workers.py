"""DataLoader worker processes, followed: their stack samples and CPU time.

The agent stops itself in forked children (they must not re-send the parent's data). A forked
DataLoader worker instead gets a ``WorkerFollower`` for the life of ``_worker_loop``: a sampler
on one sleeping thread whose records (``worker-samples``, tagged with the pid and worker id) are
appended to the parent's channel file. Whole-line ``O_APPEND`` writes from several processes do
not interleave, and the follower flushes when ``_worker_loop`` returns, before
``multiprocessing`` ends the worker with ``os._exit``.

On the supervisor side ``build_workers`` merges every worker's frames and stacks into one
``Samples`` (one thread entry per worker id), so the hot-line figures work on it unchanged."""

from __future__ import annotations

import _thread
import pkgutil
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from dldoctor.collectors.ownthread import OwnThread
from dldoctor.collectors.sampler import StackSampler
from dldoctor.run import Frame, Samples, StackCount, ThreadInfo, Workers

FLUSH_EVERY_S = 1.0


class WorkerFollower:
    """Samples the current (forked worker) process and appends records to ``write``."""

    def __init__(self, write: Callable[[list[dict[str, Any]]], None], interval_s: float,
                 clock: Callable[[], float], t0: float, pid: int) -> None:
        self._write = write
        self._interval = interval_s
        self._clock = clock
        self._pid = pid
        self.sampler = StackSampler(interval_s, clock=clock, t0=t0)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: OwnThread | None = None

    def start(self) -> None:
        """Start the sampling thread."""
        self._thread = OwnThread(self._loop, "dldoctor-worker")
        self._thread.start()

    def _loop(self) -> None:
        self.sampler.exclude_thread(_thread.get_ident())
        next_flush = self._clock() + FLUSH_EVERY_S
        while not self._stop.wait(self._interval):
            self.sampler.sample()
            if self._clock() >= next_flush:
                self.flush()
                next_flush = self._clock() + FLUSH_EVERY_S

    def flush(self) -> None:
        """Append the samples taken since the last flush."""
        with self._lock:
            record = self.sampler.drain()
            record.update(type="worker-samples", pid=self._pid, worker=_worker_id(),
                          cpu_s=round(time.process_time(), 6))
            record.pop("timeline", None)
            self._write([record])

    def finish(self) -> None:
        """Stop sampling and flush (the worker loop ended)."""
        self._stop.set()
        if self._thread is not None and not self._thread.is_current():
            self._thread.join(timeout=1.0)
        self.flush()


def _worker_id() -> int | None:
    worker = sys.modules.get("torch.utils.data._utils.worker")
    info = getattr(worker, "_worker_info", None)
    return getattr(info, "id", None)


WORKER_LOOP = "torch.utils.data._utils.worker:_worker_loop"


def follow_worker_loop(loop: Callable[..., Any],
                       make_follower: Callable[[], WorkerFollower | None]) -> Callable[..., Any]:
    """Wrap torch's ``_worker_loop`` so each forked worker is sampled while it runs."""
    return _FollowedLoop(loop, make_follower)


class _FollowedLoop:
    """torch's ``_worker_loop``, sampling the (forked) worker it runs in.

    A DataLoader with a ``spawn`` or ``forkserver`` context pickles its worker target, and a
    function defined in a function cannot be pickled (the program would fail under dldoctor
    only). This pickles as a reference to torch's own loop, which the new interpreter, not
    profiled, imports unwrapped: such workers run as they would without dldoctor, unsampled."""

    def __init__(self, loop: Callable[..., Any],
                 make_follower: Callable[[], WorkerFollower | None]) -> None:
        self.__wrapped__ = loop
        self._make_follower = make_follower

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        follower = None
        try:
            follower = self._make_follower()
            if follower is not None:
                follower.start()
        except Exception:
            follower = None
        try:
            return self.__wrapped__(*args, **kwargs)
        finally:
            if follower is not None:
                try:
                    follower.finish()
                except Exception:
                    pass

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return pkgutil.resolve_name, (WORKER_LOOP,)


class _Merger:
    """Re-indexes the frames, stacks and threads of several samplers into one ``Samples``."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.stacks: list[list[int]] = []
        self.threads: list[ThreadInfo] = []
        self._frame_ids: dict[Frame, int] = {}
        self._stack_ids: dict[tuple[int, ...], int] = {}
        self._thread_ids: dict[tuple[Any, str], int] = {}
        self._local: dict[int, tuple[list[int], list[int], list[int]]] = {}
        self.counts: dict[tuple[int, int], list[float]] = {}
        self.cpu: dict[int, float] = {}
        self.ticks = 0
        self.interval = 0.01

    def feed(self, record: dict[str, Any]) -> None:
        pid = int(record.get("pid", 0))
        frames, stacks, threads = self._local.setdefault(pid, ([], [], []))
        frames.extend(self._frame(Frame(**f)) for f in record.get("frames", []))
        stacks.extend(self._stack([frames[i] if k % 2 == 0 else i for k, i in enumerate(s)])
                      for s in record.get("stacks", []))
        worker = record.get("worker")
        threads.extend(self._thread(worker, pid, t) for t in record.get("threads", []))
        for thread, stack, wall, cpu in record.get("counts", []):
            cell = self.counts.setdefault((threads[thread], stacks[stack]), [0, 0.0])
            cell[0] += wall
            cell[1] += cpu
        self.cpu[pid] = max(self.cpu.get(pid, 0.0), float(record.get("cpu_s", 0.0)))
        self.ticks += int(record.get("ticks", 0))
        self.interval = float(record.get("interval_s", self.interval))

    def _frame(self, frame: Frame) -> int:
        return _intern(self._frame_ids, frame, self.frames, frame)

    def _stack(self, flat: list[int]) -> int:
        return _intern(self._stack_ids, tuple(flat), self.stacks, flat)

    def _thread(self, worker: Any, pid: int, thread: dict[str, Any]) -> int:
        label = f"DataLoader worker {worker}" if worker is not None else f"forked pid {pid}"
        name = label if thread.get("main") else f"{label}: {thread.get('name', '')}"
        return _intern(self._thread_ids, (worker if worker is not None else pid, name),
                       self.threads, ThreadInfo(id=int(thread.get("id", 0)), name=name))


def _intern(ids: dict[Any, int], key: Any, items: list[Any], item: Any) -> int:
    """Return the index of ``key``, appending ``item`` to ``items`` the first time."""
    index = ids.get(key)
    if index is None:
        index = ids[key] = len(items)
        items.append(item)
    return index


def build_workers(extra: dict[str, list[dict[str, Any]]]) -> Workers:
    """Return the followed worker processes' merged samples from ``worker-samples`` records."""
    records = extra.get("worker-samples", [])
    if not records:
        return Workers()
    merger = _Merger()
    for record in records:
        merger.feed(record)
    counts = [StackCount(t, s, int(c[0]), round(c[1], 6)) for (t, s), c in
              sorted(merger.counts.items())]
    samples = Samples(interval_s=merger.interval, ticks=merger.ticks, frames=merger.frames,
                      stacks=merger.stacks, threads=merger.threads, counts=counts)
    return Workers(processes=len(merger.cpu), cpu_s=round(sum(merger.cpu.values()), 6),
                   samples=samples)
