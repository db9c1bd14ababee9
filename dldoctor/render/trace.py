"""trace.json: Chrome trace event format (opens in Perfetto and chrome://tracing).

One track per Python thread with the sampled call stacks as nested spans, a track of training
steps, and a memory counter."""

from __future__ import annotations

import json
from typing import Any

from dldoctor.render.base import Renderer
from dldoctor.render.bottlenecks import breakdown_events
from dldoctor.render.memory import device_memory_events
from dldoctor.render.threads import lock_wait_events
from dldoctor.run import Report, Run
from dldoctor.stats import Ticks

PID = 1
STEP_TID = 0
MAX_DEPTH = 64


def _us(seconds: float) -> float:
    return round(seconds * 1_000_000, 1)


class TraceRenderer(Renderer):
    """Sampled stacks as spans, steps as spans, memory as a counter."""

    name = "trace"
    filename = "trace.json"

    def render(self, report: Report) -> str:
        """Return the trace as JSON text."""
        run = report.run
        events: list[dict[str, Any]] = [
            {"ph": "M", "pid": PID, "name": "process_name",
             "args": {"name": f"{run.meta.target} (pid {run.meta.pid})"}},
            {"ph": "M", "pid": PID, "tid": STEP_TID, "name": "thread_name",
             "args": {"name": "steps"}},
        ]
        for index, thread in enumerate(run.samples.threads):
            events.append({"ph": "M", "pid": PID, "tid": index + 1, "name": "thread_name",
                           "args": {"name": thread.name}})
        events.extend(_stack_spans(run))
        events.extend(_step_spans(run))
        events.extend(lock_wait_events(run, PID))
        events.extend(breakdown_events(run, PID))
        events.extend(_memory_counters(run))
        events.extend(device_memory_events(run, PID))
        return json.dumps({"traceEvents": events, "displayTimeUnit": "ms",
                           "otherData": {"dldoctor_version": run.meta.dldoctor_version}},
                          separators=(",", ":"))


def _frame_name(run: Run, frame_index: int) -> str:
    frame = run.samples.frames[frame_index]
    return f"{frame.function} ({frame.file.rsplit('/', 1)[-1]}:{frame.line})"


def _stack_spans(run: Run) -> list[dict[str, Any]]:
    """Merge consecutive samples per thread into nested spans (one per frame)."""
    samples = run.samples
    dt = samples.interval_s * max(1, samples.timeline_stride)
    by_thread: dict[int, list[tuple[float, int]]] = {}
    for t, thread, stack in samples.timeline:
        by_thread.setdefault(int(thread), []).append((float(t), int(stack)))
    events = []
    ticks = Ticks(run)
    for thread, rows in by_thread.items():
        open_frames: list[tuple[int, float]] = []  # (frame index, start)
        last_t = rows[0][0]
        for t, stack in rows:
            change = t  # where the frames that differ from the last sample's end and begin
            if ticks.gap(last_t, t):
                if ticks.ran_between(last_t, t):  # ticks did not see the thread: close all
                    events.extend(_close(run, open_frames, 0, last_t + dt, thread))
                else:  # no tick could run (the GIL was held): this sample stands for the gap
                    change = last_t + dt
            frames = samples.stacks[stack][0::2][:MAX_DEPTH]
            keep, limit = 0, min(len(frames), len(open_frames))
            while keep < limit and open_frames[keep][0] == frames[keep]:
                keep += 1
            events.extend(_close(run, open_frames, keep, change, thread))
            open_frames.extend((f, change) for f in frames[keep:])
            last_t = t
        events.extend(_close(run, open_frames, 0, last_t + dt, thread))
    return events


def _close(run: Run, open_frames: list[tuple[int, float]], keep: int, end: float,
           thread: int) -> list[dict[str, Any]]:
    closed = []
    while len(open_frames) > keep:
        frame, start = open_frames.pop()
        closed.append({"ph": "X", "pid": PID, "tid": thread + 1, "name": _frame_name(run, frame),
                       "cat": run.samples.frames[frame].kind, "ts": _us(start),
                       "dur": _us(max(end - start, 0.0))})
    return closed


def _step_spans(run: Run) -> list[dict[str, Any]]:
    times, stride = run.steps.times, max(1, run.steps.stride)
    return [{"ph": "X", "pid": PID, "tid": STEP_TID, "name": f"step {(i + 1) * stride}",
             "cat": "step", "ts": _us(a), "dur": _us(b - a)}
            for i, (a, b) in enumerate(zip(times, times[1:]))]


def _memory_counters(run: Run) -> list[dict[str, Any]]:
    events = []
    for point in run.memory.points:
        args = {"rss_mib": round(point.rss / 2**20, 2)}
        if point.uss is not None:
            args["uss_mib"] = round(point.uss / 2**20, 2)
        events.append({"ph": "C", "pid": PID, "name": "memory", "ts": _us(point.t), "args": args})
    return events
