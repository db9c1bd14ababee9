"""Turn the agent's channel records into the Run's sections."""

from __future__ import annotations

from typing import Any

from dldoctor.collectors.bounded import Decimator
from dldoctor.collectors.sampler import TIMELINE_CAP
from dldoctor.collectors.steps import EXPLICIT, OPTIMIZER, STEP_CAP
from dldoctor.run import Frame, Samples, StackCount, Steps, ThreadInfo


class RunBuilder:
    """Accumulates records (``feed``) and hands out finished sections."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.stacks: list[list[int]] = []
        self.threads: list[ThreadInfo] = []
        self._counts: dict[tuple[int, int], list[float]] = {}
        self._timeline: Decimator[list[float]] = Decimator(TIMELINE_CAP)
        self._ticks = 0
        self._interval = 0.01
        self._sampler_cpu = 0.0
        self._step_counts = {EXPLICIT: 0, OPTIMIZER: 0}
        self._step_times = {EXPLICIT: Decimator[float](STEP_CAP),
                            OPTIMIZER: Decimator[float](STEP_CAP)}
        self.hello: dict[str, Any] | None = None
        self.end: dict[str, Any] | None = None
        self.exit: dict[str, Any] | None = None
        self.flushed = False
        self.threads_cpu: dict[str, float] = {}  # dldoctor's threads in the target: CPU seconds
        self.extra: dict[str, list[dict[str, Any]]] = {}

    def feed(self, records: list[dict[str, Any]]) -> None:
        """Merge records in channel order."""
        for record in records:
            kind = record.get("type")
            if kind == "samples":
                self._samples(record)
            elif kind == "steps":
                self._steps(record)
            elif kind in ("hello", "end", "exit"):
                setattr(self, kind, record)
            elif kind == "threads-cpu":
                for name, seconds in record.get("cpu_s", {}).items():
                    self.threads_cpu[name] = max(self.threads_cpu.get(name, 0.0), float(seconds))
            elif kind == "flushed":
                self.flushed = True
            elif isinstance(kind, str):
                self.extra.setdefault(kind, []).append(record)

    def _samples(self, record: dict[str, Any]) -> None:
        self._interval = float(record.get("interval_s", self._interval))
        self._ticks += int(record.get("ticks", 0))
        self._sampler_cpu = max(self._sampler_cpu, float(record.get("sampler_cpu_s", 0.0)))
        self.frames.extend(Frame(**f) for f in record.get("frames", []))
        self.stacks.extend(record.get("stacks", []))
        self.threads.extend(ThreadInfo(**t) for t in record.get("threads", []))
        for thread, stack, wall, cpu in record.get("counts", []):
            cell = self._counts.setdefault((thread, stack), [0, 0.0])
            cell[0] += wall
            cell[1] += cpu
        self._timeline.extend(record.get("timeline", []), int(record.get("timeline_stride", 1)),
                              key=_tick_time)

    def _steps(self, record: dict[str, Any]) -> None:
        source = record.get("source", EXPLICIT)
        if source not in self._step_counts:
            return
        self._step_counts[source] += int(record.get("count", 0))
        self._step_times[source].extend(record.get("times", []), int(record.get("stride", 1)))

    def samples(self) -> Samples:
        """Return the aggregated stack samples."""
        counts = [StackCount(t, s, int(c[0]), round(c[1], 6))
                  for (t, s), c in sorted(self._counts.items())]
        return Samples(interval_s=self._interval, ticks=self._ticks, frames=self.frames,
                       stacks=self.stacks, threads=self.threads, counts=counts,
                       timeline=self._timeline.items, timeline_stride=self._timeline.stride,
                       sampler_cpu_s=round(self._sampler_cpu, 6))

    def steps(self) -> Steps:
        """Return explicit ``dldoctor.step()`` marks if any, else optimizer steps."""
        for source in (EXPLICIT, OPTIMIZER):
            if self._step_counts[source]:
                times = self._step_times[source]
                return Steps(source=source, count=self._step_counts[source],
                             times=times.items, stride=times.stride)
        return Steps()


def _tick_time(row: list[float]) -> float:
    """The time of a timeline row: a tick's rows (one per thread) share it."""
    return row[0]
