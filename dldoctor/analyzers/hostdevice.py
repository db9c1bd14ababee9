"""``host-device-sync`` and ``host-device-transfer``: what the training step makes the host wait
for, and what it copies to the device again and again.

Both read the call sites the ``torch-steps`` collector counted *inside steps* (between step
marks: a final evaluation or a print after training is never counted). A pattern qualifies when
it happens in at least half of the steps: logging every N steps stays clean.

On CUDA the collector timed the calls (a sync's wall time is the stall). On CPU-only torch no
sync or copy really happens, so the same pattern is reported as a GPU-era hazard at info
severity."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from dldoctor.findings import INFO, WARNING, Finding, Location
from dldoctor.run import Run, StepBreakdown, SyncSite, TransferSite
from dldoctor.stats import breakdown_share, source_text

MIN_STEPS = 5
EVERY_STEP = 0.5  # share of steps in which the pattern occurs
SYNC_WARN_SHARE = 0.02  # of step time spent stalled (CUDA)
SAME_DATA = 0.5  # share of a site's copies that re-send the tensor sent before
PAGEABLE_WARN_SHARE = 0.10  # of step time in copies from pageable memory (CUDA)
PAGEABLE_INFO_SHARE = 0.03
SAME_WARN_SHARE = 0.02
MIB = 2**20

SYNC_ADVICE = {
    "item": "keep the value on the device (`total += loss.detach()`) and call `.item()` every N "
            "steps",
    "float": "`float(t)` is `.item()`: accumulate on the device and convert every N steps",
    "int": "`int(t)` is `.item()`: accumulate on the device and convert every N steps",
    "format": "formatting a tensor (`f\"{loss:.3f}\"`) copies it to the host: format every N "
              "steps",
    "repr": "printing or logging a tensor copies it to the host: log every N steps",
    "bool": "`if tensor:` / `while tensor:` needs the value on the host: use `torch.where`, "
            "masks, or check every N steps",
    "cpu": "move results to the host every N steps, or accumulate them on the device",
    "to-cpu": "move results to the host every N steps, or accumulate them on the device",
    "numpy": "`.numpy()` needs host memory: accumulate on the device, convert every N steps",
    "tolist": "`.tolist()` copies to the host: accumulate on the device, convert every N steps",
    "array": "`np.asarray(t)` copies to the host: accumulate on the device, convert every N steps",
    "synchronize": "drop `torch.cuda.synchronize()` from the loop; time with "
                   "`torch.cuda.Event(enable_timing=True)` or the profiler",
}


@dataclass(frozen=True)
class _Line:
    """Sites of one source line, merged."""

    file: str
    line: int
    function: str
    kinds: list[str]
    steps: int
    calls: int
    time_s: float


def _by_line(sites: list[SyncSite]) -> list[_Line]:
    groups: dict[tuple[str, int], list[SyncSite]] = defaultdict(list)
    for site in sites:
        groups[(site.file, site.line)].append(site)
    return [_Line(file, line, group[0].function, sorted({s.kind for s in group}),
                  max(s.steps for s in group), sum(s.calls for s in group),
                  sum(s.time_s for s in group))
            for (file, line), group in groups.items()]


def _every_step(breakdown: StepBreakdown, steps: int) -> bool:
    return breakdown.steps >= MIN_STEPS and steps >= EVERY_STEP * breakdown.steps


class HostDeviceSync:
    """A device-to-host sync (``.item()``, ``.cpu()``, printing a tensor...) in every step."""

    rule = "host-device-sync"
    description = "the training loop forces a device-to-host sync every step"

    def analyze(self, run: Run) -> list[Finding]:
        """Return one finding per source line that syncs in most steps."""
        breakdown = run.breakdown
        return [self._finding(run, breakdown, line) for line in _by_line(breakdown.syncs)
                if _every_step(breakdown, line.steps)]

    def _finding(self, run: Run, breakdown: StepBreakdown, line: _Line) -> Finding:
        stall_share = breakdown_share(breakdown, line.time_s)
        per_step = line.calls / breakdown.steps
        calls = " / ".join(f"`{_call_name(k)}`" for k in line.kinds)
        if breakdown.cuda:
            severity = WARNING if stall_share >= SYNC_WARN_SHARE else INFO
            cost = (f"The host waited {line.time_s:.3f} s for the GPU there "
                    f"({stall_share:.1%} of step time).")
        else:
            severity = INFO
            cost = ("This run used CPU-only torch, so nothing stalled here; on a GPU each call "
                    "would block the host until all queued kernels finish.")
        text = source_text(run, line.file, line.line)
        return Finding(
            rule=self.rule, severity=severity,
            title=f"{calls} syncs the device in {line.steps} of {breakdown.steps} steps",
            message=(f"Line {line.line}{f' (`{text}`)' if text else ''} calls {calls} "
                     f"{per_step:.1f}× per step, in {line.steps} of {breakdown.steps} training "
                     f"steps: each call copies a result to the host and makes the host wait "
                     f"for the device. {cost}"),
            evidence={"kinds": line.kinds, "steps": breakdown.steps, "steps_with_sync": line.steps,
                      "calls": line.calls, "calls_per_step": round(per_step, 3),
                      "stall_s": round(line.time_s, 6), "stall_share": round(stall_share, 4),
                      "cuda": breakdown.cuda, "measured": breakdown.cuda},
            location=Location(line.file, line.line, line.function),
            advice="; ".join(dict.fromkeys(SYNC_ADVICE.get(k, SYNC_ADVICE["item"])
                                           for k in line.kinds)) + ".",
            confidence=0.9 if breakdown.cuda else 0.6,
        )


def _call_name(kind: str) -> str:
    return {"item": ".item()", "cpu": ".cpu()", "numpy": ".numpy()", "tolist": ".tolist()",
            "float": "float(tensor)", "int": "int(tensor)", "bool": "bool(tensor)",
            "format": "format(tensor)", "repr": "print/repr(tensor)", "array": "np.asarray(tensor)",
            "to-cpu": ".to('cpu')", "synchronize": "torch.cuda.synchronize()"}.get(kind, kind)


class HostDeviceTransfer:
    """The same tensor, or pageable memory, copied host-to-device every step."""

    rule = "host-device-transfer"
    description = "the same or pageable data is copied host-to-device every step"

    def analyze(self, run: Run) -> list[Finding]:
        """Return at most one finding per call site: same data first, then pageable copies."""
        breakdown = run.breakdown
        findings = []
        for site in breakdown.transfers:
            if not _every_step(breakdown, site.steps) or not site.calls:
                continue
            if site.same_data >= SAME_DATA * site.calls:
                if site.kind == "move" and _reassigned(source_text(run, site.file, site.line)):
                    continue  # `x = x.to(device)`: after the first step a no-op on a GPU too
                findings.append(self._same_data(run, breakdown, site))
            elif site.kind == "h2d" and site.pageable_bytes >= 0.5 * site.bytes:
                finding = self._pageable(run, breakdown, site)
                if finding is not None:
                    findings.append(finding)
        return findings

    def _same_data(self, run: Run, breakdown: StepBreakdown, site: TransferSite) -> Finding:
        per_step = site.bytes / breakdown.steps
        share = breakdown_share(breakdown, site.time_s)
        if site.kind == "h2d":
            severity = WARNING if share >= SAME_WARN_SHARE or per_step >= MIB else INFO
            cost = f"{site.time_s:.3f} s ({share:.1%} of step time) went to these copies."
        else:
            severity = INFO
            cost = ("Here the device is the CPU, so nothing was copied; on a GPU this would be "
                    "a host-to-device copy (and a wait) every step.")
        return Finding(
            rule=self.rule, severity=severity,
            title=f"The same tensor is sent to the device in {site.steps} of "
                  f"{breakdown.steps} steps",
            message=(f"Line {site.line}{_quoted(run, site)} sends the very same tensor "
                     f"({_size(site.bytes / site.calls)}) to the device again: {site.same_data} "
                     f"of {site.calls} calls re-sent unchanged data. {cost}"),
            evidence=_transfer_evidence(breakdown, site, share),
            location=Location(site.file, site.line, site.function),
            advice=("Move it to the device once, before the loop (or register it as a buffer "
                    "with `self.register_buffer(...)` so `model.to(device)` moves it), and reuse "
                    "the device copy."),
            confidence=0.85 if site.kind == "h2d" else 0.6,
        )

    def _pageable(self, run: Run, breakdown: StepBreakdown, site: TransferSite) -> Finding | None:
        share = breakdown_share(breakdown, site.time_s)
        if share < PAGEABLE_INFO_SHARE:
            return None
        return Finding(
            rule=self.rule, severity=WARNING if share >= PAGEABLE_WARN_SHARE else INFO,
            title=f"Host-to-device copies from pageable memory take {share:.0%} of step time",
            message=(f"Line {site.line}{_quoted(run, site)} copies "
                     f"{_size(site.bytes / breakdown.steps)} per step to the GPU from pageable "
                     f"(not pinned) host memory: {site.time_s:.3f} s in total, and each copy "
                     f"blocks the host."),
            evidence=_transfer_evidence(breakdown, site, share),
            location=Location(site.file, site.line, site.function),
            advice=("Pin the batches and copy asynchronously: `DataLoader(..., pin_memory=True)` "
                    "and `x.to(device, non_blocking=True)`; if the whole dataset fits on the "
                    "GPU, move it there once."),
            confidence=0.8,
        )


def _reassigned(text: str) -> bool:
    """Return True for ``x = x.to(...)`` / ``self.x = self.x.cuda()``: the name then holds the
    device copy, so later calls move nothing (only CPU-only runs cannot tell from the data)."""
    match = re.match(r"\s*([\w.]+)\s*=\s*([\w.]+)\.(to|cuda)\(", text)
    return match is not None and match.group(1) == match.group(2)


def _quoted(run: Run, site: TransferSite) -> str:
    text = source_text(run, site.file, site.line)
    return f" (`{text}`)" if text else ""


def _size(nbytes: float) -> str:
    if nbytes >= MIB / 10:
        return f"{nbytes / MIB:.2f} MiB"
    return f"{nbytes / 1024:.1f} KiB" if nbytes >= 1024 else f"{nbytes:.0f} B"


def _transfer_evidence(breakdown: StepBreakdown, site: TransferSite, share: float) -> dict:
    return {"kind": site.kind, "steps": breakdown.steps, "steps_with_copy": site.steps,
            "calls": site.calls, "bytes": site.bytes,
            "bytes_per_step": round(site.bytes / breakdown.steps),
            "pageable_bytes": site.pageable_bytes, "same_data_calls": site.same_data,
            "non_blocking_calls": site.non_blocking, "time_s": round(site.time_s, 6),
            "time_share": round(share, 4), "cuda": breakdown.cuda}


RULES: list[HostDeviceSync | HostDeviceTransfer] = [HostDeviceSync(), HostDeviceTransfer()]
