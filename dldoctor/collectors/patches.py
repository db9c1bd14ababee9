"""Reversible attribute patches for hooks that come and go while the target runs.

A hook that is cheap to call is still not free in a training loop: between two torch kernels the
CPU's caches hold torch's data, not ours, and each extra Python call costs microseconds. The
torch-step collector therefore puts its wrappers in place only for the steps it times and takes
them out for the others. ``Patch`` makes that safe next to other patchers:

- the wrapper is built around whatever the attribute holds when it is applied, so a wrapper
  someone else put in place meanwhile stays in the call chain;
- ``remove()`` only takes out our own wrapper: if another was put on top of it, ours stays
  (it must keep passing calls through) and ``remove()`` says so;
- an attribute that was inherited (not in the target's own ``__dict__``) is deleted again
  rather than pinned on the target."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_MISSING = object()


class Patch:
    """``target.name`` replaced by ``make(current value)`` while applied."""

    def __init__(self, target: Any, name: str, make: Callable[[Any], Any]) -> None:
        self.target, self.name = target, name
        self._make = make
        self._wrapped: Any = _MISSING  # the value the cached wrapper calls
        self._wrapper: Any = None
        self._own: Any = _MISSING  # the target's own attribute before we applied (or missing)
        self.applied = False

    def apply(self) -> None:
        """Put the wrapper in place (built anew only if the attribute changed since)."""
        if self.applied:
            return
        own = vars(self.target).get(self.name, _MISSING)
        current = getattr(self.target, self.name) if own is _MISSING else own
        if current is not self._wrapped:
            self._wrapped, self._wrapper = current, self._make(current)
        self._own = own
        setattr(self.target, self.name, self._wrapper)
        self.applied = True

    def remove(self) -> bool:
        """Restore the attribute; return False (staying applied) if ours is no longer the
        attribute's value: whoever replaced it may be calling ours."""
        if not self.applied:
            return True
        if vars(self.target).get(self.name, _MISSING) is not self._wrapper:
            return False
        if self._own is _MISSING:
            delattr(self.target, self.name)
        else:
            setattr(self.target, self.name, self._own)
        self.applied = False
        return True
