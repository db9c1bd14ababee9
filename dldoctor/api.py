"""In-process profiling: ``with dldoctor.profile() as session:`` for notebooks and tests.

The same agent and collectors as ``dldoctor profile``, run inside this process; the memory
timeline is sampled by one extra, mostly sleeping thread instead of the supervisor."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from dldoctor.collectors import DEFAULT_CHILD_COLLECTORS, environment
from dldoctor.collectors.memory import ProcessTreeMemory
from dldoctor.collectors.ownthread import OwnThread
from dldoctor.render import write_reports
from dldoctor.run import Report
from dldoctor.runner.agent import Agent, AgentConfig
from dldoctor.runner.profile import build_report, prepare_out_dir
from dldoctor.runner.supervisor import ChildOutcome, default_out_dir
from dldoctor.runner.target import Target


class Session:
    """Profiles the body of a ``with`` block. After it, ``report`` holds the Report and
    ``paths`` the files written (unless ``write=False``)."""

    def __init__(self, out: Any = None, rate: int = 100, write: bool = True) -> None:
        self.out = Path(out) if out is not None else None
        self.interval_s = 1.0 / rate
        self.write = write
        self.report: Report | None = None
        self.paths: dict[str, Path] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="dldoctor-")
        self._stop = threading.Event()

    def __enter__(self) -> Session:
        caller = sys._getframe(1).f_code.co_filename
        self._target = Target("api", caller)
        if self.write:
            self.out = prepare_out_dir(self.out or default_out_dir(Target("script", caller)))
        self._gpus, self._gpu_status = environment.gpu_status()
        self._started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._t0 = time.monotonic()
        self._channel = Path(self._tmp.name) / "channel.jsonl"
        self._agent = Agent(AgentConfig(str(self._channel), self._t0, self.interval_s,
                                        crop_root=False, collectors=DEFAULT_CHILD_COLLECTORS))
        self._memory = ProcessTreeMemory(os.getpid(), 0.1, t0=self._t0)
        self._memory_thread = OwnThread(self._sample_memory, "dldoctor-memory")
        self._agent.start()
        self._memory_thread.start()
        self._agent.sampler.exclude_thread(self._memory_thread.ident or 0)
        return self

    def _sample_memory(self) -> None:
        while not self._stop.wait(self._memory.interval_s):
            self._memory.sample()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None:
            self._agent.note_exit("exception", 1, exc)
        self._stop.set()
        self._memory_thread.join()
        self._agent.finish()
        self._agent.detach()
        outcome = ChildOutcome(returncode=0 if exc is None else 1,
                               duration_s=time.monotonic() - self._t0, timed_out=False,
                               interrupted=False, memory=self._memory, pid=os.getpid())
        self.report = build_report(self._target, outcome, self._channel, self._gpus,
                                   self._gpu_status, self._started)
        if self.write and self.out is not None:
            self.paths = write_reports(self.report, self.out)
        self._tmp.cleanup()
