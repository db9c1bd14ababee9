"""Keep a bounded, evenly thinned subset of an unbounded stream (for timelines of long runs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
_NONE = object()


class Decimator(Generic[T]):
    """Keeps the items whose stream index is a multiple of ``stride``; when more than ``cap``
    have been kept, the stride doubles and held items off the new grid are dropped. Memory stays
    O(cap) and the kept items stay evenly spaced.

    Items can come in groups that are kept or dropped together (one sampling tick's rows, one
    per thread: thinned row by row, a timeline of two threads at stride 2 would keep one thread's
    rows and none of the other's): ``offer(item, joined=True)`` puts an item in the previous
    one's group, and ``extend(items, stride, key)`` groups consecutive items of equal key.

    A producer can ``take()`` the items kept since its last take (to stream them elsewhere) while
    the thinning decisions go on as if it still held them all; the receiving side merges them
    with ``extend(items, stride)``."""

    def __init__(self, cap: int) -> None:
        self.cap = max(2, cap)
        self.stride = 1
        self._held: list[tuple[int, T]] = []
        self._kept = 0
        self._seen = 0
        self._group = 0  # the stream index of the last group

    @property
    def items(self) -> list[T]:
        """The items held now, oldest first."""
        return [item for _index, item in self._held]

    def offer(self, item: T, weight: int = 1, joined: bool = False) -> bool:
        """Consider the next item (standing for ``weight`` stream positions; with ``joined``,
        a further item of the previous one's group, kept or dropped with it); True if kept."""
        if joined:
            index = self._group
        else:
            index = self._group = self._seen
            self._seen += weight
        if index % self.stride:
            return False
        self._held.append((index, item))
        self._kept += 1
        while self._kept > self.cap:
            self._thin()
        return True

    def offer_group(self, items: list[T]) -> None:
        """Consider one group of items at the next stream position, kept or dropped together
        (``offer`` of the first, ``offer(joined=True)`` of the rest, in one call: a sampling
        tick's rows for 200 threads cost 200 method calls the other way)."""
        if not items:
            return
        index = self._group = self._seen
        self._seen += 1
        if index % self.stride:
            return
        self._held.extend([(index, item) for item in items])
        self._kept += len(items)
        while self._kept > self.cap:
            self._thin()

    def take(self) -> list[T]:
        """Return and forget the items kept since the last take."""
        items = self.items
        self._held = []
        return items

    def extend(self, items: list[T], stride: int,
               key: Callable[[T], object] | None = None) -> None:
        """Merge items another Decimator kept at ``stride`` (each stands for ``stride`` items;
        with ``key``, each run of consecutive items of equal key is one group)."""
        while self.stride < stride:
            self._thin()
        last: object = _NONE
        for item in items:
            group = key(item) if key is not None else _NONE
            self.offer(item, weight=max(1, stride), joined=group is not _NONE and group == last)
            last = group

    def _thin(self) -> None:
        self.stride *= 2
        self._held = [(i, item) for i, item in self._held if i % self.stride == 0]
        self._kept = (self._kept + 1) // 2
