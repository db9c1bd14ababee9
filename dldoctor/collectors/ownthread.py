"""dldoctor's own threads in the target: started below ``threading``, so the program never sees
them.

A ``threading.Thread`` would be listed by ``threading.enumerate()`` and counted by
``threading.active_count()``. Programs join every thread they find there ("wait for all
threads": ``for t in threading.enumerate(): if t is not main: t.join()``), and that join
would wait for dldoctor's threads, which run until the program ends: the program would hang
under dldoctor only. They count them too (``active_count() == 1`` as "all workers done").
So these threads are started with ``_thread.start_new_thread`` and live in ``threading``'s
registry nowhere: a ``threading.settrace``/``setprofile`` hook of the program is not put on
them either, and like daemon threads they never hold up the interpreter's exit.

Code that runs in them must not call ``threading.current_thread()``, which would register a
dummy ``Thread`` for them (that ``join()`` refuses). A failure in one is kept
(``failures()``), for the agent to report; nothing is printed on the program's stderr.
"""

from __future__ import annotations

import _thread
import os
import time
from collections.abc import Callable

_RUNNING: dict[int, OwnThread] = {}
_FAILURES: list[tuple[str, str]] = []
os.register_at_fork(after_in_child=_RUNNING.clear)  # a forked child has none of them


class OwnThread:
    """A daemon thread of dldoctor's, with what the collectors use of ``threading.Thread``."""

    def __init__(self, target: Callable[[], object], name: str) -> None:
        self.name = name
        self.ident: int | None = None
        self._target = target
        self._started = _thread.allocate_lock()
        self._done = _thread.allocate_lock()
        self._cpu_s = 0.0

    def start(self) -> None:
        """Start the thread; return once it runs (its ``ident`` is known)."""
        self._started.acquire()
        self._done.acquire()
        _thread.start_new_thread(self._bootstrap, ())
        self._started.acquire()  # released by the new thread
        self._started.release()

    def _bootstrap(self) -> None:
        self.ident = _thread.get_ident()
        _RUNNING[self.ident] = self
        self._started.release()
        try:
            self._target()
        except BaseException as exc:  # noqa: BLE001 - kept for the report, never printed
            _FAILURES.append((self.name, f"{type(exc).__name__}: {exc}"))
        finally:
            _RUNNING.pop(self.ident, None)
            self._done.release()

    def is_alive(self) -> bool:
        """True from ``start()`` until the target has returned."""
        return self.ident is not None and self._done.locked()

    def is_current(self) -> bool:
        """True in the thread itself."""
        return self.ident == _thread.get_ident()

    def join(self, timeout: float | None = None) -> None:
        """Wait (at most ``timeout`` seconds) for the target to return."""
        if self.ident is None:
            return
        if self._done.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            self._done.release()

    def cpu_s(self) -> float:
        """CPU seconds the thread has used: once it has ended, the last reading; 0.0 where the
        OS cannot tell."""
        if self.is_alive():
            try:
                self._cpu_s = time.clock_gettime(time.pthread_getcpuclockid(self.ident or 0))
            except (AttributeError, OSError):
                pass
        return self._cpu_s


def running() -> list[OwnThread]:
    """dldoctor's threads that run now."""
    return list(_RUNNING.values())


def failures() -> list[tuple[str, str]]:
    """Return and forget the failures of dldoctor's threads since the last call, as
    (thread name, "Type: message")."""
    taken = _FAILURES[:]
    del _FAILURES[: len(taken)]
    return taken
