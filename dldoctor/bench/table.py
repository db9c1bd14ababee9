"""Rows of figures for bench/compare results, and their plain-text table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reference_models import ModelResult

COLUMNS = ("model", "device", "status", "samples/s", "GFLOP/s", "% peak", "peak MiB",
           "accuracy", "notes")


@dataclass(frozen=True)
class Entry:
    """One (model, device) cell of a comparison: its result, or why there is none."""

    model: str
    device: str
    status: str  # "ok", "skipped" or "failed"
    result: ModelResult | None = None
    reason: str = ""


def notes(result: ModelResult) -> str:
    """Return the model-specific extras of ``result`` as "key=value" pairs."""
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in result.extra.items())


def peak_memory_mb(result: ModelResult) -> float:
    """Return the memory figure shown for ``result``: device peak on GPU, host peak on CPU."""
    return result.peak_device_mb if result.peak_device_mb is not None else result.peak_host_mb


def row(entry: Entry) -> list[str]:
    """Return the table cells of ``entry`` (dashes where there is no result)."""
    r = entry.result
    if r is None:
        return [entry.model, entry.device, entry.status, *["-"] * 5, entry.reason]
    return [
        entry.model, entry.device, entry.status, f"{r.samples_per_s:,.0f}", f"{r.gflops:,.2f}",
        f"{r.peak_share:.1%}", f"{peak_memory_mb(r):,.0f}", f"{r.test_accuracy:.4f}", notes(r),
    ]


def format_table(entries: Sequence[Entry]) -> str:
    """Return ``entries`` as an aligned plain-text table with a header line."""
    rows = [list(COLUMNS)] + [row(e) for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    right = {3, 4, 5, 6, 7}
    lines = [
        "  ".join(c.rjust(w) if i in right else c.ljust(w)
                  for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
        for r in rows
    ]
    return "\n".join(lines)


def format_result(result: ModelResult) -> str:
    """Return the figures of one ``bench`` run as a table plus the machine peak it used."""
    table = format_table([Entry(result.model, result.device, "ok", result)])
    return (
        f"{table}\n\n{result.dataset}: {result.train_samples:,} training samples in "
        f"{result.epochs} epochs ({result.train_seconds:.2f} s), batch {result.batch_size}, "
        f"{result.threads} threads; measured matmul peak {result.peak_gflops:,.1f} GFLOP/s"
    )
