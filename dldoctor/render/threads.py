"""The threads view shared by the HTML and trace renderers: per-thread lanes (running / waiting
on a lock / idle), the locks table, and lock-wait spans as Chrome trace events."""

from __future__ import annotations

from typing import Any

from dldoctor.analyzers.threads import lock_label
from dldoctor.run import LockSite, Run
from dldoctor.stats import display_path, thread_lanes

LOCK_ROWS = 30
LOCK_TID_BASE = 100_000  # trace tracks for lock waits: one per thread, beside its stack track


def _where(run: Run, file: str, line: int) -> dict[str, str]:
    """Return the short place (``file.py:12``) and the full one (for a tooltip)."""
    return {"short": f"{file.rsplit('/', 1)[-1]}:{line}",
            "full": f"{display_path(file, run.meta.cwd)}:{line}"}


def _lock_rows(sites: list[LockSite], run: Run) -> list[dict[str, Any]]:
    rows = []
    for site in sorted(sites, key=lambda s: (-s.wait_s, -s.acquisitions, s.index))[:LOCK_ROWS]:
        top = site.waits[0] if site.waits else None
        rows.append({
            "index": site.index, "kind": site.kind, "creator": site.creator,
            "created": _where(run, site.created.file, site.created.line) if site.created
            else None, "instances": site.instances,
            "acquisitions": site.acquisitions, "contended": site.contended,
            "wait_s": site.wait_s, "max_wait_ms": site.max_wait_s * 1000,
            "mean_hold_ms": site.hold_s / site.holds * 1000 if site.holds else None,
            "waited_at": _where(run, top.file, top.line) if top else None,
        })
    return rows


def _lane_data(run: Run) -> dict[str, Any]:
    threads = run.samples.threads
    index = {t.id: i for i, t in enumerate(threads)}
    labels = {s.index: lock_label(s) for s in run.threads.locks}
    waits = [[t, d, index[int(ident)], labels.get(int(lock), f"lock #{int(lock)}")]
             for t, d, ident, lock in run.threads.waits if int(ident) in index]
    return {"threads": [t.name for t in threads], "segments": thread_lanes(run),
            "waits": waits, "end": run.meta.duration_s}


def thread_view(run: Run) -> dict[str, Any]:
    """Return what the HTML's Threads section shows: lanes, locks table, lock-order facts."""
    section = run.threads
    quiet = [s for s in section.locks if not s.contended]
    return {
        "available": section.available,
        "reason": section.reason,
        "lanes": _lane_data(run),
        # Contention is what the table is for: uncontended sites (in most runs all of them
        # made by libraries while they were imported) are folded under the contended ones.
        "locks": _lock_rows([s for s in section.locks if s.contended], run),
        "quiet_locks": _lock_rows(quiet, run),
        "quiet_count": len(quiet),
        "lock_count": len(section.locks),
        "edges": len(section.edges),
        "deadlocks": len(section.deadlocks),
        "targets": [{"function": t.function, "where": _where(run, t.file, t.line),
                     "via": t.via, "starts": t.starts,
                     "concurrency": t.concurrency, "shared": ", ".join(t.shared)}
                    for t in section.targets],
    }


def lock_wait_events(run: Run, pid: int) -> list[dict[str, Any]]:
    """Return trace events: one track per thread that waited, with a span per lock wait."""
    threads = run.samples.threads
    index = {t.id: i for i, t in enumerate(threads)}
    labels = {s.index: lock_label(s) for s in run.threads.locks}
    events: list[dict[str, Any]] = []
    named: set[int] = set()
    for t, duration, ident, lock in run.threads.waits:
        position = index.get(int(ident))
        if position is None:
            continue
        tid = LOCK_TID_BASE + position
        if tid not in named:
            named.add(tid)
            events.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_name",
                           "args": {"name": f"{threads[position].name} · lock waits"}})
            events.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_sort_index",
                           "args": {"sort_index": position + 1}})
        events.append({"ph": "X", "pid": pid, "tid": tid, "cat": "lock-wait",
                       "name": f"wait: {labels.get(int(lock), f'lock #{int(lock)}')}",
                       "ts": round(float(t) * 1e6, 1), "dur": round(float(duration) * 1e6, 1),
                       "args": {"lock": int(lock)}})
    return events
