"""``memory-leak`` and ``no-grad-inference``.

``memory-leak`` joins three kinds of evidence from the Run:

- the process's memory (RSS from the supervisor; CUDA memory allocated by tensors from the
  target) grows steadily after warm-up and has not levelled off (``dldoctor.growth``);
- a variable the censuses followed keeps growing — a list or dict gaining items, a tensor whose
  autograd graph gains nodes every step — with the source lines that grow it;
- allocation traces (tracemalloc/memray/CUDA history) name the lines whose memory stays.

One finding per growing variable that accounts for the growth (or holds autograd graphs, which
is a leak whatever its size); one more, pointed at the fastest-growing allocation line, when the
process grows and no variable explains it.

``no-grad-inference``: user variables seen holding tensors with a ``grad_fn`` during a stretch in
which no ``backward()`` ran — inference code recording graphs it never uses."""

from __future__ import annotations

from dataclasses import dataclass, replace

from dldoctor.findings import ERROR, INFO, WARNING, Finding, Location
from dldoctor.growth import (
    Growth,
    LineGrowth,
    RootGrowth,
    Span,
    allocation_growths,
    analysis_span,
    device_growth,
    host_growth,
    root_growths,
)
from dldoctor.run import GradObservation, HeapRoot, HeapSite, Run
from dldoctor.stats import step_stats
from dldoctor.units import human_bytes, human_seconds

ROOT_MIN_BYTES = 4 << 20  # a variable must have gained this much over the span ...
ROOT_SHARE = 0.25  # ... or this share of the process's growth, to be blamed for it
GRAPH_MIN_NODES = 200  # autograd nodes a kept graph must gain over the span
ERROR_WITHIN_S = 3600.0  # memory exhausted sooner than this: an error
EXPLAINED = 0.5


@dataclass(frozen=True)
class _Process:
    host: Growth | None
    device: Growth | None
    available: int | None
    device_free: int | None

    def growth(self, device: bool) -> Growth | None:
        g = self.device if device else self.host
        return g if g is not None and g.significant else None

    def free(self, device: bool) -> int | None:
        return self.device_free if device else self.available


class MemoryLeak:
    """Memory that grows with steps and is not given back."""

    rule = "memory-leak"
    description = "host or device memory grows with steps/iterations and is not returned"

    def analyze(self, run: Run) -> list[Finding]:
        """Return one finding per growing variable, plus one for unexplained growth."""
        span = analysis_span(run)
        process = _Process(host_growth(run, span), device_growth(run, span),
                           run.heap.available, run.heap.device_free)
        lines = allocation_growths(run)
        findings, explained = [], {False: 0.0, True: 0.0}
        growths = root_growths(run, span)
        steady = {g.root.path for g in growths if g.steady}
        for growth in sorted(growths, key=lambda g: -g.bytes_per_s):
            if any(p.startswith(growth.root.path + "[") for p in steady):
                continue  # a dict whose named entry (a finding of its own) is what grows
            on_device = growth.device_per_s > growth.bytes_per_s / 2
            memory = process.growth(on_device)
            if not growth.steady or not _blameable(growth, memory, span):
                continue
            opaque = growth.root.kind == "lru_cache" or (growth.root.kind == "tensor"
                                                         and growth.root.grad)
            if opaque and memory is not None and growth.bytes_per_s < memory.slope:
                # a cache's entries, a chained graph's nodes: what they hold is not measured
                growth = replace(growth, bytes_per_s=memory.slope)
            explained[on_device] += growth.bytes_per_s
            findings.append(_root_finding(run, growth, process, on_device, span, lines))
        for on_device in (False, True):
            g = process.growth(on_device)
            if g is not None and explained[on_device] < EXPLAINED * g.slope:
                findings.append(_unexplained_finding(run, g, process.free(on_device), lines,
                                                     _big_buffers(run, span, on_device)))
        return findings


def _blameable(growth: RootGrowth, process: Growth | None, span: Span) -> bool:
    """A kept autograd graph is a leak whatever its size; anything else must grow with the
    process's memory, by a good share of it or by ``ROOT_MIN_BYTES`` over the span."""
    if growth.root.grad and (growth.grown_nodes >= GRAPH_MIN_NODES or growth.grown_items > 0):
        return True
    if process is None:
        return False
    if growth.root.kind == "lru_cache":
        return True
    return growth.bytes_per_s * span.seconds >= ROOT_MIN_BYTES or \
        growth.bytes_per_s >= ROOT_SHARE * process.slope


def _root_finding(run: Run, growth: RootGrowth, process: _Process, on_device: bool, span: Span,
                  lines: list[LineGrowth]) -> Finding:
    root = growth.root
    memory = process.growth(on_device)
    rate = max(growth.bytes_per_s, memory.slope if memory else 0.0)
    free = process.free(on_device)
    exhaust = free / rate if free and rate > 0 else None
    site = root.sites[0] if root.sites else None
    allocated = [g for g in lines if site is not None and g.line.file == site.file][:3]
    evidence = {
        "memory": "device" if on_device else "host",
        "variable": root.path, "scope": root.scope, "kind": root.kind, "item": root.item,
        "autograd": root.grad,
        **_rates(growth.bytes_per_s, span),
        "items_per_step": _round(growth.per_step(growth.items_per_s, span)),
        "items_per_s": round(growth.items_per_s, 3),
        "bytes_per_item": round(growth.bytes_per_item),
        "graph_nodes_per_step": _round(growth.per_step(growth.nodes_per_s, span)),
        "graph_nodes": root.graph_nodes[-1] if root.graph_nodes else 0,
        "length": root.length[-1] if root.length else 0,
        "censuses": growth.observations,
        "process": _process_evidence(memory, free),
        "time_to_exhaust_s": round(exhaust, 1) if exhaust else None,
        "sites": [_site_dict(s) for s in root.sites],
        "allocated_at": [_line_dict(g) for g in allocated],
        **_span_evidence(span),
    }
    severity = WARNING
    if memory is not None and exhaust is not None and exhaust < ERROR_WITHIN_S:
        severity = ERROR
    return Finding(
        rule="memory-leak", severity=severity,
        title=_root_title(root, growth, span, on_device),
        message=_root_message(root, growth, span, memory, free, exhaust),
        evidence=evidence,
        location=_location(site, root),
        advice=_advice(root),
        confidence=0.9 if memory is not None else 0.75,
    )


def _root_title(root: HeapRoot, growth: RootGrowth, span: Span, on_device: bool) -> str:
    where = "GPU memory" if on_device else "Memory"
    if root.kind == "tensor" and root.grad:
        return f"`{root.path}` keeps every step's autograd graph alive"
    if root.kind == "lru_cache":
        return f"Memory leak: unbounded cache `{root.path}` keeps every result"
    if root.grad:
        return f"`{root.path}` keeps a tensor with its autograd graph every step"
    per = _per(growth.bytes_per_s, span)
    return f"{where} leak: `{root.path}` grows by {per}"


def _per(bytes_per_s: float, span: Span) -> str:
    per_step = span.per_step(bytes_per_s)
    if per_step is not None:
        return f"{human_bytes(per_step)} per step"
    return f"{human_bytes(bytes_per_s * 60)} per minute"


def _root_message(root: HeapRoot, growth: RootGrowth, span: Span, memory: Growth | None,
                  free: int | None, exhaust: float | None) -> str:
    what = _describe_root(root)
    parts = [f"{what} {_growth_phrase(root, growth, span)}"]
    if memory is not None:
        parts.append(_process_phrase(memory, span))
    if exhaust is not None and free:
        parts.append(f"At this rate the {human_bytes(free)} still free would be gone in "
                     f"{_duration(exhaust)}.")
    return " ".join(parts)


def _describe_root(root: HeapRoot) -> str:
    scope = {"local": f"local variable in {root.function}()", "global": "global",
             "attribute": "attribute", "class": "class attribute",
             "default": f"mutable default argument of {root.function}()",
             "closure": f"captured by {root.function}()",
             "cache": "functools.lru_cache"}.get(root.scope, root.scope)
    kind = {"lru_cache": "cache"}.get(root.kind, root.kind)
    return f"`{root.path}` ({scope}, {kind})"


def _growth_phrase(root: HeapRoot, growth: RootGrowth, span: Span) -> str:
    if root.kind == "tensor" and root.grad:
        per = growth.per_step(growth.nodes_per_s, span)
        rate = f"{per:.0f} nodes per step" if per is not None else \
            f"{growth.nodes_per_s:.0f} nodes/s"
        return (f"holds a tensor ({root.item}) whose autograd graph grew by {rate}, to "
                f"{root.graph_nodes[-1]:,} nodes: every step's graph is chained onto it and "
                f"nothing frees them.")
    per_step = growth.per_step(growth.items_per_s, span)
    items = f"{per_step:.1f} items per step" if per_step is not None else \
        f"{growth.items_per_s:.1f} items/s"
    text = f"grew by {items}"
    if root.kind == "lru_cache":
        size = f", ~{human_bytes(growth.bytes_per_item)} each" if growth.bytes_per_item else ""
        return (f"{text}{size}, to {root.length[-1]:,} entries, and never evicts "
                f"(maxsize=None).")
    if growth.bytes_per_item:
        text += f", ~{human_bytes(growth.bytes_per_item)} each"
    text += f" ({root.item})" if root.item else ""
    held = root.bytes[-1] + root.device_bytes[-1]
    text += f", to {root.length[-1]:,} items ({human_bytes(held)})."
    if root.grad:
        text += (" Its items are tensors with a grad_fn: each keeps its step's autograd graph "
                 "(and, unless backward() ran on it, the activations saved for it) alive.")
    return text


def _process_phrase(memory: Growth, span: Span) -> str:
    where = "GPU memory allocated by tensors" if memory.kind == "device" else \
        "The process's memory"
    basis = {"steps": f"over {span.steps:,} steps after warm-up",
             "loop": "while the hottest loop ran, after warm-up"}.get(
        span.basis, "after warm-up")
    return (f"{where} grew {human_bytes(memory.total)} {basis} "
            f"({human_bytes(memory.slope * 60)}/min"
            + (f", {human_bytes(span.per_step(memory.slope) or 0)}/step" if span.basis == "steps"
               else "") + ") and did not level off.")


def _advice(root: HeapRoot) -> str:
    name = root.path.rsplit(".", 1)[-1]
    if root.kind == "tensor" and root.grad:
        return (f"Accumulate a number, not the graph: `{name} += loss.item()` (or "
                f"`loss.detach()`). A tensor that still has its grad_fn links every step's "
                f"graph into one that is never freed.")
    if root.grad:
        return (f"Store `loss.item()` (or `t.detach()`, `t.detach().cpu()`) in `{name}`, not the "
                f"tensor itself: a tensor with a grad_fn keeps its whole autograd graph alive.")
    if root.kind == "lru_cache":
        return ("Give the cache a bound (`@functools.lru_cache(maxsize=N)`) or key it by "
                "something with few values; with maxsize=None every distinct argument is kept "
                "forever.")
    if root.scope == "default":
        return ("A mutable default argument is created once and shared by every call; use "
                "`None` as the default and create the list/dict inside the function.")
    if root.device_bytes and root.device_bytes[-1]:
        return (f"`{name}` keeps GPU tensors alive: keep only what you need "
                f"(`.item()` scalars, `.detach().cpu()`), or bound it "
                f"(`collections.deque(maxlen=N)`).")
    if root.kind == "dict":
        return (f"`{name}` gains an entry per step and nothing removes them: key it by something "
                f"bounded, evict old entries (`functools.lru_cache(maxsize=N)`, "
                f"`OrderedDict.popitem(last=False)`), or clear it each epoch.")
    if root.kind in ("tensor", "ndarray"):
        return (f"`{name}` is re-created bigger every step (concatenating onto itself): collect "
                f"the pieces in a list and concatenate once, or preallocate it.")
    return (f"`{name}` grows by one batch of data per step: keep only what you need (a running "
            f"sum, `.item()` scalars), write it out as you go, or bound it with "
            f"`collections.deque(maxlen=N)`.")


def _big_buffers(run: Run, span: Span, on_device: bool) -> list[HeapRoot]:
    """Large arrays/tensors alive through the span whose size did not change."""
    found = []
    for root in run.heap.roots:
        sizes = [d if on_device else b for t, b, d in zip(root.t, root.bytes, root.device_bytes)
                 if span.start <= t <= span.end]
        if root.kind in ("ndarray", "tensor") and len(sizes) >= 2 and min(sizes) == max(sizes) \
                and sizes[0] > 0:
            found.append(root)
    return found


def _unexplained_finding(run: Run, memory: Growth, free: int | None,
                         lines: list[LineGrowth], buffers: list[HeapRoot]) -> Finding:
    on_device = memory.kind == "device"
    kind_lines = [g for g in lines if _window_kind(run, g) == ("cuda-history" if on_device
                                                               else "tracemalloc")]
    top = kind_lines[0] if kind_lines else None
    exhaust = memory.exhaust_s(free)
    span = memory.span
    where = "GPU memory allocated by tensors" if on_device else "Process memory"
    message = _process_phrase(memory, span)
    if top is not None:
        message += (f" The allocations that stayed come mostly from line {top.line.line} "
                    f"(`{top.line.text}`), {human_bytes(top.bytes_per_s * 60)}/min while traced.")
    else:
        message += (" No variable of your code that dldoctor could see explains it (it may live "
                    "in a library, a closure or native code).")
    if exhaust is not None and free:
        message += f" At this rate the {human_bytes(free)} still free would be gone in " \
                   f"{_duration(exhaust)}."
    severity = ERROR if exhaust is not None and exhaust < ERROR_WITHIN_S else WARNING
    held = sum((b.device_bytes if on_device else b.bytes)[-1] for b in buffers)
    if top is None and memory.total <= held:
        severity = INFO  # likely first touches of pages of big buffers allocated earlier
        names = ", ".join(f"`{b.path}`" for b in buffers[:3])
        message += (f" It is no larger than the big buffers allocated before ({names}, "
                    f"{human_bytes(held)}): their pages may just be touched for the first time, "
                    f"which stops once they have all been written.")
    elif top is None and memory.total < 4 * (8 << 20):
        severity = INFO
    return Finding(
        rule="memory-leak", severity=severity,
        title=f"{where} grows by {_per(memory.slope, span)} and is not given back",
        message=message,
        evidence={"memory": memory.kind, **_rates(memory.slope, span),
                  "process": _process_evidence(memory, free),
                  "time_to_exhaust_s": round(exhaust, 1) if exhaust else None,
                  "allocated_at": [_line_dict(g) for g in kind_lines[:5]],
                  **_span_evidence(span)},
        location=Location(top.line.file, top.line.line, top.line.function) if top else None,
        advice=("Rerun with `--memory=trace` to trace every Python/NumPy allocation with its "
                "line (or `--memory=native` with memray for native allocations); look for "
                "containers that gain an entry per step, caches without a bound, tensors kept "
                "with their graph." if top is None else
                "Keep only what you need from each step at that line (scalars, summaries), or "
                "bound the container that keeps it."),
        confidence=0.7 if top is not None else 0.5,
    )


def _window_kind(run: Run, growth: LineGrowth) -> str:
    for window in run.heap.windows:
        if window.index == growth.line.window:
            return window.kind
    return "tracemalloc"


def _rates(bytes_per_s: float, span: Span) -> dict[str, float | None]:
    return {"growth_bytes_per_s": round(bytes_per_s, 1),
            "growth_bytes_per_min": round(bytes_per_s * 60, 1),
            "growth_bytes_per_step": _round(span.per_step(bytes_per_s))}


def _process_evidence(memory: Growth | None, free: int | None) -> dict[str, object] | None:
    if memory is None:
        return None
    return {"kind": memory.kind, "grown_bytes": round(memory.total),
            "bytes_per_s": round(memory.slope, 1), "start_bytes": round(memory.base),
            "rising_share": round(memory.rising, 3), "late_ratio": round(memory.late, 3),
            "noise_bytes": round(memory.noise), "free_bytes": free}


def _span_evidence(span: Span) -> dict[str, object]:
    return {"basis": span.basis, "span_s": round(span.seconds, 3), "steps": span.steps,
            "span": [round(span.start, 3), round(span.end, 3)]}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _site_dict(site: HeapSite) -> dict[str, object]:
    return {"file": site.file, "line": site.line, "function": site.function, "text": site.text}


def _line_dict(growth: LineGrowth) -> dict[str, object]:
    line = growth.line
    return {"file": line.file, "line": line.line, "function": line.function, "text": line.text,
            "bytes_per_s": round(growth.bytes_per_s, 1), "grown_bytes": growth.grown}


def _location(site: HeapSite | None, root: HeapRoot) -> Location | None:
    if site is not None:
        return Location(site.file, site.line, site.function)
    if root.line:
        return Location(root.file, root.line, root.function)
    return None


def _duration(seconds: float) -> str:
    if seconds < 120:
        return human_seconds(seconds)
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


# ---------------------------------------------------------------------- no-grad-inference

QUIET_MIN_S = 0.5
QUIET_TRAINING_FACTOR = 3.0  # x the training cadence (step or backward interval)


class NoGradInference:
    """Forward passes that record autograd graphs nobody back-propagates."""

    rule = "no-grad-inference"
    description = "evaluation/inference runs with autograd recording"

    def analyze(self, run: Run) -> list[Finding]:
        """Return one finding per code location seen holding graphs while no backward ran."""
        heap = run.heap
        if not heap.inference or not heap.censuses:
            return []
        quiet_times = _quiet_censuses(heap.censuses, heap.backward, heap.backward_total)
        steps = step_stats(run)
        cadence = max(_backward_interval(heap.censuses, heap.backward),
                      steps.median_s if steps is not None else 0.0)
        needed = max(QUIET_MIN_S, QUIET_TRAINING_FACTOR * cadence)
        count_at = dict(zip(heap.censuses, (c or 0 for c in heap.backward)))
        groups: dict[tuple[str, str, str, int], list[GradObservation]] = {}
        for obs in heap.inference:  # same backward count: no backward() between them
            if obs.t in quiet_times:
                key = (obs.file, obs.function, obs.variable, count_at.get(obs.t, -1))
                groups.setdefault(key, []).append(obs)
        findings = []
        for observations in groups.values():
            times = sorted({o.t for o in observations})
            if len(times) >= 2 and times[-1] - times[0] >= needed:
                findings.append(self._finding(observations, times, heap.backward_total or 0))
        return findings

    def _finding(self, observations: list[GradObservation], times: list[float],
                 backward_total: int) -> Finding:
        obs = observations[-1]
        site = obs.sites[0] if obs.sites else None
        location = Location(site.file, site.line, site.function or obs.function) if site else \
            Location(obs.file, obs.line, obs.function)
        seconds = times[-1] - times[0]
        never = "no backward() ran in the whole run" if not backward_total else \
            f"no backward() ran for {human_seconds(seconds)}"
        code = f" (`{site.text}`)" if site is not None and site.text else ""
        return Finding(
            rule=self.rule, severity=WARNING,
            title=f"Inference in {obs.function}() records autograd graphs it never uses",
            message=(f"`{obs.variable}`{code} held a tensor with grad_fn={obs.grad_fn} in "
                     f"{len(times)} censuses over {human_seconds(seconds)} while {never}: "
                     f"this code runs with autograd on, so every forward pass builds a graph and "
                     f"keeps the activations it would need for a backward pass — memory and "
                     f"time spent for nothing."),
            evidence={"variable": obs.variable, "grad_fn": obs.grad_fn,
                      "function": obs.function, "censuses": len(times),
                      "seconds": round(seconds, 3), "backward_calls": backward_total,
                      "seen_at": {"file": obs.file, "line": obs.line},
                      "sites": [_site_dict(s) for s in obs.sites]},
            location=location,
            advice=(f"Run it under `with torch.no_grad():` (or `torch.inference_mode()`), e.g. "
                    f"decorate `{obs.function.rsplit('.', 1)[-1]}` with `@torch.no_grad()`. "
                    f"`model.eval()` alone does not turn autograd off."),
            confidence=0.9 if not backward_total else 0.75,
        )


def _quiet_censuses(times: list[float], backward: list[int | None],
                    total: int | None) -> set[float]:
    """Census times around which (previous census to next census) no backward() ran."""
    counts = [c or 0 for c in backward] + [total or 0]
    quiet = set()
    for i, t in enumerate(times):
        before = counts[i - 1] if i > 0 else 0
        after = counts[i + 1] if i + 1 < len(counts) else counts[-1]
        if after == before:
            quiet.add(t)
    return quiet


def _backward_interval(times: list[float], backward: list[int | None]) -> float:
    """Typical seconds between backward() calls while they happened (0 if fewer than two)."""
    counts = [c or 0 for c in backward]
    changes = [i for i in range(1, len(counts)) if counts[i] > counts[i - 1]]
    if not changes:
        return 0.0
    first = changes[0] - 1
    calls = counts[changes[-1]] - counts[first]
    seconds = times[changes[-1]] - times[first]
    return seconds / calls if calls > 0 else 0.0


RULES: list[MemoryLeak | NoGradInference] = [MemoryLeak(), NoGradInference()]
