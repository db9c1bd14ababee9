"""Thread pools as the target configured them, read inside the target at exit.

Kept apart from ``environment`` so the in-target agent imports nothing heavy (no psutil)."""

from __future__ import annotations

import sys
from typing import Any


def runtime_info() -> dict[str, Any]:
    """Return thread pools and torch threads as the target configured them (run in the target)."""
    info: dict[str, Any] = {"thread_pools": [], "torch_threads": None}
    if "numpy" in sys.modules or "torch" in sys.modules:
        try:
            from threadpoolctl import threadpool_info

            info["thread_pools"] = [
                {k: pool.get(k) for k in ("user_api", "internal_api", "num_threads", "version")}
                for pool in threadpool_info()
            ]
        except Exception:
            pass
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        try:
            info["torch_threads"] = int(torch.get_num_threads())
        except Exception:
            pass
    return info
