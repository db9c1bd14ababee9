"""Lock instrumentation: ``threading.Lock``/``RLock`` (and so ``Condition``, ``Semaphore``,
``Event``, ``Barrier``, ``queue.Queue``, ``concurrent.futures``) replaced by thin wrappers.

``LockMonitor.install()`` (``collectors.lockmonitor``) swaps the two factories in the
``threading`` module for ``make_lock``/``make_rlock``; locks made before that, and locks
dldoctor makes for itself, stay raw. A wrapper keeps the raw lock's semantics and tells the
monitor about every acquisition (who, where), every contended one (how long it waited, then
how long for the GIL), nested acquisitions (lock order) and, for contended sites, hold times.
Process-wide: which locks each thread may hold (``_HELD``, pruned lazily) and what each blocked
thread waits for (``_WAITING``), for the deadlock watchdog."""

from __future__ import annotations

import _thread
import itertools
import operator
import sys
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dldoctor.collectors.lockmonitor import LockMonitor, LockSite

_get_ident = _thread.get_ident
_getframe = sys._getframe
_clock = time.monotonic

_HELD: dict[int, list[Any]] = {}
_WAITING: dict[int, tuple[Any, float, FrameType]] = {}
_MONITOR: LockMonitor | None = None
_SERIAL = itertools.count(1)  # instance numbers, to tell apart locks of one site


def make_lock() -> Any:
    """``threading.Lock()`` while installed."""
    monitor = _MONITOR
    site = monitor.site_for(_getframe(1), "Lock") if monitor is not None else None
    return _thread.allocate_lock() if site is None else InstrumentedLock(site)


def make_rlock(*args: Any, **kwargs: Any) -> Any:
    """``threading.RLock()`` while installed."""
    monitor = _MONITOR
    site = monitor.site_for(_getframe(1), "RLock") if monitor is not None else None
    if site is None:
        return _thread.RLock(*args, **kwargs)
    return InstrumentedRLock(site)


def _check_args(blocking: bool, timeout: float) -> None:
    if not blocking:
        raise ValueError("can't specify a timeout for a non-blocking call")
    if timeout < 0:
        raise ValueError("timeout value must be positive")


# Where the GIL can change hands matters here. CPython switches threads only at "check points"
# (calls, backward jumps, function entry); a raw ``with lock:`` has none between acquiring and
# releasing, so a switch never finds the lock held. A Python wrapper does, and every switch
# inside it makes the next thread block on the lock: the wrapper would *create* contention.
# So: all bookkeeping that needs calls is done before the raw acquire, none after it (except
# for a nested acquisition); an uncontended Lock is released by the raw lock's own C methods
# (``release``/``__exit__`` are properties returning them), and the held lists are pruned
# lazily; only locks of a site that has been contended switch to ``_TimedLock``, whose
# Python-level release times the hold.
def _take(lock: Any, blocking: bool, timeout: float, frame: FrameType) -> bool:
    """Acquire ``lock``'s raw lock for the caller at ``frame``; record it. True if acquired."""
    me = _get_ident()
    held = _HELD.get(me)
    if held and (len(held) > 1 or held[0] is not lock):
        _prune(held, me)
        if held and blocking and _MONITOR is not None:  # lock order: recorded on the attempt
            _MONITOR.nested(held, lock, me)
    site = lock._site
    since = _clock() if site.timed else 0.0
    if lock._try:  # a property calling the raw acquire(False) from C: no switch point after it
        lock._since = since
    elif not _blocking_acquire(lock, blocking, timeout, frame):
        return False
    # The owner and the count are stored together, with nothing that allocates (and so could
    # run a garbage-collection finalizer, or a signal handler at a call) in between: a
    # finalizer that takes the same RLock must see it either not yet ours or ours once, as
    # with the C RLock. Seen as ours with count 0, it went "reentrant", released the raw lock
    # at its end, and this acquisition's release then failed (joblib's resource tracker).
    lock._count = 1
    lock._owner = me
    lock._acq = frame
    lock._lasti = frame.f_lasti
    site.acquisitions += 1
    if held is None:
        _HELD[me] = [lock]
    elif not held or held[-1] is not lock:
        held += (lock,)
    if site.timed and lock._untimed:  # an attribute, not type(lock): a call is a switch point
        _set_class(lock, _TimedLock)
    return True


_set_class = object.__dict__["__class__"].__set__  # ``lock.__class__ = ``, past the property


_TRY = operator.methodcaller("_raw_acquire", False)  # lock._try: raw.acquire(False), in C


def _prune(held: list[Any], me: int) -> None:
    """Drop the locks ``me`` no longer holds (released through the raw lock's C methods), and
    the frames of those not held at all (``forget_released``)."""
    kept = []
    for h in held:
        if h._owner == me and h._lock.locked():
            kept.append(h)
        elif not h._lock.locked():
            h._acq = None
    held[:] = kept


def forget_released() -> None:
    """Drop the acquiring frame of every lock not held now.

    A lock keeps the frame of its last acquisition (cheap to store, resolved to a line only
    when a report needs it), and a frame keeps its locals and its callers' frames alive: a
    released lock would hold on to whatever those frames referenced, a big array or the
    ``__main__`` module, so objects would be freed later (``__del__`` run at other times) than
    without dldoctor. The raw lock's own C release leaves no room to drop it then (no Python
    code runs there, by design: see ``_take``), so this runs at every flush and at the end,
    and ``_prune`` does it for the locks it drops. Every lock with a frame is in some thread's
    ``_HELD`` list until pruned. (A thread that takes the lock between the check and the store
    loses its acquisition's site for reports: a missing line, never a wrong one.) The lists
    of threads that have ended go too: with a thread per task they would pile up, each keeping
    the locks it took alive."""
    alive = sys._current_frames().keys()
    for ident, held in list(_HELD.items()):
        if ident not in alive:
            if _HELD.get(ident) is held:  # not a new thread's, started since with this ident
                del _HELD[ident]
            continue
        for lock in list(held):
            if lock._acq is not None and not lock._lock.locked():
                lock._acq = None


def held_by(ident: int) -> list[Any]:
    """Return the instrumented locks thread ``ident`` holds now."""
    return [h for h in list(_HELD.get(ident, ())) if h._owner == ident and h._lock.locked()]


def _hold_ended(lock: Any) -> None:
    """Time the hold that ends now (timed sites only; before the raw release)."""
    since = lock._since
    if since:
        lock._since = 0.0
        site = lock._site
        site.holds += 1
        now = _clock()
        site.hold_s += now - since
        lock._released = now


def _blocking_acquire(lock: Any, blocking: bool, timeout: float, frame: FrameType) -> bool:
    """The slow path: wait for ``lock._lock``, timing the wait and publishing it."""
    if not blocking:
        return False
    me = _get_ident()
    start = _clock()
    _WAITING[me] = (lock, start, frame)
    try:
        got = lock._lock.acquire(True, timeout)
    finally:
        _WAITING.pop(me, None)
    end = _clock()
    released = lock._released
    # From the release that let us in to now, the thread was getting the GIL back, not waiting
    # for the lock (known once the site's holds are timed, i.e. after its first contention).
    granted = released if got and start <= released <= end else end
    lock._since = end
    monitor = _MONITOR
    if monitor is not None:
        monitor.waited(lock._site, frame, start, granted - start, me, end - granted)
    return bool(got)


class _Instrumented:
    """What both wrappers keep: the raw lock, its site, who took it last, where and when."""

    __slots__ = ("_lock", "_raw_acquire", "_site", "_serial", "_owner", "_count", "_acq",
                 "_lasti", "_since", "_released", "__weakref__")
    _KIND = "Lock"
    _RAW: type = _thread.LockType
    _untimed = False  # a Lock whose releases do not time the hold yet (see _TimedLock)

    def __init__(self, site: LockSite | None = None) -> None:
        if site is None:  # ``type(threading.Lock())()``, or a subclass of it (joblib's)
            site = _site_of(_getframe(1), self._KIND)
        self._lock = _thread.allocate_lock()
        self._raw_acquire = self._lock.acquire
        self._site = site
        self._serial = next(_SERIAL)
        self._owner: int | None = None  # the last thread that acquired it
        self._count = 0  # RLock: how many times the owner holds it
        self._acq: FrameType | None = None
        self._lasti = 0
        self._since = 0.0
        self._released = 0.0

    def _at_fork_reinit(self) -> None:
        self._lock._at_fork_reinit()  # type: ignore[attr-defined]
        self._owner = None
        self._count = 0
        self._acq = None

    _try = property(_TRY)

    # What the program sees of the type, as of the raw lock's: ``lock.__class__`` and so
    # ``isinstance(lock, _thread.LockType)`` (torch's pickler skips locks that way), and the
    # errors of copying or pickling one. ``type(lock)`` stays the wrapper's.
    __class__ = property(operator.attrgetter("_RAW"))  # type: ignore[assignment]

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(f"cannot pickle {_type_name(self)!r} object")


def _type_name(lock: _Instrumented) -> str:
    """The type name the raw lock's messages and repr would show: ``_thread.lock`` or
    ``_thread.RLock``, or a user's subclass's own name."""
    kind = type(lock)
    if kind.__module__ == __name__:
        return f"_thread.{lock._RAW.__name__}"
    return kind.__name__


def _site_of(frame: FrameType, kind: str) -> LockSite:
    """The site of a lock made by calling the wrapper's class itself."""
    from dldoctor.collectors.lockmonitor import LockSite

    monitor = _MONITOR
    site = monitor.site_for(frame, kind) if monitor is not None else None
    return site if site is not None else LockSite(-1, kind, None, "")


class InstrumentedLock(_Instrumented):
    """A ``threading.Lock`` that reports its use to the monitor."""

    __slots__ = ()
    _untimed = True

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire like ``_thread.lock.acquire``; return True if acquired."""
        if timeout != -1:
            _check_args(blocking, timeout)
        return _take(self, blocking, timeout, _getframe(1))

    def locked(self) -> bool:
        """Return True if the lock is held."""
        return self._lock.locked()

    def _is_owned(self) -> bool:
        # What Condition computes itself for a plain lock (a failed acquire(False)), without
        # two wrapper calls: queue.Queue asks on every put and get.
        return self._lock.locked()

    def __repr__(self) -> str:
        state = "locked" if self._lock.locked() else "unlocked"
        return f"<{state} {_type_name(self)} object at {id(self):#x}>"

    __enter__ = acquire
    acquire_lock = acquire
    locked_lock = locked
    release = release_lock = property(operator.attrgetter("_lock.release"),
                                      doc="The raw lock's release (C: no thread switch).")
    __exit__ = property(operator.attrgetter("_lock.__exit__"))


class _TimedLock(InstrumentedLock):
    """An ``InstrumentedLock`` of a contended site: its releases time the hold."""

    __slots__ = ()
    _untimed = False

    def release(self) -> None:  # type: ignore[override]
        """Release; RuntimeError if not locked (like the raw lock)."""
        _hold_ended(self)
        self._lock.release()

    def __exit__(self, *exc: object) -> None:  # type: ignore[override]
        _hold_ended(self)
        self._lock.release()

    release_lock = release  # type: ignore[assignment]


class InstrumentedRLock(_Instrumented):
    """A ``threading.RLock`` (reentrant) that reports its use to the monitor."""

    __slots__ = ()
    _KIND = "RLock"
    _RAW = _thread.RLock

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire (again, if this thread owns it); return True if acquired."""
        if timeout != -1:
            _check_args(blocking, timeout)
        if self._owner == _get_ident():
            self._count += 1
            return True
        return _take(self, blocking, timeout, _getframe(1))

    def release(self) -> None:
        """Release once; RuntimeError if this thread does not own it."""
        if self._owner != _get_ident() or not self._count:
            raise RuntimeError("cannot release un-acquired lock")
        if self._count > 1:
            self._count -= 1
            return
        _hold_ended(self)  # first: the three stores below leave no room for other code
        self._count = 0
        self._owner = None
        self._lock.release()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _is_owned(self) -> bool:
        return self._owner == _get_ident()

    def _recursion_count(self) -> int:
        return self._count if self._owner == _get_ident() else 0

    def _release_save(self) -> tuple[int, int | None]:
        if not self._count or self._owner != _get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        state = (self._count, self._owner)
        _hold_ended(self)
        self._count = 0
        self._owner = None
        self._lock.release()
        return state

    def _acquire_restore(self, state: tuple[int, int]) -> None:
        _take(self, True, -1, _getframe(1))
        self._count, self._owner = state

    def __repr__(self) -> str:
        state = "locked" if self._lock.locked() else "unlocked"
        return (f"<{state} {_type_name(self)} object owner={self._owner or 0} "
                f"count={self._count} at {id(self):#x}>")

    __enter__ = acquire
