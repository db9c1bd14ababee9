"""Run a callback when the target imports a given module, without importing it ourselves."""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, TypeVar

T = TypeVar("T")


class _Watcher(importlib.abc.MetaPathFinder):
    def __init__(self, name: str, callback: Callable[[ModuleType], None]) -> None:
        self.name = name
        self.callback = callback
        self._busy = False

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name or self._busy:
            return None
        self._busy = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy = False
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _Loader(spec.loader, self)
        return spec


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: Any, watcher: _Watcher) -> None:
        self._inner = inner
        self._watcher = watcher

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__.loader = self._inner  # type: ignore[union-attr]
        module.__loader__ = self._inner
        self._inner.exec_module(module)
        _remove(self._watcher)
        try:
            self._watcher.callback(module)
        except Exception:  # a collector hook must never break the target's import
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _remove(watcher: _Watcher) -> None:
    if watcher in sys.meta_path:
        sys.meta_path.remove(watcher)


def when_imported(name: str, callback: Callable[[ModuleType], None]) -> None:
    """Call ``callback(module)`` once ``name`` is imported (now, if it already is)."""
    module = sys.modules.get(name)
    if module is not None:
        callback(module)
        return
    sys.meta_path.insert(0, _Watcher(name, callback))


def until_imports(function: Callable[[], T]) -> Callable[[], T]:
    """Cache ``function()`` until the target's number of loaded modules changes (what depends
    on the loaded modules and is costly to find: the user's modules, the BLAS libraries)."""
    cache: list[Any] = [-1, None]

    @functools.wraps(function)
    def cached() -> T:
        if cache[0] != len(sys.modules):
            cache[1] = function()
            cache[0] = len(sys.modules)  # after: what ``function`` itself imported is in
        return cache[1]  # type: ignore[no-any-return]

    return cached
