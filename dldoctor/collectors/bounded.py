"""Keep a bounded, evenly thinned subset of an unbounded stream (for timelines of long runs)."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Decimator(Generic[T]):
    """Keeps every ``stride``-th item; when more than ``cap`` are kept, drops every other one and
    doubles the stride. Memory stays O(cap) and the kept items stay evenly spread in time.

    A producer can ``take()`` the items kept since its last take (to stream them elsewhere) while
    the thinning decisions go on as if it still held them all."""

    def __init__(self, cap: int) -> None:
        self.cap = max(2, cap)
        self.stride = 1
        self.items: list[T] = []
        self._kept = 0
        self._seen = 0

    def offer(self, item: T) -> bool:
        """Consider ``item``; return True if it was kept."""
        keep = self._seen % self.stride == 0
        self._seen += 1
        if keep:
            self.items.append(item)
            self._kept += 1
            if self._kept > self.cap:
                self._thin()
        return keep

    def take(self) -> list[T]:
        """Return and forget the items kept since the last take."""
        items, self.items = self.items, []
        return items

    def extend(self, items: list[T], stride: int) -> None:
        """Merge items another Decimator kept at ``stride`` (the coarser stride wins)."""
        while self.stride < stride:
            self._thin()
        step = max(1, self.stride // max(1, stride))
        for item in items[::step]:
            self.items.append(item)
            self._kept += 1
            if self._kept > self.cap:
                self._thin()

    def _thin(self) -> None:
        self.items = self.items[::2]
        self._kept //= 2
        self.stride *= 2
        self._seen = 0
