"""The stack sampler on real threads: idle threads are not re-walked, and yet every sample
names where each thread is."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from dldoctor.collectors import sampler as sampler_module
from dldoctor.collectors.sampler import StackSampler


def _functions(record: dict[str, Any], stack: list[int]) -> list[str]:
    frames = record["frames"]
    return [frames[stack[i]]["function"].rsplit(".", 1)[-1] for i in range(0, len(stack), 2)]


def _stacks_of(records: list[dict[str, Any]], thread_name: str) -> list[list[str]]:
    """Per tick of thread ``thread_name``, its stack as function names (timeline order)."""
    frames: list[dict[str, Any]] = []
    stacks: list[list[int]] = []
    threads: list[dict[str, Any]] = []
    rows: list[list[Any]] = []
    for record in records:
        frames += record["frames"]
        stacks += record["stacks"]
        threads += record["threads"]
        rows += record["timeline"]
    index = next(i for i, t in enumerate(threads) if t["name"] == thread_name)
    merged = {"frames": frames}
    return [_functions(merged, stacks[stack]) for _, thread, stack in rows if thread == index]


def test_an_idle_thread_is_not_rewalked_and_a_moving_one_is_followed() -> None:
    """A thread blocked in a wait used no CPU since the last tick: the sampler reuses its
    stack instead of walking it again. When it wakes and blocks elsewhere (the same wait
    function, called from another function), the next samples say so."""
    first, second, done = threading.Event(), threading.Event(), threading.Event()

    def wait_in_a() -> None:
        first.wait()

    def wait_in_b() -> None:
        second.wait()

    def worker() -> None:
        wait_in_a()
        wait_in_b()
        done.set()

    thread = threading.Thread(target=worker, name="waiter")
    thread.start()
    sampler = StackSampler(0.01)
    walks = 0
    walk = sampler._intern_stack

    def counting(frame: Any) -> int | None:
        nonlocal walks
        walks += 1
        return walk(frame)

    sampler._intern_stack = counting  # type: ignore[method-assign]
    records = []
    try:
        time.sleep(0.05)
        for _ in range(20):
            sampler.sample()
        if sampler._clock_ids.get(thread.ident) is None:
            pytest.skip("no per-thread CPU clock on this platform")
        walks_while_idle = walks
        records.append(sampler.drain())
        first.set()
        time.sleep(0.05)  # the worker moves on and blocks in wait_in_b
        for _ in range(20):
            sampler.sample()
        records.append(sampler.drain())
    finally:
        first.set()
        second.set()
        thread.join()
    # 20 ticks of two threads (this one runs, the waiter does not): the waiter was walked
    # once, at first sight; this thread at every tick.
    assert walks_while_idle == 20 + 1
    stacks = _stacks_of(records, "waiter")
    assert len(stacks) == 40
    assert all("wait_in_a" in s and "wait_in_b" not in s for s in stacks[:20])
    assert all("wait_in_b" in s and "wait_in_a" not in s for s in stacks[20:])
    assert all(s[-1] == "wait" for s in stacks)  # Condition.wait, below Event.wait


def _parked_thread_and_sampler() -> tuple[threading.Thread, threading.Event, StackSampler]:
    """A thread named "parked" blocked on the returned event (set it to end the thread), and
    a sampler whose clock moves one interval per tick."""
    go = threading.Event()
    thread = threading.Thread(target=go.wait, name="parked")
    thread.start()
    ticks = iter(range(10_000))
    sampler = StackSampler(0.5, clock=lambda: next(ticks) * 0.5)
    time.sleep(0.05)
    return thread, go, sampler


def test_a_thread_still_across_drains_is_counted_in_each() -> None:
    """A still thread takes a shortcut (its last row again, no method call) that adds to the
    counts cell of its last tick; every drain starts new counts, and the thread's ticks must
    land in the new ones, not in a drained cell."""
    thread, go, sampler = _parked_thread_and_sampler()
    try:
        drained = []
        for n in (5, 7, 3):
            for _ in range(n):
                sampler.sample()
            drained.append(sampler.drain())
        if sampler._clock_ids.get(thread.ident) is None:
            pytest.skip("no per-thread CPU clock on this platform")
    finally:
        go.set()
        thread.join()
    threads: list[dict[str, Any]] = []
    counted = []
    for record in drained:
        threads += record["threads"]
        index = next(i for i, t in enumerate(threads) if t["name"] == "parked")
        counted.append(sum(c[2] for c in record["counts"] if c[0] == index))
    assert counted == [5, 7, 3]


def test_cpu_a_still_thread_uses_without_moving_is_counted_at_its_next_reading(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A still thread's CPU clock is read every RECHECK-th tick only. CPU it uses without
    leaving its instruction (a C call that wakes up and computes) is therefore counted a few
    ticks late, but whole and on its stack, and the thread then leaves the shortcut."""
    thread, go, sampler = _parked_thread_and_sampler()
    try:
        sampler.sample()
        sampler.sample()  # no CPU used since the first: still from now on
        clock = sampler._clock_ids.get(thread.ident)
        if clock is None:
            pytest.skip("no per-thread CPU clock on this platform")
        assert thread.ident in sampler._quiet
        base = sampler._last_cpu[thread.ident]
        real = sampler_module._clock_gettime
        monkeypatch.setattr(sampler_module, "_clock_gettime",
                            lambda c: base + 0.25 if c == clock else real(c))
        reads = 0
        for _ in range(sampler_module.RECHECK - 1):  # the shortcut: no clock read
            sampler.sample()
            reads += thread.ident not in sampler._quiet
        assert reads == 0
        sampler.sample()  # the RECHECK-th: read, changed, counted
        assert thread.ident not in sampler._quiet
        record = sampler.drain()
    finally:
        go.set()
        thread.join()
    index = next(i for i, t in enumerate(record["threads"]) if t["name"] == "parked")
    cells = [c for c in record["counts"] if c[0] == index]
    assert sum(c[2] for c in cells) == sampler_module.RECHECK + 2  # every tick's wall time
    assert sum(c[3] for c in cells) == pytest.approx(0.25)  # the CPU, once
    assert len({c[1] for c in cells}) == 1  # on the stack it was seen on


def test_a_busy_thread_is_walked_at_every_tick() -> None:
    """A thread burning CPU is never served a remembered stack."""
    stop = threading.Event()

    def spin() -> None:
        x = 0
        while not stop.is_set():
            x += 1

    thread = threading.Thread(target=spin, name="spinner")
    thread.start()
    sampler = StackSampler(0.01)
    try:
        ticks = 0
        while ticks < 10:
            time.sleep(0.005)  # the spinner gets the GIL, so it used CPU since the last tick
            sampler.sample()
            ticks += 1
        record = sampler.drain()
    finally:
        stop.set()
        thread.join()
    stacks = _stacks_of([record], "spinner")
    assert len(stacks) == 10 and all("spin" in s for s in stacks)
    spinner = next(i for i, t in enumerate(record["threads"]) if t["name"] == "spinner")
    cpu = sum(c[3] for c in record["counts"] if c[0] == spinner)
    assert cpu > 0.01  # its CPU seconds were still counted


def test_a_late_tick_counts_for_the_wall_time_since_the_last_one() -> None:
    """The wall count of a tick is the time since the previous tick in intervals, the
    remainder carried: an early tick counts 0 and its half interval goes to the next one."""
    times = iter([0.0, 0.5, 1.0, 6.0, 6.25, 7.0])
    sampler = StackSampler(0.5, clock=lambda: next(times), t0=0.0)
    walls = []
    me = None  # the main thread's index, told by the first drain (later ones name no thread)
    for _ in range(6):
        sampler.sample()
        record = sampler.drain()
        if me is None:
            me = next(i for i, t in enumerate(record["threads"]) if t["main"])
        walls.append(sum(c[2] for c in record["counts"] if c[0] == me))
    assert walls == [1, 1, 1, 10, 0, 2]  # 15 intervals in all: 1 + 7.0 s / 0.5 s
    assert sampler._ticks == 6


GIL_HELD = '''
import time


def python_work(seconds):
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def c_work(seconds):
    end = time.perf_counter() + seconds
    total = 0
    while time.perf_counter() < end:
        total += sum(range(10_000_000))  # one C call that holds the GIL for ~0.1 s
    return total


python_work(1.5)
c_work(1.5)
'''


def test_code_that_holds_the_gil_gets_its_wall_time(profile, write_script) -> None:
    """The sampler's thread cannot run while C code holds the GIL: c_work gets one tick per
    ~0.1 s call where python_work gets one every ~10 ms. Counted per tick, c_work showed ~10 %
    of the wall time; counted by the time each tick stands for, about half, as it is."""
    result = profile(write_script("gil_held.py", GIL_HELD), options=("-q",))
    assert result.returncode == 0, result.stderr.decode()
    samples = result.report()["run"]["samples"]
    frames = samples["frames"]
    wall: dict[str, int] = {"python_work": 0, "c_work": 0}
    for _thread, stack, count, _cpu in ([c["thread"], c["stack"], c["wall"], c["cpu_s"]]
                                        for c in samples["counts"]):
        names = {frames[i]["function"] for i in samples["stacks"][stack][0::2]}
        for name in wall:
            wall[name] += count if name in names else 0
    share = wall["c_work"] / (wall["c_work"] + wall["python_work"])
    assert 0.35 < share < 0.65, wall
