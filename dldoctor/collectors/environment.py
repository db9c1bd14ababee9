"""The environment a run saw: interpreter, machine, package versions, thread pools, GPUs.

``describe()`` runs in the supervisor (versions come from package metadata: nothing is imported
into the target); ``dldoctor.collectors.pools.runtime_info()`` runs in the target at exit."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

import psutil

from dldoctor.run import CollectorStatus, Environment

PACKAGES = ("numpy", "torch", "scipy", "scikit-learn", "nvidia-ml-py", "dldoctor")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def gpu_status() -> tuple[list[dict[str, Any]], CollectorStatus]:
    """Return the NVIDIA GPUs NVML sees, and whether NVML is usable here."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return [], CollectorStatus("gpu", False, "nvidia-ml-py (pynvml) is not installed")
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return [], CollectorStatus("gpu", False, f"NVML unavailable: {exc}")
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append({"index": index, "name": name if isinstance(name, str) else name.decode(),
                         "memory_total": int(memory.total)})
    finally:
        pynvml.nvmlShutdown()
    if not gpus:
        return [], CollectorStatus("gpu", False, "NVML found no GPU")
    return gpus, CollectorStatus("gpu", True, "")


def describe(gpus: list[dict[str, Any]]) -> Environment:
    """Return the static part of the environment."""
    packages = {name: v for name in PACKAGES if (v := _version(name)) is not None}
    return Environment(
        python=f"{platform.python_implementation()} {platform.python_version()}",
        platform=platform.platform(),
        cpu_count=os.cpu_count() or 0,
        memory_total=int(psutil.virtual_memory().total),
        packages=packages,
        gpus=gpus,
    )
