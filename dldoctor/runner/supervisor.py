"""The supervisor: starts the target in a child Python with the agent, samples its process tree's
memory, owns timeouts and signals, and builds the Run from whatever the child managed to send."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from dldoctor.collectors.gpu import GpuSampler
from dldoctor.collectors.memory import ProcessTreeMemory
from dldoctor.collectors.native import NATIVE_OFF, NativeSampler, find_pyspy
from dldoctor.run import GpuTimeline, NativeProfile
from dldoctor.runner.alerts import ChannelAlerts
from dldoctor.runner.channel import read_records
from dldoctor.runner.child import SPEC_ENV
from dldoctor.runner.target import Target

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                     signal.SIGUSR2)
FLUSH_WAIT_S = 1.5
TERMINATE_GRACE_S = 3.0
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
_BOOT = ("import sys; sys.path[0] = {parent!r}; "
         "from dldoctor.runner.child import main; main()")


@dataclass(frozen=True)
class ChildOutcome:
    """How the child process ended, as the supervisor saw it."""

    returncode: int
    duration_s: float
    timed_out: bool
    interrupted: bool
    memory: ProcessTreeMemory | None
    pid: int
    supervisor_cpu_s: float = 0.0
    gpu: GpuTimeline = field(default_factory=GpuTimeline)
    native: NativeProfile = field(default_factory=NativeProfile)


def default_out_dir(target: Target, root: Path = Path("reports")) -> Path:
    """Return ``reports/<stem>-<YYYYmmdd-HHMMSS>`` (suffixed ``-2``, ``-3``... if taken)."""
    base = root / f"{target.stem}-{datetime.now():%Y%m%d-%H%M%S}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def child_command() -> list[str]:
    """Return the argv that starts a child interpreter with the same flags as ours."""
    flags = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    return [sys.executable, *flags, "-c", _BOOT.format(parent=_PACKAGE_PARENT)]


def run_child(target: Target, channel: Path, *, interval_s: float, timeout_s: float | None,
              collectors: tuple[str, ...] = (), options: dict[str, str] | None = None,
              memory_interval_s: float = 0.1, native_rate: int | None = None,
              on_alert: Callable[[ChildOutcome], None] | None = None) -> ChildOutcome:
    """Start the target, wait for it (sampling memory), stop it at the timeout; return how it
    ended. ``on_alert`` is called, with the outcome so far, when the agent reports something
    that cannot wait (a deadlock): the target may be hung from then on. With ``native_rate``,
    py-spy samples native stacks at that rate. Raises ``OSError`` only if the interpreter
    itself cannot be started."""
    control_r, control_w = os.pipe()
    t0, cpu0 = time.monotonic(), time.process_time()
    spec = {"mode": target.mode, "target": target.name, "args": list(target.args),
            "agent": {"channel": str(channel), "t0": t0, "interval_s": interval_s,
                      "control_fd": control_r, "collectors": list(collectors),
                      "options": dict(options or {})}}
    env = {**os.environ, SPEC_ENV: json.dumps(spec)}
    # The handlers go in before the child starts: a Ctrl-C (or a SIGTERM) from the moment the
    # target can run must find them (the exec in the child resets them there).
    with _forward_signals() as (state, started):
        try:
            # close_fds=False: the child inherits what python would (a make jobserver's pipe,
            # a socket a launcher passes), and the control pipe; the agent makes that
            # non-inheritable at once. (pass_fds would close all others.)
            os.set_inheritable(control_r, True)
            proc = subprocess.Popen(child_command(), env=env, close_fds=False)
        finally:
            os.close(control_r)
        started(proc)
        native, native_why = NativeSampler.start(proc.pid, native_rate, find_pyspy()) \
            if native_rate else (None, NATIVE_OFF)
        memory = ProcessTreeMemory(proc.pid, memory_interval_s, t0=t0)
        gpu, gpu_timeline = GpuSampler.create(proc.pid, t0, memory_interval_s)

        def alert(_record: dict[str, Any]) -> None:
            if on_alert is not None:
                on_alert(ChildOutcome(returncode=0, duration_s=time.monotonic() - t0,
                                      timed_out=False, interrupted=False, memory=memory,
                                      pid=proc.pid, gpu=gpu_timeline))

        watch = ChannelAlerts(channel, alert).poll if on_alert is not None else None
        timed_out = _wait(proc, memory, t0, timeout_s, memory_interval_s, gpu, watch)
        if timed_out:
            _stop_hung(proc, control_w, channel)
    os.close(control_w)
    return ChildOutcome(returncode=proc.returncode, duration_s=time.monotonic() - t0,
                        timed_out=timed_out, interrupted=state["interrupted"], memory=memory,
                        pid=proc.pid, supervisor_cpu_s=time.process_time() - cpu0,
                        gpu=gpu.result() if gpu is not None else gpu_timeline,
                        # last: it waits for py-spy, which the run's duration must not count
                        native=native.stop() if native is not None else
                        NativeProfile(reason=native_why))


def _wait(proc: subprocess.Popen[bytes], memory: ProcessTreeMemory, t0: float,
          timeout_s: float | None, tick_s: float, gpu: GpuSampler | None = None,
          watch: Callable[[], None] | None = None) -> bool:
    """Block until the child exits (True if ``timeout_s`` passed first), sampling memory
    (and GPU utilisation, when there is a sampler)."""
    pidfd = _pidfd(proc.pid)
    deadline = None if timeout_s is None else t0 + timeout_s
    try:
        while True:
            memory.sample()
            if gpu is not None:
                gpu.sample()
            if watch is not None:
                watch()
            if deadline is not None and time.monotonic() >= deadline:
                return proc.poll() is None
            left = tick_s if deadline is None else deadline - time.monotonic()
            wait_s = max(0.0, min(tick_s, left))
            if pidfd is not None:
                select.select([pidfd], [], [], wait_s)
                if proc.poll() is not None:
                    return False
            else:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=wait_s)
                    return False
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _stop_hung(proc: subprocess.Popen[bytes], control_w: int, channel: Path) -> None:
    """Ask the agent for a last flush, then terminate the child's whole process tree."""
    with contextlib.suppress(OSError):
        os.write(control_w, b"timeout\n")
    deadline = time.monotonic() + FLUSH_WAIT_S
    while time.monotonic() < deadline and proc.poll() is None:
        if any(r.get("type") == "flushed" for r in read_records(channel)[-3:]):
            break
        time.sleep(0.05)
    terminate_tree(proc.pid)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=TERMINATE_GRACE_S)


def terminate_tree(pid: int, grace_s: float = TERMINATE_GRACE_S) -> None:
    """SIGTERM ``pid`` and all its descendants; SIGKILL whatever is left after ``grace_s``."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _gone, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace_s)


@contextlib.contextmanager
def _forward_signals() -> Iterator[tuple[dict[str, bool],
                                         Callable[[subprocess.Popen[bytes]], None]]]:
    """While the child runs: pass termination signals on to it; on Ctrl-C (which the terminal
    already delivers to the child, in our process group) just remember it and keep waiting.
    Yields the state and ``started(proc)``, to call once the child exists: a signal to pass
    on that came before is passed on then."""
    state = {"interrupted": False}
    child: list[subprocess.Popen[bytes]] = []
    pending: list[int] = []

    def on_interrupt(_signum: int, _frame: FrameType | None) -> None:
        state["interrupted"] = True

    def forward(signum: int, _frame: FrameType | None) -> None:
        if not child:
            pending.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            child[0].send_signal(signum)

    def started(proc: subprocess.Popen[bytes]) -> None:
        child.append(proc)
        for signum in pending:
            forward(signum, None)

    previous = {signal.SIGINT: signal.signal(signal.SIGINT, on_interrupt)}
    for signum in FORWARDED_SIGNALS:
        previous[signum] = signal.signal(signum, forward)
    try:
        yield state, started
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
