"""Thread rules: ``data-race``, ``deadlock``, ``lock-contention``, ``gil-contention`` and
``thread-oversubscription``.

Evidence comes from the Run's ``threads`` section (instrumented locks, the lock-order graph,
deadlocks seen by the in-target watchdog, thread targets and the shared writes in their source,
thread-pool sizes during the run) and from the stack samples (per-thread CPU, and the source
facts of the lines threads spent their time on)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dldoctor.findings import ERROR, INFO, WARNING, Finding, Location
from dldoctor.run import USER, Deadlock, LockEdge, LockSite, Run, SharedWrite, SourceLine
from dldoctor.stats import IDLE, LOCK_WAIT, stack_states, thread_seconds

if TYPE_CHECKING:
    from dldoctor.analyzers import Rule

CONTENTION_WARN = 0.20  # share of the waiting threads' time
CONTENTION_INFO = 0.05
CONTENTION_MIN_S = 0.1
BUSY_MIN = 0.25  # a lock held less than this share of the time is not what slows threads
# A mean wait this many times (per waiting thread) the mean hold: waiters queued behind a
# holder that was switched out (GIL, OS) while holding, not behind long critical sections.
SWITCHED_OUT = 10
# Waits of which this share went to the GIL once the lock was free: the waiters run Python code
# and would take turns on the GIL without the lock too (measured: ~45 % for three threads doing
# locked pure-Python transfers, 0.4 % for four threads sharing a NumPy model behind a lock).
GIL_BOUND = 0.2
GIL_MIN_CPU_S = 0.1  # CPU in Python code per thread
GIL_MIN_SPAN_S = 0.5  # how long threads were seen running Python code (together)
GIL_MAX_PARALLELISM = 1.3
BLAS_MIN_S = 0.2
HOLDING_CALLS = {  # calls that keep the GIL: a line making only these runs Python bytecode
    "range", "len", "abs", "min", "max", "sum", "int", "float", "str", "round", "enumerate",
    "zip", "sorted", "isinstance", "list", "dict", "set", "tuple", "bool", "divmod", "pow",
    "reversed", "any", "all", "map", "filter", "hash", "ord", "chr", "repr", "format", "append",
    "extend", "pop", "get", "items", "keys", "values", "setdefault", "update", "add", "insert",
    "split", "join", "strip", "replace", "lower", "upper", "startswith", "endswith", "item"}
HOLDING_MODULES = ("math", "random", "operator", "statistics", "itertools", "functools",
                   "heapq", "bisect", "collections", "string", "cmath")
BLAS_CALLS = {"dot", "matmul", "mm", "bmm", "einsum", "tensordot", "inner", "solve", "inv",
              "svd", "qr", "cholesky", "lstsq", "linear", "conv1d", "conv2d", "conv3d", "addmm",
              "baddbmm", "pinv", "eigh", "eig", "det"}
BLAS_FILES = ("/numpy/linalg/", "/torch/nn/", "/scipy/linalg/", "/sklearn/")


def _loc(location: Location | None) -> Location | None:
    return location if location is not None and location.line > 0 else None


def _where(location: Location | None) -> str:
    if location is None:
        return "an unknown place"
    return f"{location.file.rsplit('/', 1)[-1]}:{location.line}"


def lock_label(site: LockSite) -> str:
    """Return a short name for a lock site: kind, maker and where it was created."""
    maker = f" made by {site.creator}" if site.creator and site.creator != "Condition.__init__" \
        else ""
    kind = "Condition's lock" if site.creator == "Condition.__init__" else site.kind
    return f"{kind}{maker} created at {_where(site.created)}"


# -- data-race ---------------------------------------------------------------------------------
class DataRace:
    """Unguarded read-modify-writes of state several threads share."""

    rule = "data-race"
    description = "shared mutable state written from two or more threads without a common lock"

    def analyze(self, run: Run) -> list[Finding]:
        """Return one finding per unguarded shared write site."""
        return [self._finding(w) for w in run.threads.shared_writes if w.starts >= 2]

    def _finding(self, write: SharedWrite) -> Finding:
        runtime = write.evidence == "runtime"
        overlapped = write.threads >= 2
        when = (f"while {write.threads} threads run this code" if overlapped else
                f"from {write.starts} threads (they did not overlap in this run, so no update "
                "was lost this time)")
        what = {"global": "a module-level variable", "closure": "a variable of the enclosing "
                "function", "attribute": "an object all these threads were given",
                "argument": "an argument all these threads were given"}.get(write.scope,
                                                                           "shared state")
        return Finding(
            rule=self.rule, severity=WARNING if overlapped else INFO,
            title=(f"Unsynchronised update of `{write.target}` from "
                   f"{max(write.threads, write.starts) if not overlapped else write.threads} "
                   "threads"),
            message=(f"`{write.text}` in {write.function} reads and writes {what} "
                     f"(`{write.target}`) {when}, with no lock held: two threads can read the "
                     "same old value and one update is lost (NumPy in-place ops release the "
                     "GIL, so even `w -= g` interleaves)."),
            evidence={"target": write.target, "scope": write.scope, "threads": write.threads,
                      "started": write.starts,
                      "function": write.function, "code": write.text,
                      "evidence": ("the same object was passed to every thread (seen at thread "
                                   "start)" if runtime else "from the source of the code the "
                                   "threads ran"),
                      "observed": False},
            location=Location(write.file, write.line, write.function),
            advice=("Hold one lock around the whole read-modify-write (`with self.lock: "
                    "self.n += 1`), or give each thread its own accumulator/gradient buffer and "
                    "combine them in one thread after `join()` (or send results through a "
                    "`queue.Queue`)."),
            confidence=0.8 if runtime or write.scope in ("global", "closure") else 0.6)


# -- deadlock -----------------------------------------------------------------------------------
class DeadlockRule:
    """Threads blocked on each other's locks, or lock-order inversions that can do that."""

    rule = "deadlock"
    description = "threads blocked forever on each other's locks, or a lock-order inversion"

    def analyze(self, run: Run) -> list[Finding]:
        """Return observed deadlocks (error) and potential ones (warning)."""
        sites = {s.index: s for s in run.threads.locks}
        findings = [self._observed(d, sites) for d in run.threads.deadlocks]
        seen = {frozenset(t.waits_for for t in d.threads) for d in run.threads.deadlocks}
        for cycle in lock_order_cycles(run.threads.edges):
            locks = frozenset(e.held for e in cycle)
            if locks not in seen:
                seen.add(locks)
                findings.append(self._potential(cycle, sites))
        return findings

    def _observed(self, deadlock: Deadlock, sites: dict[int, LockSite]) -> Finding:
        parts, threads = [], []
        for blocked in deadlock.threads:
            held = "; ".join(f"holds {self._name(h.lock, sites)} (taken at "
                             f"{_where(h.at)})" for h in blocked.holds) or "holds no lock"
            parts.append(f"'{blocked.name}' {held} and waits at {_where(blocked.waits_at)} for "
                         f"{self._name(blocked.waits_for, sites)}")
            threads.append({"thread": blocked.name, "waits_for": blocked.waits_for,
                            "waits_at": _where(blocked.waits_at), "since_s": blocked.since,
                            "holds": [{"lock": h.lock, "at": _where(h.at)}
                                      for h in blocked.holds]})
        first = deadlock.threads[0] if deadlock.threads else None
        return Finding(
            rule=self.rule, severity=ERROR,
            title=f"Deadlock: {len(deadlock.threads)} threads blocked on each other's locks",
            message=(f"At {deadlock.t:.1f} s dldoctor saw a wait-for cycle: "
                     + "; ".join(parts) + ". None of them can proceed."),
            evidence={"observed": True, "t": deadlock.t, "threads": threads,
                      "locks": self._locks({t.waits_for for t in deadlock.threads}, sites)},
            location=_loc(first.waits_at) if first else None,
            advice=("Acquire the locks in one global order everywhere (e.g. always A before B), "
                    "or hold one lock at a time; `acquire(timeout=...)` turns a hang into an "
                    "error you can see."),
            confidence=1.0)

    def _potential(self, cycle: list[LockEdge], sites: dict[int, LockSite]) -> Finding:
        steps = [f"{self._name(e.held, sites, e.instances[:1])} (taken at {_where(e.held_at)}) "
                 f"then {self._name(e.acquired, sites, e.instances[1:])} at "
                 f"{_where(e.acquired_at)}" for e in cycle]
        return Finding(
            rule=self.rule, severity=WARNING,
            title=f"Lock-order inversion between {len(cycle)} locks: a potential deadlock",
            message=("Threads take the same locks in opposite orders: " + "; while ".join(steps)
                     + ". It did not hang this time, but if two threads interleave there, each "
                     "holds the lock the other waits for."),
            evidence={"observed": False,
                      "order": [{"held": e.held, "held_at": _where(e.held_at),
                                 "acquired": e.acquired, "acquired_at": _where(e.acquired_at),
                                 "times": e.count, "instances": e.instances} for e in cycle],
                      "locks": self._locks({e.held for e in cycle}, sites)},
            location=_loc(cycle[0].acquired_at),
            advice=("Pick one order for these locks and take them in that order everywhere "
                    "(for locks of one kind, e.g. per-account locks, order by a key such as "
                    "`id()`), or merge them into one lock."),
            confidence=0.8)

    @staticmethod
    def _name(index: int, sites: dict[int, LockSite], instance: list[int] | None = None) -> str:
        site = sites.get(index)
        label = lock_label(site) if site else f"lock #{index}"
        return f"{label} (#{instance[0]})" if instance else label

    @staticmethod
    def _locks(indexes: set[int], sites: dict[int, LockSite]) -> list[dict[str, object]]:
        return [{"lock": i, "kind": sites[i].kind, "created_at": _where(sites[i].created),
                 "creator": sites[i].creator} for i in sorted(indexes) if i in sites]


def lock_order_cycles(edges: list[LockEdge], longest: int = 4) -> list[list[LockEdge]]:
    """Return lock-order cycles (each a list of edges) that two or more threads took part in
    and that no common outer lock serialises; instance edges of one site pair up directly."""
    cycles: list[list[LockEdge]] = []
    instance = {tuple(e.instances): e for e in edges if e.instances}
    for (a, b), edge in instance.items():
        back = instance.get((b, a))
        if back is not None and a < b:
            cycles.append([edge, back])
    graph: dict[int, list[LockEdge]] = defaultdict(list)
    for edge in edges:
        if not edge.instances and not edge.guarded and edge.held != edge.acquired:
            graph[edge.held].append(edge)
    found: set[frozenset[int]] = set()
    for start in sorted(graph):
        for cycle in _cycles_from(start, graph, longest):
            key = frozenset(e.held for e in cycle)
            if key not in found:
                found.add(key)
                cycles.append(cycle)
    return [c for c in cycles if len({t for e in c for t in e.threads}) >= 2]


def _cycles_from(start: int, graph: dict[int, list[LockEdge]], longest: int
                 ) -> Iterator[list[LockEdge]]:
    stack: list[tuple[int, list[LockEdge]]] = [(start, [])]
    while stack:
        node, path = stack.pop()
        for edge in graph.get(node, []):
            if edge.acquired == start:
                yield [*path, edge]
            elif edge.acquired > start and len(path) + 1 < longest and \
                    edge.acquired not in {e.held for e in path}:
                stack.append((edge.acquired, [*path, edge]))


# -- lock-contention ----------------------------------------------------------------------------
class LockContention:
    """Locks that threads spend a large share of their time waiting for."""

    rule = "lock-contention"
    description = "threads spend a large share of time waiting for a lock"

    def analyze(self, run: Run) -> list[Finding]:
        """Return one finding per lock site with a notable share of waiting."""
        seconds = thread_seconds(run)
        findings = []
        for site in run.threads.locks:
            if site.wait_s < CONTENTION_MIN_S:
                continue
            lived = [seconds.get(t, 0.0) for t in site.waiters]
            span = max([*lived, 1e-9]) if any(lived) else max(run.meta.duration_s, 1e-9)
            share = min(1.0, site.wait_s / (sum(lived) or span * max(1, len(site.waiters))))
            if share >= CONTENTION_INFO:
                findings.append(self._finding(site, share, lock_busy(site, span)))
        return findings

    def _finding(self, site: LockSite, share: float, busy: float | None) -> Finding:
        hold = site.hold_s / site.holds if site.holds else None
        wait = site.wait_s / site.contended if site.contended else 0.0
        rarely_held = busy is not None and busy < BUSY_MIN
        switched_out = hold is not None and \
            wait > SWITCHED_OUT * hold * max(1, len(site.waiters))
        gil_bound = site.gil_wait_s >= GIL_BOUND * site.wait_s
        warn = share >= CONTENTION_WARN and site.wait_s >= 2 * CONTENTION_MIN_S and \
            not rarely_held and not switched_out and not gil_bound
        top = site.waits[0] if site.waits else None
        at = Location(top.file, top.line, top.function) if top else site.created
        held_text = f"; it is held {hold * 1000:.3f} ms on average" if hold is not None else ""
        cure = ("the threads queue because the holder is often switched out (GIL, OS "
                "scheduling) while others retry, so the lock is taken too often rather than "
                "held too long.")
        why = (f" Yet the lock is held only {busy:.0%} of the time: {cure}" if rarely_held else
               f" Yet a wait ({wait * 1000:.2f} ms on average) lasts far longer than the lock is "
               f"held: {cure}" if switched_out else
               f" Yet {site.gil_wait_s / site.wait_s:.0%} of that waiting was for the GIL once "
               "the lock was free: these threads run Python code that takes turns on the GIL "
               "with or without the lock, so a finer lock would not let them run at once."
               if gil_bound else "")
        return Finding(
            rule=self.rule, severity=WARNING if warn else INFO,
            title=f"Threads wait {share:.0%} of their time for one lock",
            message=(f"{len(site.waiters)} thread(s) waited {site.wait_s:.2f} s in "
                     f"{site.contended:,} of {site.acquisitions:,} acquisitions of the "
                     f"{lock_label(site)} (longest wait {site.max_wait_s * 1000:.1f} ms"
                     f"{held_text}). Most waiting happens at {_where(at)}.{why}"),
            evidence={"wait_s": round(site.wait_s, 4), "share": round(share, 4),
                      "threads": len(site.waiters), "acquisitions": site.acquisitions,
                      "contended": site.contended, "max_wait_s": round(site.max_wait_s, 4),
                      "mean_hold_ms": round(hold * 1000, 4) if hold is not None else None,
                      "mean_wait_ms": round(wait * 1000, 4),
                      "busy_share": round(busy, 4) if busy is not None else None,
                      "gil_wait_s": round(site.gil_wait_s, 4), "lock": lock_label(site),
                      "waits": [{"at": _where(Location(w.file, w.line)), "count": w.count,
                                 "wait_s": round(w.wait_s, 4)} for w in site.waits[:5]]},
            location=_loc(at),
            advice=("Take the lock less often (batch updates, per-thread accumulators reduced at "
                    "the end) or hold it for less time (compute outside it, update inside); "
                    "split it (one lock per independent piece of state), or hand the state to "
                    "one owner thread through a queue."),
            confidence=0.9 if warn else 0.7)


def lock_busy(site: LockSite, span: float) -> float | None:
    """Return the share of ``span`` the lock site was held (mean timed hold x acquisitions),
    or None when no hold was timed."""
    if not site.holds or span <= 0:
        return None
    return min(1.0, site.hold_s / site.holds * site.acquisitions / span)


# -- gil-contention and thread-oversubscription ------------------------------------------------
def _line_calls(fact: SourceLine) -> list[str]:
    return [f[5:] for f in fact.features if f.startswith("call:")]


def _holds_gil(fact: SourceLine) -> bool:
    """True if the line runs only Python bytecode and calls that keep the GIL."""
    if "matmul" in fact.features:
        return False
    for call in _line_calls(fact):
        head, _, last = call.rpartition(".")
        if head.split(".")[0] in HOLDING_MODULES or last in HOLDING_CALLS:
            continue
        return False
    return True


def _is_blas(fact: SourceLine) -> bool:
    return "matmul" in fact.features or any(c.rpartition(".")[2] in BLAS_CALLS
                                             for c in _line_calls(fact))


def classify_stacks(run: Run) -> dict[tuple[int, int], str]:
    """Return ``python`` / ``blas`` / ``other`` / ``idle`` / ``lock`` per (thread, stack): the
    innermost user line runs pure Python, calls a BLAS-backed op, or something else."""
    facts = {(s.file, s.line): s for s in run.sources}
    states = stack_states(run)
    frames, stacks = run.samples.frames, run.samples.stacks
    kinds = {}
    for (thread, index), state in states.items():
        stack = stacks[index]
        if state in (IDLE, LOCK_WAIT):
            kinds[(thread, index)] = state
            continue
        if any(f in frames[stack[p]].file for p in range(0, len(stack), 2) for f in BLAS_FILES):
            kinds[(thread, index)] = "blas"
            continue
        innermost = frames[stack[-2]] if stack else None
        fact = facts.get((innermost.file, stack[-1])) if innermost else None
        if innermost is None or innermost.kind != USER or fact is None:
            kinds[(thread, index)] = "other"
        else:
            kinds[(thread, index)] = "blas" if _is_blas(fact) else \
                "python" if _holds_gil(fact) else "other"
    return kinds


def _per_thread(run: Run, kinds: dict[tuple[int, int], str], kind: str
                ) -> dict[int, tuple[float, float]]:
    """Return thread -> (wall seconds, CPU seconds) in stacks of ``kind``."""
    acc: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for count in run.samples.counts:
        if kinds.get((count.thread, count.stack)) == kind:
            acc[count.thread][0] += count.wall * run.samples.interval_s
            acc[count.thread][1] += count.cpu_s
    return {t: (w, c) for t, (w, c) in acc.items()}


def busy_ticks(run: Run, kinds: dict[tuple[int, int], str], kind: str,
               threads: set[int]) -> dict[float, int]:
    """Return, for each sampling tick where one of ``threads`` was in a ``kind`` stack, how
    many of them were (a thinned timeline can only undercount)."""
    ticks: dict[float, int] = defaultdict(int)
    for t, thread, stack in run.samples.timeline:
        if int(thread) in threads and kinds.get((int(thread), int(stack))) == kind:
            ticks[float(t)] += 1
    return ticks


def _hottest(run: Run, kinds: dict[tuple[int, int], str], kind: str) -> Location | None:
    acc: dict[tuple[int, int], int] = defaultdict(int)
    frames, stacks = run.samples.frames, run.samples.stacks
    for count in run.samples.counts:
        if kinds.get((count.thread, count.stack)) == kind:
            stack = stacks[count.stack]
            for p in range(len(stack) - 2, -1, -2):
                if frames[stack[p]].kind == USER:
                    acc[(stack[p], stack[p + 1])] += count.wall
                    break
    if not acc:
        return None
    frame, line = max(acc, key=lambda k: acc[k])
    return Location(frames[frame].file, line, frames[frame].function)


def _spans(run: Run, kinds: dict[tuple[int, int], str], kind: str
           ) -> dict[int, tuple[float, float]]:
    """Return thread -> (first, last) time it was sampled in a ``kind`` stack."""
    spans: dict[int, tuple[float, float]] = {}
    for t, thread, stack in run.samples.timeline:
        if kinds.get((int(thread), int(stack))) == kind:
            first, last = spans.get(int(thread), (float(t), float(t)))
            spans[int(thread)] = (min(first, float(t)), max(last, float(t)))
    return spans


class GilContention:
    """Two or more threads running Python bytecode at once: the GIL runs them one at a time."""

    rule = "gil-contention"
    description = "CPU-bound Python threads serialised by the GIL"

    def analyze(self, run: Run) -> list[Finding]:
        """Return one finding when several threads were Python-bound at the same time."""
        if run.environment.cpu_count < 2:
            return []
        kinds = classify_stacks(run)
        spans = _spans(run, kinds, "python")
        busy = {t: cpu for t, (_wall, cpu) in _per_thread(run, kinds, "python").items()
                if cpu >= GIL_MIN_CPU_S and t in spans and
                spans[t][1] - spans[t][0] >= GIL_MIN_SPAN_S}
        if len(busy) < 2:
            return []
        ticks = list(busy_ticks(run, kinds, "python", set(busy)).values())
        start = min(spans[t][0] for t in busy)
        span = max(spans[t][1] for t in busy) - start + run.samples.interval_s
        overlap_s = span * sum(1 for n in ticks if n >= 2) / max(1, len(ticks))
        parallelism = sum(busy.values()) / span
        if overlap_s < GIL_MIN_SPAN_S or parallelism >= GIL_MAX_PARALLELISM:
            return []
        return [self._finding(run, kinds, busy, parallelism, overlap_s)]

    def _finding(self, run: Run, kinds: dict[tuple[int, int], str], busy: dict[int, float],
                 parallelism: float, overlap_s: float) -> Finding:
        names = [run.samples.threads[t].name for t in sorted(busy)]
        share = overlap_s / max(run.meta.duration_s, overlap_s, 1e-9)
        return Finding(
            rule=self.rule, severity=WARNING if share >= 0.2 else INFO,
            title=f"{len(busy)} threads run Python code but use {parallelism:.1f} cores",
            message=(f"Threads {', '.join(names[:6])} ran Python bytecode at the same time for "
                     f"about {overlap_s:.1f} s, yet together they used {parallelism:.2f} CPU "
                     f"cores of the {run.environment.cpu_count} here: the GIL lets one thread "
                     "run Python at a time, so these threads add little or no speed-up."),
            evidence={"threads": names,
                      "cpu_s": {run.samples.threads[t].name: round(c, 3) for t, c in busy.items()},
                      "achieved_parallelism": round(parallelism, 3),
                      "overlap_s": round(overlap_s, 2), "cores": run.environment.cpu_count},
            location=_hottest(run, kinds, "python"),
            advice=("Use processes for CPU-bound Python (`concurrent.futures.ProcessPoolExecutor`,"
                    " `multiprocessing`, torch DataLoader workers), or move the hot loop into "
                    "NumPy/torch operations, which release the GIL while they compute."),
            confidence=0.75)


class ThreadOversubscription:
    """Python threads each running BLAS/OpenMP work with a full-size thread pool."""

    rule = "thread-oversubscription"
    description = "Python threads x BLAS/OpenMP/torch threads exceed the cores"

    def analyze(self, run: Run) -> list[Finding]:
        """Return one finding when concurrent BLAS callers x pool threads > cores."""
        cores = run.environment.cpu_count
        kinds = classify_stacks(run)
        callers = {t for t, (w, _c) in _per_thread(run, kinds, "blas").items() if w >= BLAS_MIN_S}
        if cores < 1 or len(callers) < 2:
            return []
        ticks = sorted(busy_ticks(run, kinds, "blas", callers).items())
        if not ticks:
            return []
        counts = sorted(n for _t, n in ticks)
        concurrent = counts[len(counts) // 2]  # median over ticks with BLAS work
        if concurrent < 2:
            return []
        pool, source = self._pool_size(run, [t for t, n in ticks if n >= 2])
        if concurrent * pool <= cores:
            return []
        return [self._finding(run, kinds, concurrent, pool, source, cores)]

    @staticmethod
    def _pool_size(run: Run, times: list[float]) -> tuple[int, str]:
        """Return (threads per BLAS/torch pool in effect at ``times``, where that came from)."""
        readings = run.threads.pools
        if not readings:
            pools = run.environment.thread_pools
            sizes = [int(p.get("num_threads") or 1) for p in pools if p.get("user_api") == "blas"]
            sizes.append(run.environment.torch_threads or 1)
            return max(sizes), "at exit"
        chosen = []
        for t in times:
            current = readings[0]
            for reading in readings:
                if reading.t <= t:
                    current = reading
            sizes = [int(p.get("num_threads") or 1) for p in current.pools
                     if p.get("user_api") == "blas"]
            sizes.append(current.torch_threads or 1)
            chosen.append(max(sizes))
        chosen.sort()
        return chosen[len(chosen) // 2], "during the run"

    def _finding(self, run: Run, kinds: dict[tuple[int, int], str], concurrent: int, pool: int,
                 source: str, cores: int) -> Finding:
        product = concurrent * pool
        evidence = {"python_threads": concurrent, "pool_threads": pool, "cores": cores,
                    "total_threads": product, "pool_source": source,
                    "pools": [r.pools for r in run.threads.pools][-3:]}
        location = _hottest(run, kinds, "blas")
        if pool == 1:
            return self._single_threaded(concurrent, source, cores, evidence, location)
        per_thread = max(1, cores // concurrent)
        return Finding(
            rule=self.rule, severity=WARNING,
            title=f"{concurrent} threads x {pool} BLAS threads = {product} on {cores} cores",
            message=(f"{concurrent} Python threads ran BLAS-backed operations (matrix products, "
                     f"linear algebra) at the same time, and each call may use {pool} BLAS/OpenMP "
                     f"threads ({source}): {product} busy threads compete for {cores} cores. "
                     "OpenBLAS/OpenMP threads spin while they wait, so oversubscription can make "
                     "every call many times slower."),
            evidence=evidence, location=location,
            advice=(f"Limit BLAS threads while the Python threads run: `with threadpoolctl."
                    f"threadpool_limits({per_thread}):` around the threaded section (or "
                    f"OPENBLAS_NUM_THREADS/OMP_NUM_THREADS={per_thread}, `torch.set_num_threads"
                    f"({per_thread})`), so threads x BLAS threads <= cores."),
            confidence=0.8 if source == "during the run" else 0.6)

    def _single_threaded(self, concurrent: int, source: str, cores: int,
                         evidence: dict[str, Any], location: Location | None) -> Finding:
        """More BLAS-calling threads than cores, each call single-threaded: no pool thread
        spins or waits at a barrier, the OS shares the cores out. That costs switches, not a
        many-fold slowdown, and limiting BLAS threads (the warning's advice) is already done."""
        return Finding(
            rule=self.rule, severity=INFO,
            title=f"{concurrent} threads ran single-threaded BLAS on {cores} cores",
            message=(f"{concurrent} Python threads ran BLAS-backed operations at the same time, "
                     f"each call on one BLAS thread ({source}): at most {cores} of them run at "
                     "once, the others wait for a core. No BLAS/OpenMP pool spins here, so this "
                     "costs context switches rather than a many-fold slowdown."),
            evidence=evidence, location=location,
            advice=(f"More than {cores} such threads add switching, not speed: size the pool to "
                    f"the cores (`ThreadPoolExecutor(max_workers={cores})`), or give fewer "
                    "threads more BLAS threads each."),
            confidence=0.6)


RULES: list[Rule] = [DataRace(), DeadlockRule(), LockContention(), GilContention(),
                     ThreadOversubscription()]
