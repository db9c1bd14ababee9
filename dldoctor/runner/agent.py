"""The in-target agent: owns the collectors that need the target's frames and imports, runs the
sampler on one mostly-sleeping thread, and flushes records to the channel periodically and at
every kind of exit (normal, exception, ``os._exit``, supervisor request)."""

from __future__ import annotations

import _thread
import atexit
import os
import select
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dldoctor.collectors import ChildCollector, load_child_collector, ownthread, pools, steps
from dldoctor.collectors.frames import classify
from dldoctor.collectors.imports import when_imported
from dldoctor.collectors.ownthread import OwnThread
from dldoctor.collectors.sampler import StackSampler
from dldoctor.run import DLDOCTOR
from dldoctor.runner.channel import ChannelWriter

FLUSH_EVERY_S = 1.0


@dataclass(frozen=True)
class AgentConfig:
    """What the supervisor tells the agent (passed to the child as JSON)."""

    channel: str
    t0: float
    interval_s: float = 0.01
    control_fd: int = -1
    crop_root: bool = True
    collectors: tuple[str, ...] = ()  # names from dldoctor.collectors.CHILD_COLLECTORS
    options: dict[str, str] = field(default_factory=dict)  # e.g. {"threads": "deep"}


class Agent:
    """Collectors inside the profiled process. ``start()`` once, ``finish()`` at exit."""

    def __init__(self, config: AgentConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._writer = ChannelWriter(config.channel)
        self.sampler = StackSampler(config.interval_s, clock=clock, t0=config.t0,
                                    crop_root=config.crop_root)
        self.steps = steps.StepRecorder(clock=clock, t0=config.t0)
        self._lock = _thread.allocate_lock()  # a raw lock: never one the thread collector wraps
        self._pid = os.getpid()
        self._stop_r, self._stop_w = os.pipe()
        self._thread: OwnThread | None = None
        self._finished = False
        self._exit_record: dict[str, Any] | None = None
        self._real_os_exit = os._exit
        self.collectors: list[ChildCollector] = [
            load_child_collector(name)(self) for name in config.collectors]

    def start(self) -> None:
        """Install hooks and start the sampling thread."""
        if self.config.control_fd >= 0:
            os.set_inheritable(self.config.control_fd, False)
        steps.set_recorder(self.steps)
        when_imported("torch.optim", steps.install_optimizer_hook)
        os.register_at_fork(after_in_child=self._after_fork)
        os._exit = self._os_exit  # type: ignore[assignment]
        atexit.register(self.finish)
        for collector in self.collectors:
            collector.start()
        self._writer.write([{"type": "hello", "pid": self._pid,
                             "t": round(self._clock() - self.config.t0, 6)}])
        self._thread = OwnThread(self._loop, "dldoctor-agent")
        self._thread.start()

    def note_exit(self, how: str, code: int | None, exc: BaseException | None = None) -> None:
        """Remember how the target ended, for the final record."""
        text = None
        if exc is not None:
            try:
                message = str(exc).splitlines()[0] if str(exc) else ""
            except Exception:  # the program's __str__ fails: python prints it so, too
                message = "<exception str() failed>"
            text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        self._exit_record = {"type": "exit", "how": how, "code": code, "exception": text}

    def _loop(self) -> None:
        assert self._thread is not None
        self.sampler.exclude_thread(_thread.get_ident())
        watch = [self._stop_r] + ([self.config.control_fd] if self.config.control_fd >= 0 else [])
        interval = self.config.interval_s
        next_flush = self._clock() + FLUSH_EVERY_S
        while True:
            try:
                ready, _, _ = select.select(watch, [], [], interval)
            except (OSError, ValueError):
                watch = [self._stop_r]
                continue
            if self._stop_r in ready:
                return
            if ready and not self._on_control():
                watch = [self._stop_r]  # the supervisor is gone: stop watching its pipe
            self.sampler.sample()
            if self._clock() >= next_flush:
                self.flush()
                next_flush = self._clock() + FLUSH_EVERY_S

    def _on_control(self) -> bool:
        """Serve a supervisor request; return False once the supervisor's end is closed."""
        try:
            data = os.read(self.config.control_fd, 4096)
        except OSError:
            data = b""
        if not data:
            return False
        self.flush(extra=[{"type": "flushed", "reason": data.decode(errors="replace").strip()}])
        return True

    def flush(self, extra: list[dict[str, Any]] | None = None) -> None:
        """Write everything collected since the last flush."""
        with self._lock:
            if os.getpid() != self._pid:
                return
            self.sampler.self_cpu_s = self._thread.cpu_s() if self._thread else 0.0
            records = [self.sampler.drain(), *self.steps.drain(), _own_threads_cpu()]
            for collector in self.collectors:
                records.extend(_safe_drain(collector))
            records.extend(extra or [])
            self._writer.write(records)

    def finish(self) -> None:
        """Stop sampling and write the final records. Safe to call more than once."""
        if self._finished or os.getpid() != self._pid:
            return
        self._finished = True
        if self._thread is not None and self._thread.is_alive():
            os.write(self._stop_w, b"x")
            if not self._thread.is_current():
                self._thread.join(timeout=2.0)
        errors = []
        for collector in self.collectors:
            try:
                collector.finish()
            except Exception as exc:  # a collector bug must never break the target
                errors.append(_error_record(collector, exc))
        errors.extend({"type": "collector-error", "name": name, "error": error}
                      for name, error in ownthread.failures())
        end = {"type": "end", "t": round(self._clock() - self.config.t0, 6),
               **pools.runtime_info()}
        exit_record = self._exit_record or {"type": "exit", "how": "return", "code": 0,
                                            "exception": None}
        self.flush(extra=[*errors, end, exit_record])
        steps.set_recorder(None)

    def detach(self) -> None:
        """Undo ``start()``'s process-wide hooks (for in-process sessions that end early)."""
        if os._exit == self._os_exit:
            os._exit = self._real_os_exit  # type: ignore[assignment]
        atexit.unregister(self.finish)
        self._writer.close()

    def _os_exit(self, code: int) -> None:
        if os.getpid() == self._pid and not self._finished:
            self.note_exit("os_exit", code)
            try:
                self.finish()
            except Exception:
                pass
        self._real_os_exit(code)

    def _after_fork(self) -> None:
        # A forked child (e.g. a DataLoader worker) must not write the parent's data again.
        self._finished = True
        steps.set_recorder(None)


def _safe_drain(collector: ChildCollector) -> list[dict[str, Any]]:
    try:
        return collector.drain()
    except Exception as exc:  # a collector bug must never break the target
        return [_error_record(collector, exc)]


def _error_record(collector: ChildCollector, exc: Exception) -> dict[str, Any]:
    return {"type": "collector-error", "name": collector.name,
            "error": f"{type(exc).__name__}: {exc}"}


# dldoctor's other threads in the target, by name, as its own-CPU figures name them (the
# agent's own thread is the sampler's ``sampler_cpu_s``)
OWN_THREADS = {"dldoctor-heap": "memory"}


def _own_threads_cpu() -> dict[str, Any]:
    """A ``threads-cpu`` record: the CPU seconds each of dldoctor's other running threads has
    used (a thread that has ended keeps the figure of the last flush before it did)."""
    return {"type": "threads-cpu", "cpu_s": {
        OWN_THREADS[thread.name]: round(thread.cpu_s(), 6)
        for thread in ownthread.running() if thread.name in OWN_THREADS}}


def uncaught(exc: BaseException) -> None:
    """Print an uncaught exception the way python would (our frames removed from the traceback)."""
    tb = exc.__traceback__
    while tb is not None and _is_bootstrap(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    sys.excepthook(type(exc), exc.with_traceback(tb), tb)


def _is_bootstrap(filename: str) -> bool:
    return classify(filename) == DLDOCTOR or filename.endswith(os.sep + "runpy.py")
