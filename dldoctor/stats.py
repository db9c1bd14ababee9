"""Figures derived from a Run, shared by analyzers and renderers (one place computes each)."""

from __future__ import annotations

import bisect
import statistics
from dataclasses import dataclass, replace

from dldoctor.collectors.native import NATIVE_OFF
from dldoctor.run import USER, Run, StepBreakdown


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
    on the stack (counted once per sample). ``line`` is the ``def`` line (1 for a module's
    top level); ``hot_line`` the line that took most of the self time (``line`` if none did):
    what a reader looks for, and for ``<module>`` the only line that says anything."""

    file: str
    function: str
    line: int
    self_wall: int
    total_wall: int
    self_cpu_s: float
    hot_line: int = 0

    @property
    def shown_line(self) -> int:
        """The line to show beside the function: its hottest, else its ``def``."""
        return self.hot_line or self.line


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
    by_line: dict[tuple[int, int], int] = {}
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
            by_line[hit] = by_line.get(hit, 0) + count.wall
    hottest: dict[int, tuple[int, int]] = {}  # frame -> (self wall, line): most wall, then first
    for (frame_index, line), wall in by_line.items():
        best = hottest.get(frame_index)
        if best is None or wall > best[0] or (wall == best[0] and line < best[1]):
            hottest[frame_index] = (wall, line)
    stats = [FunctionStat(frames[i].file, frames[i].function, frames[i].line,
                          self_wall.get(i, 0), total[i], self_cpu.get(i, 0.0),
                          hottest[i][1] if i in hottest and hottest[i][0] else 0)
             for i in total]
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


def breakdown_share(breakdown: StepBreakdown, seconds: float) -> float:
    """Return ``seconds`` as a share of all step time in the step breakdown (0 without steps)."""
    return seconds / breakdown.duration_s if breakdown.duration_s > 0 else 0.0


def phase_shares(breakdown: StepBreakdown) -> dict[str, float]:
    """Return each phase's share of step time (``other`` included; they add up to 1)."""
    return {name: breakdown_share(breakdown, seconds)
            for name, seconds in zip(breakdown.phases, breakdown.totals_s)}


def hot_lines_below(run: Run, file_part: str, kind: str = USER) -> list[LineStat]:
    """Return lines by attributed time (as ``hot_lines``), counting only samples whose stack
    passes through a frame whose file contains ``file_part`` and blaming the innermost frame of
    ``kind`` called from there (e.g. the user's Dataset code under ``torch/utils/data/``)."""
    frames = run.samples.frames
    acc: dict[tuple[int, int], list[float]] = {}
    for count in run.samples.counts:
        stack = run.samples.stacks[count.stack]
        entry = next((p for p in range(0, len(stack), 2)
                      if file_part in frames[stack[p]].file), None)
        if entry is None:
            continue
        hit = next(((stack[p], stack[p + 1]) for p in range(len(stack) - 2, entry, -2)
                    if frames[stack[p]].kind == kind), None)
        if hit is not None:
            cell = acc.setdefault(hit, [0, 0.0])
            cell[0] += count.wall
            cell[1] += count.cpu_s
    stats = [LineStat(frames[f].file, line, frames[f].function, int(w), c)
             for (f, line), (w, c) in acc.items()]
    return sorted(stats, key=lambda s: (-s.cpu_s, -s.wall, s.file, s.line))


def step_window(run: Run) -> tuple[float, float]:
    """Return (start, end) of the training loop, run-relative seconds: first to last kept step
    mark, or the whole run with fewer than two marks."""
    times = run.steps.times
    if len(times) >= 2:
        return times[0], times[-1]
    return 0.0, max(run.meta.duration_s, 0.0)


# -- threads ---------------------------------------------------------------------------------------
RUNNING, IDLE, LOCK_WAIT = "running", "idle", "lock"
IDLE_CPU_RATIO = 0.05  # a stack that got less CPU than this share of its wall time was blocked


def _waits_on_lock(run: Run, stack_index: int) -> bool:
    stack, frames = run.samples.stacks[stack_index], run.samples.frames
    return any(frames[stack[p]].function == "_blocking_acquire"
               and frames[stack[p]].file.endswith("locks.py") for p in range(0, len(stack), 2))


def stack_states(run: Run) -> dict[tuple[int, int], str]:
    """Return the state of each sampled (thread, stack): ``lock`` (blocked in an instrumented
    lock), ``idle`` (it got almost no CPU: sleeping, I/O, queue or event waits) or ``running``
    (on CPU, or ready and waiting for the GIL)."""
    interval = run.samples.interval_s
    states = {}
    for count in run.samples.counts:
        if _waits_on_lock(run, count.stack):
            state = LOCK_WAIT
        elif count.cpu_s < IDLE_CPU_RATIO * count.wall * interval:
            state = IDLE
        else:
            state = RUNNING
        states[(count.thread, count.stack)] = state
    return states


def thread_seconds(run: Run) -> dict[int, float]:
    """Return how long each thread was seen alive (first to last sample, in seconds), keyed by
    thread id (ident). Spans, not sample counts: a GIL-bound process samples less often."""
    spans: dict[int, list[float]] = {}
    for t, thread, _stack in run.samples.timeline:
        span = spans.setdefault(int(thread), [float(t), float(t)])
        span[0], span[1] = min(span[0], float(t)), max(span[1], float(t))
    threads, interval = run.samples.threads, run.samples.interval_s
    return {threads[i].id: last - first + interval for i, (first, last) in spans.items()
            if i < len(threads)}


GAP_STEPS = 2.5  # usual intervals between two samples of a thread beyond which it is a gap


class Ticks:
    """The times of all sampling ticks of a run (every thread's timeline rows), to tell the two
    kinds of gap between two samples of one thread apart: no tick could run (C code held the
    GIL; the sample after the gap stands for it, as in the counts), or ticks ran and did not
    see the thread (it had not started yet, or had only dldoctor frames)."""

    def __init__(self, run: Run) -> None:
        self._times = sorted({float(t) for t, _thread, _stack in run.samples.timeline})
        gaps = sorted(b - a for a, b in zip(self._times, self._times[1:]))
        # the usual time between two kept rows (the timeline is decimated in long runs)
        self.step = gaps[len(gaps) // 2] if gaps else run.samples.interval_s

    def gap(self, start: float, end: float) -> bool:
        """Return True if two samples of one thread at ``start`` and ``end`` are further apart
        than the sampling jitter explains (``GAP_STEPS`` usual intervals)."""
        return end - start > GAP_STEPS * self.step

    def ran_between(self, start: float, end: float) -> bool:
        """Return True if a tick ran strictly between ``start`` and ``end``."""
        i = bisect.bisect_right(self._times, start)
        return i < len(self._times) and self._times[i] < end


def thread_lanes(run: Run) -> list[list[list[float | str]]]:
    """Return per thread (index into ``samples.threads``) its ``[start, end, state]`` segments
    from the sampled timeline (see ``stack_states``), adjacent samples of one state merged.
    Where no tick could run between two samples of a thread, the later one's segment covers
    the gap (see ``Ticks``); where ticks ran without seeing it, the lane has a hole."""
    states = stack_states(run)
    ticks = Ticks(run)
    rows: dict[int, list[tuple[float, str]]] = {}
    for t, thread, stack in run.samples.timeline:
        state = states.get((int(thread), int(stack)), RUNNING)
        rows.setdefault(int(thread), []).append((float(t), state))
    lanes: list[list[list[float | str]]] = [[] for _ in run.samples.threads]
    for thread, points in rows.items():
        if thread < len(lanes):
            lanes[thread] = _segments(sorted(points), ticks)
    return lanes


def _segments(points: list[tuple[float, str]], ticks: Ticks) -> list[list[float | str]]:
    segments: list[list[float | str]] = []
    step = ticks.step
    previous = 0.0
    for t, state in points:
        last = segments[-1] if segments else None
        if last is not None and ticks.gap(previous, t) and ticks.ran_between(previous, t):
            last = None  # ticks ran and did not see the thread: a hole
        if last is None:
            segments.append([round(t, 4), round(t + step, 4), state])
        elif last[2] == state:
            last[1] = round(t + step, 4)
        else:
            segments.append([last[1], round(t + step, 4), state])
        previous = t
    return segments


INPUT_PIPELINE = "/torch/utils/data/"  # frames of torch's DataLoader machinery


def input_pipeline_lines(run: Run, workers: bool) -> list[LineStat]:
    """Return the hottest user lines run by the DataLoader (the user's Dataset/collate code): in
    the followed worker processes if ``workers``, else in the target's own threads."""
    if workers:
        run = replace(run, samples=run.workers.samples)
    return hot_lines_below(run, INPUT_PIPELINE)


def source_text(run: Run, file: str, line: int) -> str:
    """Return the stripped source text of ``file:line`` the Run carries, or ""."""
    return next((s.text for s in run.sources if (s.file, s.line) == (file, line)), "")


PYTHON_CODE = "(Python code)"  # a native sample whose innermost frame is Python's


def native_asked(run: Run) -> bool:
    """Return True if the run was made with ``--native``: it has native samples, or says why
    it has none (a run without ``--native`` says only that it was not asked for)."""
    native = run.native
    return native.available or (bool(native.reason) and native.reason != NATIVE_OFF)


@dataclass(frozen=True)
class NativeStat:
    """Self samples of one innermost native function (``--native``), and the user line below
    which it ran most (``None`` where no user frame was on those stacks)."""

    function: str
    library: str
    samples: int
    share: float
    caller: tuple[str, int, str] | None  # (file, line, function)


def native_functions(run: Run, limit: int = 20) -> list[NativeStat]:
    """Return the innermost native functions of ``run.native`` by samples, most first; samples
    whose innermost frame is Python code count as one ``PYTHON_CODE`` row."""
    native = run.native
    total = sum(row[2] for row in native.counts)
    samples: dict[tuple[str, str], int] = {}
    callers: dict[tuple[str, str], dict[tuple[str, int, str], int]] = {}
    for _thread, stack_index, count in native.counts:
        stack = [native.frames[i] for i in native.stacks[stack_index]]
        top = stack[-1]
        key = (symbol_name(top.function), library_name(top.file)) if top.kind == "native" \
            else (PYTHON_CODE, "")
        samples[key] = samples.get(key, 0) + count
        user = next((f for f in reversed(stack) if f.kind == USER), None)
        if user is not None:
            where = callers.setdefault(key, {})
            spot = (user.file, user.line, user.function)
            where[spot] = where.get(spot, 0) + count
    ranked = sorted(samples.items(), key=lambda item: -item[1])[:limit]
    return [NativeStat(function, library, count, count / total if total else 0.0,
                       max(callers[(function, library)].items(), key=lambda i: i[1])[0]
                       if callers.get((function, library)) else None)
            for (function, library), count in ranked]


def native_libraries(run: Run) -> list[tuple[str, int, float]]:
    """Return ``(library, samples, share)`` of the innermost frames' libraries, most first (the
    ``PYTHON_CODE`` row for stacks that end in Python code)."""
    by_library: dict[str, int] = {}
    for stat in native_functions(run, limit=len(run.native.frames) + 1):
        name = stat.library or PYTHON_CODE
        by_library[name] = by_library.get(name, 0) + stat.samples
    total = sum(by_library.values())
    return [(name, count, count / total) for name, count in
            sorted(by_library.items(), key=lambda item: -item[1])]


def library_name(path: str) -> str:
    """Return a native frame's library as users know it: the file's base name."""
    return path.rsplit("/", 1)[-1] or path


NO_SYMBOL = "(no symbol)"


def symbol_name(function: str) -> str:
    """Return a native function's name, or ``NO_SYMBOL`` for a bare address (a stripped
    library: py-spy gives ``0x7f...``), so that one library's addresses are summed together."""
    return NO_SYMBOL if function.startswith("0x") and function[2:].isalnum() else function
