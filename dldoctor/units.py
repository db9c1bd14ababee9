"""Human-readable sizes and durations, shared by analyzers (messages) and renderers."""

from __future__ import annotations


def human_bytes(n: float) -> str:
    """Return ``n`` bytes as e.g. ``812.4 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def human_seconds(s: float) -> str:
    """Return a duration as e.g. ``1.23 s``, ``45.6 ms`` or ``789 µs``."""
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} µs"
