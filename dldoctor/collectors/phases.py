"""Per-step bookkeeping for the torch step breakdown, free of torch so it can be tested alone.

``PhaseClock`` keeps *exclusive* time per phase (entering a phase pauses the one running, so
the phases of a step never overlap and add up to at most the step). ``SiteTable`` counts calls
per user call site (syncs, transfers). ``StepWindows`` cuts both into steps at every step mark:
all counters are cumulative and a step is the difference between two consecutive marks of the
same source, so the hot path only adds numbers and all per-step work happens once per step.
Work before the first mark (setup) and after the last one (final evaluation, printing) belongs
to no step."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dldoctor.collectors.bounded import Decimator

PHASES = ("data", "forward", "backward", "optimizer", "transfer", "sync")
DATA, FORWARD, BACKWARD, OPTIMIZER, TRANSFER, SYNC = range(len(PHASES))
ROW_CAP = 2_000
SITE_CAP = 200

SiteKey = tuple[str, str, int, str]  # (kind, file, line, function)


class PhaseClock:
    """Exclusive time per phase of one thread. ``enter``/``exit`` nest like a stack."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self.totals = [0.0] * len(PHASES)
        self._stack: list[int] = []
        self._last = 0.0

    @property
    def current(self) -> int | None:
        """Return the running phase, or None between phases."""
        return self._stack[-1] if self._stack else None

    def enter(self, phase: int) -> None:
        """Start ``phase`` now, pausing the running one."""
        now = self._clock()
        if self._stack:
            self.totals[self._stack[-1]] += now - self._last
        self._stack.append(phase)
        self._last = now

    def exit(self, phase: int) -> None:
        """End ``phase`` (and anything entered inside it that never ended); resume the outer."""
        if phase not in self._stack:
            return
        now = self._clock()
        self.totals[self._stack[-1]] += now - self._last
        while self._stack and self._stack.pop() != phase:
            pass
        self._last = now

    def reset(self, now: float) -> None:
        """Forget the running phases (a step that is not timed follows)."""
        self._stack.clear()
        self._last = now

    def settle(self, now: float) -> list[float]:
        """Charge the running phase up to ``now``; return a copy of the cumulative totals."""
        if self._stack and now > self._last:
            self.totals[self._stack[-1]] += now - self._last
            self._last = now
        return list(self.totals)


class SiteTable:
    """Cumulative numeric cells per call site; cell[0] is always the call count."""

    def __init__(self, width: int, cap: int = SITE_CAP) -> None:
        self.width = width
        self.cap = cap
        self.cells: dict[SiteKey, list[float]] = {}
        self.dropped = 0
        self.version = 0  # bumped by every add: unchanged tables need no new snapshot
        self._snapshot: tuple[int, dict[SiteKey, list[float]]] = (-1, {})

    def add(self, key: SiteKey, values: tuple[float, ...]) -> None:
        """Count one call at ``key`` and add ``values`` to its other cells."""
        self.version += 1
        cell = self.cells.get(key)
        if cell is None:
            if len(self.cells) >= self.cap:
                self.dropped += 1
                return
            cell = self.cells[key] = [0.0] * self.width
        cell[0] += 1
        for index, value in enumerate(values, 1):
            cell[index] += value

    def snapshot(self) -> dict[SiteKey, list[float]]:
        """Return a copy of every cell (the same object while nothing was added)."""
        if self._snapshot[0] != self.version:
            self._snapshot = (self.version, {key: list(cell) for key, cell in self.cells.items()})
        return self._snapshot[1]


@dataclass
class _SiteSteps:
    """Per-site sums over steps, and in how many steps the site was seen."""

    sums: dict[SiteKey, list[float]] = field(default_factory=dict)
    steps: dict[SiteKey, int] = field(default_factory=dict)
    repeat_steps: dict[SiteKey, int] = field(default_factory=dict)

    def add_step(self, before: dict[SiteKey, list[float]], now: dict[SiteKey, list[float]]) -> None:
        if before is now:  # no call at any site during this step
            return
        for key, cell in now.items():
            old = before.get(key)
            delta = [a - b for a, b in zip(cell, old)] if old else list(cell)
            if delta[0] <= 0:
                continue
            sums = self.sums.setdefault(key, [0.0] * len(cell))
            for index, value in enumerate(delta):
                sums[index] += value
            self.steps[key] = self.steps.get(key, 0) + 1

    def rows(self) -> list[list[Any]]:
        return [[*key, self.steps[key], *[round(v, 6) for v in sums]]
                for key, sums in self.sums.items()]


class _SourceWindow:
    """Steps cut at the marks of one source (explicit ``dldoctor.step()`` or optimizer).

    Totals are the last cumulative snapshot minus the first; site tables are only compared
    when they changed during the step."""

    def __init__(self, t0: float) -> None:
        self._t0 = t0
        self.count = 0
        self.rows: Decimator[list[float]] = Decimator(ROW_CAP)
        self.tables: list[_SiteSteps] = []
        self._prev: tuple[float, list[float], list[dict[SiteKey, list[float]]]] | None = None
        self._duration = 0.0  # of the timed steps
        self._spent = [0.0] * len(PHASES)

    def mark(self, now: float, phases: list[float],
             sites: list[dict[SiteKey, list[float]]], timed: bool = True) -> None:
        """End a step at ``now``; an untimed step (hooks were idle) only moves the baseline."""
        if not self.tables:
            self.tables = [_SiteSteps() for _ in sites]
        if timed and self._prev is not None:
            then, old_phases, old_sites = self._prev
            self.count += 1
            deltas = [a - b for a, b in zip(phases, old_phases)]
            self.rows.offer([now - self._t0, now - then, *deltas])
            self._duration += now - then
            self._spent = [a + b for a, b in zip(self._spent, deltas)]
            for table, before, after in zip(self.tables, old_sites, sites):
                table.add_step(before, after)
        self._prev = (now, phases, sites)

    def forget(self) -> None:
        """Drop the baseline: the next mark only starts a step (steps went by unobserved)."""
        self._prev = None

    def record(self, source: str) -> dict[str, Any]:
        rows = [[round(v, 6) for v in row] for row in self.rows.take()]
        duration, spent = self._duration, self._spent
        return {"source": source, "steps": self.count, "duration_s": round(duration, 6),
                "phase_s": [round(v, 6) for v in spent], "rows": rows,
                "stride": self.rows.stride, "sites": [t.rows() for t in self.tables]}


class StepWindows:
    """Cuts a ``PhaseClock`` and some ``SiteTable``s into steps, per step-mark source."""

    def __init__(self, phases: PhaseClock, tables: list[SiteTable], t0: float = 0.0) -> None:
        self.phases = phases
        self.tables = tables
        self._t0 = t0
        self.windows: dict[str, _SourceWindow] = {}

    @property
    def started(self) -> bool:
        """True once any step mark has been seen (the training loop is running)."""
        return bool(self.windows)

    def mark(self, source: str, now: float, timed: bool = True) -> None:
        """A step of ``source`` ended at ``now`` (same clock as the PhaseClock); ``timed``
        False: the hooks were idle during it, so it only moves the baseline."""
        window = self.windows.get(source)
        if window is None:
            window = self.windows[source] = _SourceWindow(self._t0)
        window.mark(now, self.phases.settle(now), [t.snapshot() for t in self.tables], timed)

    def forget(self) -> None:
        """Steps go by unmarked from now on: every source's next mark only starts a step."""
        for window in self.windows.values():
            window.forget()

    def records(self) -> list[dict[str, Any]]:
        """Return one JSON-ready summary per source; ``rows`` holds only rows new since the
        last call (stream them), everything else is cumulative (the last record wins)."""
        return [window.record(source) for source, window in self.windows.items()]
