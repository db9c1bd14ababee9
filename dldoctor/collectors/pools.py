"""Thread pools as the target configured them, read inside the target (while it runs and at exit).

Kept apart from ``environment`` so the in-target agent imports nothing heavy (no psutil).

threadpoolctl finds the pools by walking the loaded libraries (``dl_iterate_phdr`` and a
``dlopen`` per library), which holds the dynamic loader's lock: a torch target's threads, which
take that lock too, then stall (measured: ~15 context switches of the main thread per walk, 3 %
slower at 10 walks/s). So the walk is done once and again only when the target has imported
more modules since; each reading just asks the known libraries for their thread counts."""

from __future__ import annotations

import sys
from typing import Any

from dldoctor.collectors.imports import until_imports


@until_imports
def _controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _pools() -> list[dict[str, Any]]:
    return list(_controller().info())


def runtime_info() -> dict[str, Any]:
    """Return thread pools and torch threads as the target configured them (run in the target)."""
    info: dict[str, Any] = {"thread_pools": [], "torch_threads": None}
    if "numpy" in sys.modules or "torch" in sys.modules:
        try:
            info["thread_pools"] = [
                {k: pool.get(k) for k in ("user_api", "internal_api", "num_threads", "version")}
                for pool in _pools()
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
