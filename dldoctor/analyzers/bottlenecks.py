"""``dataloader-bottleneck`` and ``gpu-underutilization``: what the training step waits for.

The input pipeline is judged from the step breakdown (time in ``DataLoader.__next__`` as a share
of step time) and explained with the DataLoader's settings and the hottest lines of the user's
Dataset/collate code: sampled in the main process when ``num_workers=0``, in the followed worker
processes otherwise. GPU idleness is judged from the supervisor's NVML timeline and explained
with what the main thread was doing while the GPU sat idle."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter

from dldoctor.collectors.frames import classify
from dldoctor.findings import INFO, WARNING, Finding, Location
from dldoctor.run import USER, GpuDevice, LoaderInfo, Run
from dldoctor.stats import (
    INPUT_PIPELINE,
    LineStat,
    display_path,
    input_pipeline_lines,
    phase_shares,
    source_text,
    step_window,
)

MIN_STEPS = 10
DATA_WARN_SHARE = 0.5  # of step time in the input pipeline: it dominates
DATA_INFO_SHARE = 0.3
MIN_DATA_S = 0.05  # seconds: below this the pipeline is not worth a finding
IDLE_UTIL_PCT = 10.0  # a sample at or below this utilisation counts as idle
IDLE_WARN_SHARE = 0.5
IDLE_INFO_SHARE = 0.3
MIN_GPU_SAMPLES = 10


class DataLoaderBottleneck:
    """The input pipeline takes most of each training step."""

    rule = "dataloader-bottleneck"
    description = "the input pipeline dominates step time"

    def analyze(self, run: Run) -> list[Finding]:
        """Return one finding when data loading takes a large share of step time."""
        breakdown = run.breakdown
        if breakdown.steps < MIN_STEPS or "data" not in breakdown.phases:
            return []
        share = phase_shares(breakdown)["data"]
        data_s = breakdown.totals_s[breakdown.phases.index("data")]
        if share < DATA_INFO_SHARE or data_s < MIN_DATA_S:
            return []
        loader = max(breakdown.loaders, key=lambda x: x.data_s, default=None)
        lines = _dataset_lines(run, loader)
        return [self._finding(run, loader, lines, share, data_s)]

    def _finding(self, run: Run, loader: LoaderInfo | None, lines: list[LineStat], share: float,
                 data_s: float) -> Finding:
        steps = run.breakdown.steps
        where = _location(loader, lines)
        settings = (f" (num_workers={loader.num_workers}, pin_memory={loader.pin_memory}, "
                    f"batch_size={loader.batch_size})" if loader else "")
        hottest = (f" The hottest input-pipeline line is "
                   f"{display_path(lines[0].file, run.meta.cwd)}:{lines[0].line} "
                   f"({lines[0].cpu_s:.2f} s CPU).") if lines else ""
        return Finding(
            rule=self.rule, severity=WARNING if share >= DATA_WARN_SHARE else INFO,
            title=f"Input pipeline takes {share:.0%} of step time",
            message=(f"The training loop waited {data_s:.2f} s for batches over {steps} steps "
                     f"({1000 * data_s / steps:.1f} ms per step, {share:.0%} of step time)"
                     f"{settings}.{hottest}"),
            evidence={"data_share": round(share, 4), "data_s": round(data_s, 4), "steps": steps,
                      "data_ms_per_step": round(1000 * data_s / steps, 3),
                      "loader": _loader_evidence(loader),
                      "hot_lines": [{"file": s.file, "line": s.line, "function": s.function,
                                     "cpu_s": round(s.cpu_s, 3), "samples": s.wall,
                                     "text": source_text(run, s.file, s.line)} for s in lines[:5]],
                      "worker_processes": run.workers.processes,
                      "worker_cpu_s": round(run.workers.cpu_s, 3),
                      "cpu_count": run.environment.cpu_count},
            location=where,
            advice=_advice(run, loader, lines),
            confidence=round(min(1.0, 0.4 + share), 2),
        )


def _dataset_lines(run: Run, loader: LoaderInfo | None) -> list[LineStat]:
    """Return the hottest user lines of the input pipeline (workers' when they did the work)."""
    workers = loader is not None and loader.num_workers > 0 and bool(run.workers.samples.counts)
    return input_pipeline_lines(run, workers)[:10]


def _location(loader: LoaderInfo | None, lines: list[LineStat]) -> Location | None:
    if lines:
        return Location(lines[0].file, lines[0].line, lines[0].function)
    if loader is None:
        return None
    if loader.dataset_file and classify(loader.dataset_file) == USER:
        return Location(loader.dataset_file, loader.dataset_line, f"{loader.dataset}.__getitem__")
    if loader.collate_file and classify(loader.collate_file) == USER:
        return Location(loader.collate_file, loader.collate_line, loader.collate)
    if loader.file:
        return Location(loader.file, loader.line, loader.function)
    return None


def _advice(run: Run, loader: LoaderInfo | None, lines: list[LineStat]) -> str:
    cores = max(1, run.environment.cpu_count)
    parts = []
    if loader is not None and loader.num_workers == 0:
        workers = max(1, min(cores - 1 if cores > 2 else cores, 8))
        parts.append(f"Prepare batches in parallel with the training step: "
                     f"`DataLoader(..., num_workers={workers}, persistent_workers=True)` "
                     f"(this machine has {cores} CPU cores).")
    elif loader is not None:
        parts.append(f"The {loader.num_workers} worker(s) cannot keep up: make each sample "
                     f"cheaper (or raise num_workers, up to the {cores} cores).")
    if lines:
        parts.append("Vectorise or precompute the per-sample work in the hottest Dataset/collate "
                     "lines (transform whole batches with array ops, cache decoded data, move "
                     "augmentation to the GPU).")
    if loader is not None and run.breakdown.cuda and not loader.pin_memory:
        parts.append("Add `pin_memory=True` and copy with `.to(device, non_blocking=True)`.")
    if loader is not None and loader.num_workers > 0 and not loader.persistent_workers:
        parts.append("Keep workers alive across epochs with `persistent_workers=True`.")
    return " ".join(parts) or "Make the input pipeline cheaper than the training step."


def _loader_evidence(loader: LoaderInfo | None) -> dict[str, object] | None:
    if loader is None:
        return None
    return {"dataset": loader.dataset, "num_workers": loader.num_workers,
            "pin_memory": loader.pin_memory, "batch_size": loader.batch_size,
            "persistent_workers": loader.persistent_workers, "start_method": loader.start_method,
            "batches": loader.batches, "data_s": round(loader.data_s, 4),
            "iterated_at": f"{loader.file}:{loader.line}" if loader.file else ""}


class GpuUnderutilization:
    """The GPU the target used sat idle for much of the training window."""

    rule = "gpu-underutilization"
    description = "the GPU sits idle for a large share of the run"

    def analyze(self, run: Run) -> list[Finding]:
        """Return one finding per used GPU that was idle for a large share of the run."""
        if not run.gpu.available:
            return []
        start, end = step_window(run)
        findings = []
        for device in _used_devices(run):
            rows = [r for r in device.samples if start <= r[0] <= end]
            if len(rows) < MIN_GPU_SAMPLES:
                continue
            idle = [r for r in rows if r[1] <= IDLE_UTIL_PCT]
            share = len(idle) / len(rows)
            if share >= IDLE_INFO_SHARE:
                findings.append(self._finding(run, device, rows, idle, share))
        return findings

    def _finding(self, run: Run, device: GpuDevice, rows: list[list[float]],
                 idle: list[list[float]], share: float) -> Finding:
        mean = sum(r[1] for r in rows) / len(rows)
        host = host_activity(run, [r[0] for r in idle], run.gpu.interval_s * device.stride)
        doing = ", ".join(f"{name} {part:.0%}" for name, part in host[:3])
        top_line = next(((n, p) for n, p in host if ":" in n), None)
        location = None
        if top_line is not None:
            file, _, line = top_line[0].rpartition(":")
            location = Location(file, int(line), "")
        return Finding(
            rule=self.rule, severity=WARNING if share >= IDLE_WARN_SHARE else INFO,
            title=f"GPU {device.index} idle {share:.0%} of the time",
            message=(f"GPU {device.index} ({device.name}) was idle (≤{IDLE_UTIL_PCT:.0f}% "
                     f"utilisation) in {share:.0%} of {len(rows)} NVML samples while training "
                     f"ran (mean utilisation {mean:.0f}%)."
                     + (f" Meanwhile the host was in: {doing}." if doing else "")),
            evidence={"device": device.index, "name": device.name, "idle_share": round(share, 4),
                      "mean_util_pct": round(mean, 1), "samples": len(rows),
                      "idle_threshold_pct": IDLE_UTIL_PCT,
                      "host_during_idle": [{"what": n, "share": round(p, 4)} for n, p in host[:5]],
                      "phase_shares": {k: round(v, 4) for k, v in
                                       phase_shares(run.breakdown).items()}},
            location=location,
            advice=("Feed the GPU faster than it computes: see the input-pipeline and sync "
                    "findings; use DataLoader workers with pin_memory=True, avoid per-step "
                    "`.item()`/`.cpu()`, raise the batch size, and consider CUDA graphs or "
                    "torch.compile for many small kernels."),
            confidence=0.8,
        )


def _used_devices(run: Run) -> list[GpuDevice]:
    """Return the GPUs the target ran on (NVML saw its process there), else, when the target
    used CUDA but NVML could not match the process (containers), the GPUs that were busy."""
    devices = run.gpu.devices
    used = [d for d in devices if d.used]
    if used or not run.breakdown.cuda:
        return used
    return [d for d in devices if any(r[1] > IDLE_UTIL_PCT for r in d.samples)]


def host_activity(run: Run, times: list[float], width: float) -> list[tuple[str, float]]:
    """Return what the main thread was doing at ``times`` (within ``width`` seconds), as
    (``"input pipeline"`` or the innermost user ``file:line``, share), most frequent first."""
    main = next((i for i, t in enumerate(run.samples.threads) if t.main), None)
    if main is None or not times:
        return []
    ordered = sorted(times)
    frames, tally = run.samples.frames, Counter[str]()
    for t, thread, stack in run.samples.timeline:
        if int(thread) != main or not _near(ordered, float(t), width):
            continue
        flat = run.samples.stacks[int(stack)]
        files = [frames[flat[p]].file for p in range(0, len(flat), 2)]
        if any(INPUT_PIPELINE in f for f in files):
            tally["input pipeline"] += 1
            continue
        user = [(frames[flat[p]].file, flat[p + 1]) for p in range(len(flat) - 2, -1, -2)
                if frames[flat[p]].kind == USER]
        tally[f"{user[0][0]}:{user[0][1]}" if user else "library code"] += 1
    total = sum(tally.values())
    return [(name, n / total) for name, n in tally.most_common()] if total else []


def _near(ordered: list[float], t: float, width: float) -> bool:
    i = bisect_left(ordered, t - width / 2)
    return i < len(ordered) and ordered[i] <= t + width / 2


RULES: list[DataLoaderBottleneck | GpuUnderutilization] = [DataLoaderBottleneck(),
                                                           GpuUnderutilization()]
