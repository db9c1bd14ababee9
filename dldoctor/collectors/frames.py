"""Tell the user's code apart from libraries and from dldoctor itself."""

from __future__ import annotations

import os
import sys
import sysconfig
from functools import lru_cache

from dldoctor.run import DLDOCTOR, LIBRARY, USER

_DLDOCTOR_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _library_roots() -> tuple[str, ...]:
    roots = set()
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(name)
        if path:
            roots.add(os.path.realpath(path) + os.sep)
            roots.add(os.path.abspath(path) + os.sep)
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        roots.add(os.path.join(os.path.realpath(prefix), "lib") + os.sep)
    return tuple(sorted(roots))


_LIBRARY_ROOTS = _library_roots()


@lru_cache(maxsize=4096)
def classify(filename: str) -> str:
    """Return ``"user"``, ``"library"`` or ``"dldoctor"`` for a code object's file name."""
    if not filename or filename.startswith("<"):
        return LIBRARY
    path = os.path.abspath(filename)
    if path.startswith(_DLDOCTOR_DIR):
        return DLDOCTOR
    if f"{os.sep}site-packages{os.sep}" in path or f"{os.sep}dist-packages{os.sep}" in path:
        return LIBRARY
    if path.startswith(_LIBRARY_ROOTS):
        return LIBRARY
    return USER


def is_runpy(filename: str) -> bool:
    """True for runpy's frames (``-m`` targets run below them): ``<frozen runpy>`` on Python
    3.11+, the ``runpy.py`` file before."""
    return filename == "<frozen runpy>" or filename.endswith(os.sep + "runpy.py")


def is_bootstrap(filename: str) -> bool:
    """True for the frames below the target's outermost one: ``-c`` code, dldoctor, runpy."""
    return filename == "<string>" or classify(filename) == DLDOCTOR or is_runpy(filename)
