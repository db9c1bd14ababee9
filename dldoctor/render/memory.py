"""The memory view of the HTML report: growth figures with their trend lines (host and CUDA),
the variables that grew, the allocating lines, the tensor census. Figures come from
``dldoctor.growth`` (the same ones the ``memory-leak`` rule uses); the template only lays out."""

from __future__ import annotations

from typing import Any

from dldoctor.growth import (
    Growth,
    Span,
    allocation_growths,
    analysis_span,
    device_growth,
    host_growth,
    root_growths,
)
from dldoctor.run import Run
from dldoctor.stats import display_path
from dldoctor.units import human_bytes, human_seconds

CHART_POINTS = 600
ROWS = 10


def memory_view(run: Run) -> dict[str, Any]:
    """Return what the HTML's memory section shows beyond the RSS chart."""
    heap = run.heap
    span = analysis_span(run)
    host, device = host_growth(run, span), device_growth(run, span)
    return {
        "available": heap.mode != "off" and bool(heap.censuses or heap.device),
        "mode": heap.mode,
        "notes": heap.notes,
        "cost": human_seconds(heap.cost_s) if heap.cost_s else "",
        "growth": [_growth_row(g, span, free) for g, free in
                   ((host, heap.available), (device, heap.device_free)) if g is not None],
        "chart": {"host": _host_chart(run, host), "device": _device_chart(run, device)},
        "roots": _roots(run, span),
        "allocations": _allocations(run),
        "tensors": [{"t": f"{c.t:.1f} s", "count": c.count, "bytes": human_bytes(c.bytes),
                     "device": human_bytes(c.device_bytes), "with_grad": c.with_grad}
                    for c in heap.tensors[-5:]],
    }


def _growth_row(g: Growth, span: Span, free: int | None) -> dict[str, Any]:
    per_step = span.per_step(g.slope)
    exhaust = g.exhaust_s(free) if g.significant else None
    return {
        "kind": "GPU (allocated by tensors)" if g.kind == "device" else "host (RSS)",
        "significant": g.significant, "reason": g.reason,
        "per_step": human_bytes(per_step) if per_step is not None else "",
        "per_min": human_bytes(g.slope * 60), "total": human_bytes(g.total),
        "span": f"{span.start:.1f}–{span.end:.1f} s",
        "basis": {"steps": f"{span.steps:,} steps after warm-up",
                  "loop": "the hottest loop, after warm-up"}.get(span.basis, "after warm-up"),
        "exhaust": _hours(exhaust) if exhaust else "",
    }


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def _trend(g: Growth | None) -> dict[str, Any] | None:
    if g is None:
        return None
    start, end = g.span.start, g.span.end
    return {"floors": g.floors, "line": [[start, g.at(start)], [end, g.at(end)]],
            "significant": g.significant}


def _thin(rows: list[list[float]]) -> list[list[float]]:
    step = max(1, len(rows) // CHART_POINTS + 1)
    return rows[::step]


def _host_chart(run: Run, g: Growth | None) -> dict[str, Any]:
    points = _thin([[p.t, p.rss] for p in run.memory.points])
    return {"rss": points, "trend": _trend(g)}


def _device_chart(run: Run, g: Growth | None) -> dict[str, Any] | None:
    rows = run.heap.device
    if not rows:
        return None
    thin = _thin(rows)
    return {"allocated": [[r[0], r[1]] for r in thin], "reserved": [[r[0], r[2]] for r in thin],
            "trend": _trend(g)}


def _roots(run: Run, span: Span) -> list[dict[str, Any]]:
    growths = sorted(root_growths(run, span), key=lambda g: -(g.bytes_per_s + g.nodes_per_s))
    rows = []
    for g in growths[:ROWS]:
        root, site = g.root, (g.root.sites[0] if g.root.sites else None)
        per_step = g.per_step(g.items_per_s, span)
        rows.append({
            "path": root.path, "scope": root.scope, "kind": root.kind, "item": root.item,
            "length": root.length[-1] if root.length else 0,
            "size": human_bytes((root.bytes[-1] + root.device_bytes[-1]) if root.bytes else 0),
            "growth": (f"{g.nodes_per_s:.0f} graph nodes/s" if root.kind == "tensor" and root.grad
                       else f"{human_bytes(g.bytes_per_s * 60)}/min"),
            "added": f"{per_step:.2f}/step" if per_step is not None else
            f"{g.items_per_s:.1f}/s",
            "steady": g.steady,
            "where": f"{display_path(site.file, run.meta.cwd)}:{site.line}" if site else "",
            "text": site.text if site else "",
        })
    return rows


def _allocations(run: Run) -> list[dict[str, Any]]:
    kinds = {w.index: w.kind for w in run.heap.windows}
    return [{"where": f"{display_path(g.line.file, run.meta.cwd)}:{g.line.line}",
             "function": g.line.function, "text": g.line.text,
             "growth": f"{human_bytes(g.bytes_per_s * 60)}/min", "grown": human_bytes(g.grown),
             "tracer": kinds.get(g.line.window, "tracemalloc")}
            for g in allocation_growths(run)[:ROWS]]


def device_memory_events(run: Run, pid: int) -> list[dict[str, Any]]:
    """Chrome trace counter events of the CUDA caching allocator (allocated/reserved MiB)."""
    return [{"ph": "C", "pid": pid, "name": "cuda memory", "ts": round(row[0] * 1e6, 1),
             "args": {"allocated_mib": round(row[1] / 2**20, 2),
                      "reserved_mib": round(row[2] / 2**20, 2)}}
            for row in run.heap.device]
