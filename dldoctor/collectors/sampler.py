"""Stack sampler: a snapshot of every Python thread's stack, aggregated per (thread, stack).

Runs inside the target process on the agent's thread; no ``sys.setprofile`` hook. Each tick
also reads every thread's CPU clock so CPU seconds can be attributed to the stack seen (the CPU
view). The wall view counts each tick for the time since the previous one, in whole intervals
(the remainder carried to the next tick): a tick cannot start while C code holds the GIL (an
import, ``sum(range(10**7))``, a big sort), so the one that comes after 100 ms of it stands for
those 100 ms, not for 10, and such code is not under-counted. Stacks and frames are interned, so
memory grows with the number of distinct stacks, not with run time."""

from __future__ import annotations

import dis
import sys
import threading
import time
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from dldoctor.collectors.bounded import Decimator
from dldoctor.collectors.callas import is_call_shim
from dldoctor.collectors.frames import classify, is_bootstrap

MAX_DEPTH = 128
TIMELINE_CAP = 20_000
LINE_CACHE_CAP = 200_000
RAW_CACHE_CAP = 50_000
RECHECK = 10  # a still thread's CPU clock is read every RECHECK-th tick (see ``sample``)


_clock_gettime = time.clock_gettime


def _thread_cpu_clock(ident: int) -> int | None:
    """Return the id of thread ``ident``'s CPU clock, or None where unsupported."""
    try:
        return time.pthread_getcpuclockid(ident)
    except (AttributeError, OSError, OverflowError):
        return None


class StackSampler:
    """Aggregates stack snapshots. ``sample()`` takes one; ``drain()`` returns what is new since
    the last drain as a JSON-ready record of type ``"samples"``."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic,
                 t0: float | None = None, crop_root: bool = True) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._t0 = clock() if t0 is None else t0
        self._crop_root = crop_root
        self._exclude: set[int] = set()
        # Code objects are keyed by id(): hashing one hashes its bytecode and constants every
        # time (CPython caches no code hash), ~1-3 us per frame of a deep torch stack.
        self._codes: dict[int, int] = {}  # id(code) -> slot
        self._slot_codes: list[CodeType] = []  # per slot: the code, kept alive (ids stay unique)
        self._slot_boot: list[bool] = []  # per slot: below the target's outermost frame
        self._slot_shim: list[bool] = []  # per slot: an ``as_caller`` shim, left out of stacks
        self._slot_frame: list[int] = []  # per slot: its index in the frames table, or -1
        self._frames = 0
        self._lines: dict[tuple[int, int], int] = {}  # (slot, offset) -> line
        self._stacks: dict[tuple[int, ...], int] = {}
        self._raw: dict[tuple[int, ...], int | None] = {}  # raw key -> stack (_intern_stack)
        self._threads: dict[int, int] = {}
        self._clock_ids: dict[int, int | None] = {}  # ident -> its CPU clock's id
        # ident -> [clock id, its CPU reading, id(top code), top f_lasti, stack, thread, counts
        # cell, ticks to its next CPU reading, id(top frame)] of a thread seen still at the last
        # tick; emptied at every drain
        self._quiet: dict[int, list[Any]] = {}
        self._last_cpu: dict[int, float] = {}
        self._idle: dict[int, tuple[tuple[int, int], int | None]] = {}  # ident -> (top, stack)
        self._counts: dict[tuple[int, int], list[float]] = {}
        self._timeline: Decimator[list[float]] = Decimator(TIMELINE_CAP)
        self._new_frames: list[dict[str, Any]] = []
        self._new_stacks: list[list[int]] = []
        self._new_threads: list[dict[str, Any]] = []
        self._ticks = 0
        self._ticks_sent = 0
        self._last_tick: float | None = None
        self._owed = 0.0  # intervals of wall time not yet counted (the carry of whole ones)
        self.self_cpu_s = 0.0

    def exclude_thread(self, ident: int) -> None:
        """Never sample thread ``ident`` (the agent's own)."""
        self._exclude.add(ident)
        self._quiet.pop(ident, None)

    def sample(self) -> None:
        """Take one snapshot of all threads' stacks."""
        now = self._clock() - self._t0
        frames = sys._current_frames()
        self._ticks += 1
        previous, self._last_tick = self._last_tick, now
        self._owed += (now - previous) / self.interval_s if previous is not None else 1.0
        weight = int(self._owed)
        self._owed -= weight
        idle, quiet = self._idle, self._quiet
        rows: list[list[float]] = []  # the tick's timeline rows, kept or thinned together
        for ident, frame in frames.items():
            # A thread seen still (no CPU used, same innermost frame) at the last tick, and at
            # the same instruction of the same frame now: its row again, with no method call
            # (300 idle threads cost 0.9 ms a tick through the general path below). Its CPU
            # clock is read every RECHECK-th tick only (a read costs as much as the rest): CPU
            # used meanwhile without leaving that instruction (a C call that woke up) is
            # counted at the next read, on the same stack, as it would be now.
            still = quiet.get(ident)
            if still is not None:
                if frame.f_lasti == still[3] and id(frame) == still[8] and \
                        id(frame.f_code) == still[2]:
                    still[7] -= 1
                    if still[7] > 0:
                        unchanged = True
                    else:
                        still[7] = RECHECK
                        try:
                            unchanged = _clock_gettime(still[0]) == still[1]
                        except OSError:
                            unchanged = False
                    if unchanged:
                        still[6][0] += weight
                        rows.append([now, still[5], still[4]])
                        continue
                del quiet[ident]
            if ident in self._exclude:
                continue
            seen = ident in self._last_cpu  # at first sight a thread's delta is 0.0 unread
            delta = self._cpu_delta(ident)
            cpu = delta or 0.0
            # A thread that used no CPU since the last tick has not moved: when its innermost
            # frame is where it was, its stack is the one seen then (no walk; a blocked
            # worker or a waiting main thread costs two attribute reads).
            top = (id(frame.f_code), frame.f_lasti)
            last = idle.get(ident)
            if delta == 0.0 and last is not None and last[0] == top:
                stack = last[1]
            else:
                stack = self._intern_stack(frame)
                idle[ident] = (top, stack)
            if stack is None:
                continue
            thread = self._intern_thread(ident)
            cell = self._counts.get((thread, stack))
            if cell is None:
                cell = self._counts[(thread, stack)] = [weight, cpu]
            else:
                cell[0] += weight
                cell[1] += cpu
            if delta == 0.0 and seen and self._clock_ids.get(ident) is not None:
                quiet[ident] = [self._clock_ids[ident], self._last_cpu[ident], top[0], top[1],
                                stack, thread, cell, RECHECK, id(frame)]
            rows.append([now, thread, stack])  # rounded at drain (round() is slow)
        del frames
        self._timeline.offer_group(rows)

    def _cpu_delta(self, ident: int) -> float | None:
        """Return the thread's CPU seconds since the last tick (0.0 at first sight), or None
        where its CPU clock cannot be read."""
        if ident not in self._clock_ids:
            self._clock_ids[ident] = _thread_cpu_clock(ident)
        clock = self._clock_ids[ident]
        if clock is None:
            return None
        try:
            value = _clock_gettime(clock)
        except OSError:  # thread ended between snapshot and read
            self._clock_ids[ident] = None
            return None
        last = self._last_cpu.get(ident, value)
        self._last_cpu[ident] = value
        return max(0.0, value - last)

    def _slot(self, code: CodeType) -> int:
        """Return the code's slot: a private number given at first sight (bootstrap frames
        included); it becomes a frame of the report only once a kept stack uses it."""
        slot = len(self._slot_codes)
        self._codes[id(code)] = slot
        self._slot_codes.append(code)
        self._slot_boot.append(is_bootstrap(code.co_filename))
        self._slot_shim.append(is_call_shim(code))
        self._slot_frame.append(-1)
        return slot

    def _frame_index(self, slot: int) -> int:
        index = self._slot_frame[slot]
        if index < 0:
            code = self._slot_codes[slot]
            index = self._slot_frame[slot] = self._frames
            self._frames += 1
            function = getattr(code, "co_qualname", code.co_name)
            self._new_frames.append({"file": code.co_filename, "function": function,
                                     "line": code.co_firstlineno,
                                     "kind": classify(code.co_filename)})
        return index

    def _intern_stack(self, frame: FrameType | None) -> int | None:
        """Return the stack's index (None: only bootstrap frames). Fast path: the stack's raw
        key, (id(code), instruction offset) per frame, seen before; a frame then costs four
        attribute reads. Every code in a raw key has a slot, which keeps it alive, so its id
        cannot be reused by another code."""
        raw: list[int] = []
        depth = 0
        top = frame
        while frame is not None and depth < MAX_DEPTH:
            raw.append(id(frame.f_code))
            raw.append(frame.f_lasti)
            frame = frame.f_back
            depth += 1
        key = tuple(raw)
        index = self._raw.get(key, -1)
        if index == -1:
            index = self._intern_slow(top)
            if len(self._raw) >= RAW_CACHE_CAP:
                self._raw.clear()
            self._raw[key] = index
        return index

    def _intern_slow(self, frame: FrameType | None) -> int | None:
        # Leaf to root: (line, slot) pairs, reversed at the end. A frame's line is looked up by
        # (code, instruction offset): computing ``f_lineno`` scans the code's line table.
        flat: list[int] = []
        codes, lines = self._codes, self._lines
        depth = 0
        while frame is not None and depth < MAX_DEPTH:
            code = frame.f_code
            slot = codes.get(id(code))
            if slot is None:
                slot = self._slot(code)
            if self._slot_shim[slot]:  # dldoctor's, under the caller's name: not a frame
                frame = frame.f_back
                depth += 1
                continue
            lasti = frame.f_lasti
            line = lines.get((slot, lasti))
            if line is None:
                line = frame.f_lineno
                if line is None:  # 3.11: some loop instructions carry no line
                    line = _line_at(code, lasti)
                if len(lines) >= LINE_CACHE_CAP:
                    lines.clear()
                lines[(slot, lasti)] = line
            flat.append(line)
            flat.append(slot)
            frame = frame.f_back
            depth += 1
        flat.reverse()  # root first: slot, line, slot, line, ...
        start = 0
        if self._crop_root:  # drop the bootstrap (-c code, dldoctor, runpy) below the target
            while start < len(flat) and self._slot_boot[flat[start]]:
                start += 2
        if start >= len(flat):
            return None
        key = tuple(flat[start:]) if start else tuple(flat)
        index = self._stacks.get(key)
        if index is None:
            index = len(self._stacks)
            self._stacks[key] = index
            self._new_stacks.append([self._frame_index(v) if i % 2 == 0 else v
                                     for i, v in enumerate(key)])
        return index

    def _intern_thread(self, ident: int) -> int:
        index = self._threads.get(ident)
        if index is None:
            index = len(self._threads)
            self._threads[ident] = index
            thread = threading._active.get(ident)  # type: ignore[attr-defined]
            name = thread.name if thread is not None else f"thread-{ident}"
            self._new_threads.append({"id": ident, "name": name,
                                      "main": ident == threading.main_thread().ident})
        return index

    def drain(self) -> dict[str, Any]:
        """Return the new frames/stacks/threads, the count deltas and new timeline rows."""
        record = {
            "type": "samples",
            "interval_s": self.interval_s,
            "ticks": self._ticks - self._ticks_sent,
            "frames": self._new_frames,
            "stacks": self._new_stacks,
            "threads": self._new_threads,
            "counts": [[t, s, c[0], round(c[1], 6)] for (t, s), c in self._counts.items()],
            "timeline": [[round(t, 5), thread, stack]
                         for t, thread, stack in self._timeline.take()],
            "timeline_stride": self._timeline.stride,
            "sampler_cpu_s": round(self.self_cpu_s, 6),
        }
        self._ticks_sent = self._ticks
        alive = sys._current_frames().keys()  # forget ended threads (idents are reused)
        for per_thread in (self._idle, self._clock_ids, self._last_cpu):
            for ident in [i for i in per_thread if i not in alive]:
                del per_thread[ident]
        self._new_frames, self._new_stacks, self._new_threads = [], [], []
        self._counts = {}
        self._quiet = {}  # its cells were the drained counts'
        return record


_LINELESS: dict[int, tuple[CodeType, dict[int, int]]] = {}  # id(code) -> (code, map)
LINELESS_CAP = 4096


def _lineless_map(code: CodeType) -> dict[int, int]:
    """Map offsets of instructions without a line number to a line: a loop's back-edge jump to
    its loop header, anything else to the line of the instruction before it."""
    mapping: dict[int, int] = {}
    lines: dict[int, int] = {}
    last = code.co_firstlineno
    instructions = list(dis.get_instructions(code))
    for ins in instructions:
        line = ins.positions.lineno if ins.positions else None
        if line is not None:
            last = line
        lines[ins.offset] = last
    for ins in instructions:
        if ins.positions is None or ins.positions.lineno is None:
            target = ins.argval if "JUMP_BACKWARD" in ins.opname else None
            mapping[ins.offset] = lines.get(target, lines[ins.offset]) if isinstance(
                target, int) else lines[ins.offset]
    return mapping


def _line_at(code: CodeType, offset: int) -> int:
    """Return the line to blame for the instruction at ``offset`` (see ``_lineless_map``).

    Python threads yield the GIL at loop back-edges, so in-process samples of a pure-Python
    loop land on its jump back; blaming the loop header keeps such time on the loop."""
    # By id (hashing a code object is slow, see ``_codes``); the entry keeps the code alive,
    # so an id found here is this code's.
    entry = _LINELESS.get(id(code))
    if entry is None:
        if len(_LINELESS) >= LINELESS_CAP:
            _LINELESS.clear()
        entry = _LINELESS[id(code)] = (code, _lineless_map(code))
    return entry[1].get(offset, code.co_firstlineno)
