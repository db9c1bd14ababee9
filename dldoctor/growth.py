"""Memory growth figures, computed once for the memory analyzer and the HTML report.

The test is robust, not "last > first": memory is read many times, the *floor* (minimum) of
each of up to ``MAX_BINS`` time bins is what stayed allocated (transient peaks inside a step are
ignored), and a Theil–Sen line (median of pairwise slopes) through the floors gives the rate.
Growth counts only after warm-up, and only if it has not levelled off: the floors must rise in
most bins, the rise must stand clear of their scatter, and the last part of the span must still
climb at a good share of the overall rate (caches, allocator pools and optimizer state fill up
and then plateau).

The span analysed: with marked steps (``dldoctor.step()`` or optimizer steps), from the end of
the first ``WARMUP`` share of the steps to the last step; without steps, the same share of the
time during which the sampler saw the user's hottest loop running; failing that, the run after
its first ``WARMUP`` share."""

from __future__ import annotations

import bisect
import math
import statistics
from dataclasses import dataclass, replace

from dldoctor.run import USER, AllocationLine, HeapRoot, Run
from dldoctor.stats import hot_lines

WARMUP = 0.2
MAX_BINS = 30
MIN_BINS = 5
MIN_SPAN_S = 0.8
MIN_RISING = 0.6  # share of floor-to-floor steps that rise
MIN_LATE = 0.4  # slope over the last LATE share of the span / overall slope
LATE = 0.4
NOISE_FACTOR = 4.0
MIN_GROWTH = {"host": 8 << 20, "device": 16 << 20}
MIN_RELATIVE = 0.03  # of the starting floor


@dataclass(frozen=True)
class Span:
    """The stretch of the run in which growth is judged, and how steps map onto it."""

    start: float
    end: float
    basis: str  # steps | loop | time
    steps: int = 0  # steps completed inside the span
    loop: tuple[str, int] | None = None  # (file, line) of the hottest loop, basis "loop"
    marks: tuple[float, ...] = ()  # step end times (every ``stride``-th), basis "steps"
    stride: int = 1

    @property
    def seconds(self) -> float:
        """Length of the span."""
        return max(0.0, self.end - self.start)

    def x(self, t: float) -> float:
        """Progress at time ``t``: steps done by then (interpolated) with steps, else ``t``.
        Growth is judged against progress, so a stalled stretch of the run (no steps, no
        growth) is not mistaken for memory levelling off."""
        if self.basis != "steps" or not self.marks:
            return t
        i = bisect.bisect_right(self.marks, t)
        if i == 0 or i == len(self.marks):
            return float(max(1, i) * self.stride)
        t0, t1 = self.marks[i - 1], self.marks[i]
        return self.stride * (i + (t - t0) / (t1 - t0 if t1 > t0 else 1.0))

    @property
    def rate(self) -> float:
        """Progress per second over the span: steps per second, or 1 without steps."""
        if self.basis != "steps" or self.seconds <= 0:
            return 1.0
        return max(1e-9, (self.x(self.end) - self.x(self.start)) / self.seconds)

    def per_step(self, per_second: float) -> float | None:
        """Convert a rate per second (as this module derives them: per step times the span's
        average step rate) back into one per step (None without steps)."""
        if self.basis != "steps":
            return None
        return per_second / self.rate


@dataclass(frozen=True)
class Growth:
    """How one memory series grew over the span."""

    kind: str  # host | device
    span: Span
    floors: list[list[float]]  # [t, bytes]: the minimum of each bin
    slope: float  # bytes per second (per unit of progress x the span's average rate)
    base: float  # fitted floor at the start of the span
    noise: float  # median absolute deviation of the floors from the line (against progress)
    rising: float
    late: float
    total: float  # bytes gained over the span (fitted against progress)
    significant: bool = False
    reason: str = ""  # why it does not count, when it does not

    def at(self, t: float) -> float:
        """The fitted line at time ``t``."""
        return self.base + self.slope * (t - self.span.start)

    def exhaust_s(self, free: int | None) -> float | None:
        """Seconds until ``free`` bytes are gone at this rate (None if unknown or not growing)."""
        if not free or self.slope <= 0:
            return None
        return free / self.slope


@dataclass(frozen=True)
class RootGrowth:
    """How one variable grew across the censuses inside the span."""

    root: HeapRoot
    observations: int
    items_per_s: float
    bytes_per_s: float  # host and device together
    device_per_s: float
    nodes_per_s: float
    grown_items: int
    grown_bytes: int
    grown_nodes: int
    steady: bool  # kept growing through the span and was still alive at its end
    start: float = 0.0  # first and last census used
    end: float = 0.0

    def per_step(self, per_second: float, span: Span) -> float | None:
        """A rate of this variable per step (None without steps)."""
        return span.per_step(per_second)

    @property
    def bytes_per_item(self) -> float:
        """Average bytes per added item."""
        return self.bytes_per_s / self.items_per_s if self.items_per_s > 0 else 0.0


def theil_sen(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Return (slope, intercept) of the Theil–Sen line through the points."""
    slopes = [(ys[j] - ys[i]) / (xs[j] - xs[i]) for i in range(len(xs))
              for j in range(i + 1, len(xs)) if xs[j] != xs[i]]
    if not slopes:
        return 0.0, statistics.median(ys) if ys else 0.0
    slope = statistics.median(slopes)
    return slope, statistics.median(y - slope * x for x, y in zip(xs, ys))


def analysis_span(run: Run) -> Span:
    """Return the post-warm-up span (see the module docstring)."""
    steps = run.steps
    if steps.count >= 6 and len(steps.times) >= 3:
        stride = max(1, steps.stride)
        numbers = [(i + 1) * stride for i in range(len(steps.times))]
        warm = max(1.0, WARMUP * steps.count)
        start = _interp(warm, numbers, steps.times)
        return Span(start, steps.times[-1], "steps", steps=max(0, round(numbers[-1] - warm)),
                    marks=tuple(steps.times), stride=stride)
    loop = _hottest_loop(run)
    if loop is not None:
        first, last, where = loop
        return Span(first + WARMUP * (last - first), last, "loop", loop=where)
    points = run.memory.points
    if not points:
        return Span(0.0, 0.0, "time")
    first, last = points[0].t, points[-1].t
    return Span(max(first + WARMUP * (last - first), _imports_end(run)), last, "time")


def _imports_end(run: Run) -> float:
    """The last time the main thread was seen importing (module loading grows memory)."""
    main = {i for i, thread in enumerate(run.samples.threads) if thread.main}
    frames = run.samples.frames
    importing = {i for i, f in enumerate(frames) if f.file.startswith("<frozen importlib")}
    end = 0.0
    for t, thread, stack in run.samples.timeline:
        if int(thread) in main and t > end and any(
                run.samples.stacks[int(stack)][pos] in importing
                for pos in range(0, len(run.samples.stacks[int(stack)]), 2)):
            end = t
    return end


def _interp(x: float, xs: list[int], ys: list[float]) -> float:
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x0 <= x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 != x0 else y0
    return ys[0] if x < xs[0] else ys[-1]


def _hottest_loop(run: Run) -> tuple[float, float, tuple[str, int]] | None:
    """Return (first seen, last seen, (file, line)) of the outermost loop around the hottest
    user line that has one, from the sampler's timeline."""
    facts = {(s.file, s.line): s for s in run.sources}
    for stat in hot_lines(run)[:10]:
        fact = facts.get((stat.file, stat.line))
        if fact is None or not fact.loops:
            continue
        loop = fact.loops[0]
        seen = [t for t, _thread, stack in run.samples.timeline
                if _in_loop(run, int(stack), stat.file, loop.line, loop.end_line)]
        if len(seen) >= 2:
            return min(seen), max(seen), (stat.file, loop.line)
    return None


def _in_loop(run: Run, stack_index: int, file: str, first: int, last: int) -> bool:
    stack = run.samples.stacks[stack_index]
    for pos in range(0, len(stack), 2):
        frame = run.samples.frames[stack[pos]]
        if frame.kind == USER and frame.file == file and first <= stack[pos + 1] <= last:
            return True
    return False


def series_growth(points: list[tuple[float, float]], span: Span, kind: str) -> Growth | None:
    """Return the growth of ``points`` ([t, bytes]) over ``span``, or None with too few."""
    inside = [(t, y) for t, y in points if span.start <= t <= span.end]
    if span.seconds < MIN_SPAN_S or len(inside) < MIN_BINS:
        return None
    x0, x1 = span.x(span.start), span.x(span.end)
    if x1 <= x0:
        return None
    bins = max(MIN_BINS, min(MAX_BINS, len(inside) // 3))
    width = (x1 - x0) / bins
    floors: dict[int, tuple[float, float, float]] = {}
    for t, y in inside:
        x = span.x(t)
        index = min(bins - 1, max(0, int((x - x0) / width)))
        if index not in floors or y < floors[index][2]:
            floors[index] = (t, x, y)
    kept = [floors[i] for i in sorted(floors)]
    if len(kept) < MIN_BINS:
        return None
    ts, xs, ys = [k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept]
    per_x, intercept = theil_sen(xs, ys)
    noise = statistics.median(abs(y - (intercept + per_x * x)) for x, y in zip(xs, ys))
    rising = sum(b > a for a, b in zip(ys, ys[1:])) / (len(ys) - 1)
    tail = [(x, y) for x, y in zip(xs, ys) if x >= x1 - LATE * (x1 - x0)]
    late_slope = theil_sen([x for x, _ in tail], [y for _, y in tail])[0] if len(tail) >= 3 \
        else per_x
    late = late_slope / per_x if per_x > 0 else 0.0
    growth = Growth(kind, span, [[round(t, 4), y] for t, y in zip(ts, ys)], per_x * span.rate,
                    intercept + per_x * x0, noise, rising, late, per_x * (x1 - x0))
    reason = _why_not(growth)
    return replace(growth, significant=not reason, reason=reason)


def _why_not(g: Growth) -> str:
    """Return why ``g`` is not a leak ("" if it is one)."""
    floor = MIN_GROWTH.get(g.kind, MIN_GROWTH["host"])
    if g.total < max(floor, MIN_RELATIVE * max(g.base, 0.0)):
        return f"grew {g.total / 2**20:.1f} MiB over the span: below the threshold"
    if g.total < NOISE_FACTOR * g.noise * math.sqrt(2):
        return "growth within the scatter of the readings"
    if g.late < MIN_LATE:
        return "memory levelled off (warm-up, cache or pool filling up)"
    if g.rising < MIN_RISING:
        return f"floors rose in only {g.rising:.0%} of the bins"
    return ""


def host_growth(run: Run, span: Span) -> Growth | None:
    """Growth of the process tree's resident memory (RSS) over ``span``."""
    return series_growth([(p.t, float(p.rss)) for p in run.memory.points], span, "host")


def device_growth(run: Run, span: Span) -> Growth | None:
    """Growth of CUDA memory allocated by tensors over ``span``, when CUDA was used."""
    return series_growth([(row[0], row[1]) for row in run.heap.device], span, "device")


def root_growths(run: Run, span: Span) -> list[RootGrowth]:
    """Growth of each variable the censuses followed, over the censuses inside ``span``."""
    last_census = max((t for t in run.heap.censuses if t <= span.end + 0.5), default=0.0)
    found = []
    for root in run.heap.roots:
        rows = [i for i, t in enumerate(root.t) if span.start - 0.5 <= t <= span.end + 0.5]
        if len(rows) < 3:
            continue
        found.append(_root_growth(root, rows, root.t[rows[-1]] >= last_census - 1e-6, span))
    return found


def _root_growth(root: HeapRoot, rows: list[int], alive: bool, span: Span) -> RootGrowth:
    ts = [root.t[i] for i in rows]
    xs = [span.x(t) for t in ts]
    weights = [root.bytes[i] + root.device_bytes[i] for i in rows]
    series = {"items": [float(root.length[i]) for i in rows], "bytes": [float(w) for w in weights],
              "device": [float(root.device_bytes[i]) for i in rows],
              "nodes": [float(root.graph_nodes[i]) for i in rows]}
    rates = {name: theil_sen(xs, values)[0] * span.rate for name, values in series.items()}
    main = series["nodes"] if root.kind == "tensor" and root.grad else (
        series["bytes"] if root.kind in ("tensor", "ndarray") else series["items"])
    rises = sum(b > a for a, b in zip(main, main[1:]))
    half = len(main) // 2
    overall, late = theil_sen(xs, main)[0], theil_sen(xs[half:], main[half:])[0]
    steady = alive and main[-1] > main[0] and rises >= math.ceil(0.6 * (len(main) - 1)) \
        and main[-1] > main[half] and late >= MIN_LATE * overall
    return RootGrowth(root=root, observations=len(rows), items_per_s=max(0.0, rates["items"]),
                      bytes_per_s=max(0.0, rates["bytes"]), device_per_s=max(0.0, rates["device"]),
                      nodes_per_s=max(0.0, rates["nodes"]),
                      grown_items=int(series["items"][-1] - series["items"][0]),
                      grown_bytes=int(series["bytes"][-1] - series["bytes"][0]),
                      grown_nodes=int(series["nodes"][-1] - series["nodes"][0]), steady=steady,
                      start=ts[0], end=ts[-1])


@dataclass(frozen=True)
class LineGrowth:
    """How the live bytes allocated from one user line grew during a trace window."""

    line: AllocationLine
    bytes_per_s: float
    grown: int


MIN_LINE_GROWTH = 256 << 10


def allocation_growths(run: Run) -> list[LineGrowth]:
    """Lines whose surviving allocations kept growing, fastest first: within one trace window
    with at least three snapshots, or in every one of two or more windows (each window traces
    from empty, so growth seen again in the next one is not a leftover of the last)."""
    by_line: dict[tuple[str, int], list[AllocationLine]] = {}
    for line in run.heap.allocations:
        by_line.setdefault((line.file, line.line), []).append(line)
    found = []
    for series in by_line.values():
        rising = [(slope, grown, line) for line in series if len(line.t) >= 2
                  for slope, grown in [_line_rise(line)]]
        good = [r for r in rising if r[0] > 0 and r[1] >= MIN_LINE_GROWTH
                and (len(r[2].t) >= 3 or len(rising) >= 2)]
        long_enough = any(len(r[2].t) >= 3 for r in good)
        if good and (long_enough or len(good) == len(rising) >= 2):
            slope, grown, line = max(good, key=lambda r: r[2].t[-1])
            found.append(LineGrowth(line, statistics.median(r[0] for r in good), grown))
    return sorted(found, key=lambda g: -g.bytes_per_s)


def _line_rise(line: AllocationLine) -> tuple[float, int]:
    """(Theil–Sen bytes per second, bytes gained) of one line in one window; the slope is 0
    unless at least half of the snapshot-to-snapshot steps rise."""
    rises = sum(b > a for a, b in zip(line.bytes, line.bytes[1:]))
    if rises < (len(line.t) - 1) / 2:
        return 0.0, 0
    slope = theil_sen(line.t, [float(b) for b in line.bytes])[0]
    return slope, line.bytes[-1] - line.bytes[0]
