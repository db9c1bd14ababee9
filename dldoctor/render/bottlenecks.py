"""The step-breakdown and GPU view shared by the HTML and trace renderers: per-phase totals,
the stacked per-step chart data, DataLoaders, sync/transfer sites, the NVML timeline, and the
same as Chrome trace events (phase spans per kept step, a GPU utilisation counter)."""

from __future__ import annotations

from typing import Any

from dldoctor.run import Run, StepBreakdown
from dldoctor.stats import display_path, input_pipeline_lines, phase_shares

PHASE_COLORS = {"data": "#c62828", "forward": "#3b5bdb", "backward": "#7048e8",
                "optimizer": "#2e7d32", "transfer": "#e67700", "sync": "#d6336c",
                "other": "#adb5bd"}
CHART_BARS = 400
SITE_ROWS = 15
PHASE_TID = 200_000  # trace track for the step phases
GPU_POINTS = 2_000


def _where(run: Run, file: str, line: int) -> str:
    return f"{display_path(file, run.meta.cwd)}:{line}" if file else ""


def _chart(breakdown: StepBreakdown) -> dict[str, Any]:
    """Return at most ``CHART_BARS`` evenly thinned per-step rows for the stacked chart."""
    rows = breakdown.rows
    every = max(1, -(-len(rows) // CHART_BARS))
    kept = rows[::every]
    stride = max(1, breakdown.stride) * every
    return {"phases": breakdown.phases,
            "colors": [PHASE_COLORS.get(p, "#999") for p in breakdown.phases],
            "step": [(i + 1) * stride for i in range(len(kept))],
            "seconds": [row[2:] for row in kept]}


def _sites(run: Run) -> list[dict[str, Any]]:
    breakdown = run.breakdown
    rows: list[dict[str, Any]] = []
    for sync in breakdown.syncs:
        rows.append({"what": f"sync: {sync.kind}", "where": _where(run, sync.file, sync.line),
                     "function": sync.function, "steps": sync.steps, "calls": sync.calls,
                     "time_s": sync.time_s, "bytes": None})
    for copy in breakdown.transfers:
        label = "copy to device" if copy.kind == "h2d" else "device move (no-op here)"
        rows.append({"what": label + (", same tensor" if copy.same_data * 2 >= copy.calls else ""),
                     "where": _where(run, copy.file, copy.line), "function": copy.function,
                     "steps": copy.steps, "calls": copy.calls, "time_s": copy.time_s,
                     "bytes": copy.bytes})
    rows.sort(key=lambda r: (-int(r["steps"]), -float(r["time_s"])))
    return rows[:SITE_ROWS]


def _loaders(run: Run) -> list[dict[str, Any]]:
    return [{"dataset": x.dataset, "num_workers": x.num_workers, "pin_memory": x.pin_memory,
             "batch_size": x.batch_size, "persistent_workers": x.persistent_workers,
             "batches": x.batches, "data_s": x.data_s, "where": _where(run, x.file, x.line)}
            for x in run.breakdown.loaders]


def _pipeline_lines(run: Run) -> list[dict[str, Any]]:
    """Return the hottest Dataset/collate lines, in the workers and in the main process."""
    text = {(s.file, s.line): s.text for s in run.sources}
    rows = []
    for workers in (True, False):
        for stat in input_pipeline_lines(run, workers)[:SITE_ROWS // 2]:
            rows.append({"where": _where(run, stat.file, stat.line), "function": stat.function,
                         "process": "worker" if workers else "main", "cpu_s": stat.cpu_s,
                         "text": text.get((stat.file, stat.line), "")})
    return rows


def _gpu(run: Run) -> dict[str, Any]:
    devices = []
    for device in run.gpu.devices:
        every = max(1, -(-len(device.samples) // GPU_POINTS))
        points = [[row[0], row[1]] for row in device.samples[::every]]
        devices.append({"index": device.index, "name": device.name, "used": device.used,
                        "points": points})
    return {"available": run.gpu.available, "reason": run.gpu.reason, "devices": devices}


def breakdown_view(run: Run) -> dict[str, Any]:
    """Return what the HTML shows of the step breakdown and the GPU timeline."""
    breakdown = run.breakdown
    view: dict[str, Any] = {"available": breakdown.available and breakdown.steps > 0,
                            "reason": breakdown.reason or "no training steps were marked",
                            "gpu": _gpu(run)}
    if not view["available"]:
        return view
    shares = phase_shares(breakdown)
    view.update({
        "steps": breakdown.steps, "source": breakdown.source, "cuda": breakdown.cuda,
        "phases": [{"name": name, "seconds": seconds, "share": shares[name],
                    "per_step_ms": 1000 * seconds / breakdown.steps,
                    "color": PHASE_COLORS.get(name, "#999")}
                   for name, seconds in zip(breakdown.phases, breakdown.totals_s)],
        "chart": _chart(breakdown), "loaders": _loaders(run), "sites": _sites(run),
        "worker_processes": run.workers.processes, "worker_cpu_s": run.workers.cpu_s,
        "pipeline_lines": _pipeline_lines(run),
    })
    return view


def breakdown_events(run: Run, pid: int) -> list[dict[str, Any]]:
    """Return trace events: each kept step's phases laid end to end on a "step phases" track
    (their order inside a step is approximate), and a GPU utilisation counter per device."""
    events: list[dict[str, Any]] = []
    breakdown = run.breakdown
    if breakdown.rows:
        events.append({"ph": "M", "pid": pid, "tid": PHASE_TID, "name": "thread_name",
                       "args": {"name": "step phases"}})
    for row in breakdown.rows:
        start = row[0] - row[1]
        for name, seconds in zip(breakdown.phases, row[2:]):
            if seconds > 0:
                events.append({"ph": "X", "pid": pid, "tid": PHASE_TID, "name": name,
                               "cat": "phase", "ts": round(start * 1e6, 1),
                               "dur": round(seconds * 1e6, 1)})
                start += seconds
    for device in run.gpu.devices:
        events.extend({"ph": "C", "pid": pid, "name": f"GPU {device.index} utilisation %",
                       "ts": round(row[0] * 1e6, 1), "args": {"util": row[1]}}
                      for row in device.samples)
    return events
