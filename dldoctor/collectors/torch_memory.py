"""torch's side of memory: ``backward()`` calls, the CUDA caching allocator, live tensors.

Installed when the target imports torch (never imported here). What it does in the target:

- counts ``torch.autograd.backward``/``grad`` calls (``Tensor.backward`` goes through the
  former), so the analyzer can tell graphs that were back-propagated from graphs recorded by
  inference code;
- reads ``torch.cuda.memory_allocated/reserved`` (all devices) when CUDA is already
  initialised — never initialising it;
- ``tensor_census()``: count and bytes of live tensors and how many hold a ``grad_fn``, one pass
  over ``gc.get_objects()`` (O(heap): the caller runs it rarely, within a time budget);
- ``CudaHistory``: a window of ``torch.cuda.memory._record_memory_history`` whose snapshots give
  the Python line that allocated every live CUDA block."""

from __future__ import annotations

import functools
import gc
import sys
import time
from collections.abc import Callable
from typing import Any

from dldoctor.collectors.allocations import LineBytes, innermost_user


class TorchMemory:
    """The torch hooks and readings; inert until ``attach(torch)`` has run."""

    def __init__(self) -> None:
        self.torch: Any = None
        self.backward_calls = 0

    @property
    def attached(self) -> bool:
        """True once the target has imported torch."""
        return self.torch is not None

    def attach(self, torch: Any) -> None:
        """Count backward passes from now on (``when_imported("torch", ...)`` callback)."""
        self.torch = torch
        autograd = getattr(torch, "autograd", None)
        for name in ("backward", "grad"):
            original = getattr(autograd, name, None)
            if original is not None and not getattr(original, "_dldoctor_counted", False):
                setattr(autograd, name, self._counting(original))

    def _counting(self, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.backward_calls += 1
            return original(*args, **kwargs)

        counted._dldoctor_counted = True  # type: ignore[attr-defined]
        return counted

    def cuda_ready(self) -> bool:
        """True if the target has initialised CUDA (reading stats never initialises it)."""
        cuda = getattr(self.torch, "cuda", None)
        try:
            return bool(cuda is not None and cuda.is_initialized())
        except Exception:
            return False

    def device_reading(self) -> tuple[int, int] | None:
        """Return (allocated, reserved) bytes summed over devices, or None without CUDA."""
        if not self.cuda_ready():
            return None
        cuda = self.torch.cuda
        allocated = reserved = 0
        try:
            for index in range(cuda.device_count()):
                stats = cuda.memory_stats(index)
                allocated += int(stats.get("allocated_bytes.all.current", 0))
                reserved += int(stats.get("reserved_bytes.all.current", 0))
        except Exception:
            return None
        return allocated, reserved

    def device_capacity(self) -> tuple[int, int] | None:
        """Return (free, total) bytes of the current device (cudaMemGetInfo), or None."""
        if not self.cuda_ready():
            return None
        try:
            free, total = self.torch.cuda.mem_get_info()
        except Exception:
            return None
        return int(free), int(total)

    def tensor_census(self) -> dict[str, Any]:
        """Return count/bytes of live tensors (each storage once), and how many hold a
        ``grad_fn``, as a ``heap-tensors`` record without its time."""
        started = time.thread_time()
        # gc.get_objects() also returns objects other threads are still building (a tuple
        # before its final resize); holding one while such a thread runs makes its resize fail
        # (SystemError in the target). So no other thread may run until our references are
        # gone: a huge switch interval keeps the GIL here for the census's few milliseconds.
        switch = sys.getswitchinterval()
        sys.setswitchinterval(1000.0)
        try:
            record = self._census_locked()
        finally:
            sys.setswitchinterval(switch)
        record["duration_s"] = round(time.thread_time() - started, 6)
        return record

    def _census_locked(self) -> dict[str, Any]:
        tensor = self.torch.Tensor
        parameter = getattr(self.torch.nn, "Parameter", tensor)
        storages: dict[tuple[str, int], int] = {}
        count = with_grad = 0
        obj = None
        for obj in gc.get_objects():
            kind = type(obj)
            if kind is not tensor and kind is not parameter:
                continue
            count += 1
            try:
                if kind is tensor and obj.grad_fn is not None:
                    with_grad += 1
                storage = obj.untyped_storage()
                storages[(obj.device.type, storage.data_ptr())] = int(storage.nbytes())
            except Exception:
                continue
        del obj  # the object list itself died with the loop
        host = sum(n for (device, _ptr), n in storages.items() if device == "cpu")
        device = sum(n for (dev, _ptr), n in storages.items() if dev not in ("cpu", "meta"))
        return {"count": count, "bytes": host, "device_bytes": device, "with_grad": with_grad}


class CudaHistory:
    """A window of CUDA allocation history: which Python line allocated each live block."""

    def __init__(self, torch: Any, max_entries: int = 100_000) -> None:
        self._memory: Any = getattr(getattr(torch, "cuda", None), "memory", None)
        self._max_entries = max_entries
        self.active = False

    def start(self) -> bool:
        """Begin recording allocation stacks; return False where this torch cannot."""
        record = getattr(self._memory, "_record_memory_history", None)
        if record is None:
            return False
        try:
            record(enabled="all", context="alloc", stacks="python",
                   max_entries=self._max_entries)
        except Exception:
            return False
        self.active = True
        return True

    def lines(self) -> dict[tuple[str, int, str], LineBytes]:
        """Return live CUDA bytes per innermost user line (blocks allocated while recording)."""
        try:
            snapshot = self._memory._snapshot()
        except Exception:
            return {}
        return blocks_by_line(snapshot)

    def stop(self) -> None:
        """Stop recording (history entries are dropped with it)."""
        if self.active:
            try:
                self._memory._record_memory_history(enabled=None)
            except Exception:
                pass
            self.active = False


def blocks_by_line(snapshot: dict[str, Any]) -> dict[tuple[str, int, str], LineBytes]:
    """Group the active blocks of a ``torch.cuda.memory._snapshot()`` by the innermost user
    frame of their allocation stack (blocks without a stack are left out)."""
    found: dict[tuple[str, int, str], LineBytes] = {}
    for segment in snapshot.get("segments", []):
        for block in segment.get("blocks", []):
            if not str(block.get("state", "")).startswith("active"):
                continue
            frames = block.get("frames") or []
            where = innermost_user((f.get("filename", ""), int(f.get("line", 0)),
                                    str(f.get("name", ""))) for f in frames)
            if where is None:
                continue
            cell = found.setdefault(where, LineBytes())
            cell.bytes += int(block.get("size", 0))
            cell.count += 1
    return found

