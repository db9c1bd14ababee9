"""Figures derived from a Run, shared by analyzers and renderers (one place computes each)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from dldoctor.run import USER, Run


@dataclass(frozen=True)
class LineStat:
    """Time attributed to one line: the innermost frame of the wanted kind in each sample."""

    file: str
    line: int
    function: str
    wall: int
    cpu_s: float


@dataclass(frozen=True)
class FunctionStat:
    """Time in one function: ``self_*`` where it is the innermost user frame, ``total`` anywhere
    on the stack (counted once per sample)."""

    file: str
    function: str
    line: int
    self_wall: int
    total_wall: int
    self_cpu_s: float


@dataclass(frozen=True)
class StepStats:
    """Step durations (seconds) over the kept step marks."""

    count: int
    median_s: float
    p90_s: float
    mean_s: float


def totals(run: Run) -> tuple[int, float]:
    """Return (wall samples, CPU seconds) over all threads."""
    counts = run.samples.counts
    return sum(c.wall for c in counts), sum(c.cpu_s for c in counts)


def _innermost(run: Run, stack_index: int, kind: str) -> tuple[int, int] | None:
    stack = run.samples.stacks[stack_index]
    for pos in range(len(stack) - 2, -1, -2):
        frame = run.samples.frames[stack[pos]]
        if frame.kind == kind:
            return stack[pos], stack[pos + 1]
    return None


def hot_lines(run: Run, kind: str = USER, thread: int | None = None) -> list[LineStat]:
    """Return lines by attributed time, hottest first (by CPU, then wall)."""
    acc: dict[tuple[int, int], list[float]] = {}
    for count in run.samples.counts:
        if thread is not None and count.thread != thread:
            continue
        hit = _innermost(run, count.stack, kind)
        if hit is None:
            continue
        cell = acc.setdefault(hit, [0, 0.0])
        cell[0] += count.wall
        cell[1] += count.cpu_s
    stats = []
    for (frame_index, line), (wall, cpu) in acc.items():
        frame = run.samples.frames[frame_index]
        stats.append(LineStat(frame.file, line, frame.function, int(wall), cpu))
    return sorted(stats, key=lambda s: (-s.cpu_s, -s.wall, s.file, s.line))


def hot_functions(run: Run, kind: str = USER, limit: int = 20) -> list[FunctionStat]:
    """Return functions of ``kind`` by self time (wall), hottest first."""
    self_wall: dict[int, int] = {}
    self_cpu: dict[int, float] = {}
    total: dict[int, int] = {}
    frames = run.samples.frames
    for count in run.samples.counts:
        stack = run.samples.stacks[count.stack]
        seen = {stack[pos] for pos in range(0, len(stack), 2) if frames[stack[pos]].kind == kind}
        for frame_index in seen:
            total[frame_index] = total.get(frame_index, 0) + count.wall
        hit = _innermost(run, count.stack, kind)
        if hit is not None:
            self_wall[hit[0]] = self_wall.get(hit[0], 0) + count.wall
            self_cpu[hit[0]] = self_cpu.get(hit[0], 0.0) + count.cpu_s
    stats = [FunctionStat(frames[i].file, frames[i].function, frames[i].line,
                          self_wall.get(i, 0), total[i], self_cpu.get(i, 0.0)) for i in total]
    stats.sort(key=lambda s: (-s.self_wall, -s.total_wall, s.file, s.function))
    return stats[:limit]


def step_stats(run: Run) -> StepStats | None:
    """Return step-duration statistics, or None with fewer than two kept step marks."""
    times = run.steps.times
    if len(times) < 2:
        return None
    stride = max(1, run.steps.stride)
    durations = sorted((b - a) / stride for a, b in zip(times, times[1:]))
    p90 = durations[min(len(durations) - 1, int(0.9 * len(durations)))]
    return StepStats(run.steps.count, statistics.median(durations), p90,
                     statistics.fmean(durations))


def display_path(path: str, cwd: str) -> str:
    """Return ``path`` relative to ``cwd`` when it lies below it."""
    if cwd and path.startswith(cwd.rstrip("/") + "/"):
        return path[len(cwd.rstrip("/")) + 1:]
    return path
