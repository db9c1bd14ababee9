"""Cross-references inside a loaded Run: a report.json whose JSON types are right can still be
damaged (edited by hand, half-merged), with a count pointing past its stacks or a stack past its
frames. Report.from_json checks them, so that such a file gives one line naming the bad entry
instead of an IndexError deep in a renderer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dldoctor.errors import ReportLoadError
from dldoctor.run import NativeProfile, Run, Samples


def check_references(run: Run, source: str) -> None:
    """Raise ``ReportLoadError`` if an index in ``run`` points outside its table."""
    _samples(run.samples, "samples", source)
    _samples(run.workers.samples, "workers.samples", source)
    _native(run.native, source)


def _samples(samples: Samples, where: str, source: str) -> None:
    threads, stacks, frames = len(samples.threads), len(samples.stacks), len(samples.frames)
    for i, count in enumerate(samples.counts):
        _within(source, f"{where}.counts[{i}].thread", count.thread, threads)
        _within(source, f"{where}.counts[{i}].stack", count.stack, stacks)
    for i, stack in enumerate(samples.stacks):
        _all_within(source, f"{where}.stacks[{i}]", stack[0::2], frames)
    for i, row in enumerate(samples.timeline):
        _length(source, f"{where}.timeline[{i}]", row, 3)
        _within(source, f"{where}.timeline[{i}] thread", row[1], threads)
        _within(source, f"{where}.timeline[{i}] stack", row[2], stacks)


def _native(native: NativeProfile, source: str) -> None:
    for i, row in enumerate(native.counts):
        _length(source, f"native.counts[{i}]", row, 3)
        _within(source, f"native.counts[{i}] thread", row[0], len(native.threads))
        _within(source, f"native.counts[{i}] stack", row[1], len(native.stacks))
    for i, stack in enumerate(native.stacks):
        _all_within(source, f"native.stacks[{i}]", stack, len(native.frames))


def _within(source: str, where: str, value: float, size: int) -> None:
    if not (isinstance(value, (int, float)) and value == int(value) and 0 <= value < size):
        shown = int(value) if isinstance(value, float) and value.is_integer() else value
        raise ReportLoadError(f"{source} is damaged: {where} is {shown!r}, outside 0..{size - 1}")


def _all_within(source: str, where: str, values: Iterable[float], size: int) -> None:
    for value in values:
        _within(source, where, value, size)


def _length(source: str, where: str, row: Sequence[object], length: int) -> None:
    if len(row) != length:
        raise ReportLoadError(f"{source} is damaged: {where} has {len(row)} fields, not {length}")
