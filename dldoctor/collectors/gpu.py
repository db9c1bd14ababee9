"""GPU utilisation timeline from NVML (``pynvml``, from nvidia-ml-py), sampled by the supervisor.

The supervisor calls ``sample()`` from its wait loop (10 Hz). Where the driver keeps a buffer of
utilisation samples (``nvmlDeviceGetSamples``) every buffered sample since the last call is
taken, with its own timestamp; otherwise ``nvmlDeviceGetUtilizationRates`` is read once per call.
Once a second the running compute processes are listed, to tell the GPUs the target used from
the others. Without nvidia-ml-py, a driver or a GPU, ``GpuSampler.create`` returns no sampler and
a status that says why; nothing else changes.

The NVML module is injected (``nvml=``), so tests drive the sampler with a fake."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from dldoctor.collectors.bounded import Decimator
from dldoctor.run import GpuDevice, GpuTimeline

GPU_CAP = 5_000
PROCESS_CHECK_S = 1.0
UTILIZATION_SAMPLES = 1  # NVML_GPU_UTILIZATION_SAMPLES


def load_nvml() -> tuple[Any | None, str]:
    """Return (initialised pynvml module, "") or (None, why NVML cannot be used here)."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None, "nvidia-ml-py (pynvml) is not installed"
    try:
        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return None, f"NVML unavailable: {exc}"
    if not count:
        _shutdown(pynvml)
        return None, "NVML found no GPU"
    return pynvml, ""


def _shutdown(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except Exception:
        pass


class _Device:
    """One GPU's handle and what was sampled from it."""

    def __init__(self, nvml: Any, index: int) -> None:
        self.index = index
        self.handle = nvml.nvmlDeviceGetHandleByIndex(index)
        name = nvml.nvmlDeviceGetName(self.handle)
        self.name = name if isinstance(name, str) else name.decode(errors="replace")
        self.memory_total = int(nvml.nvmlDeviceGetMemoryInfo(self.handle).total)
        self.rows: Decimator[list[float]] = Decimator(GPU_CAP)
        self.used = False
        self.last_stamp = 0  # µs, of the newest buffered sample taken
        self.buffered = True  # nvmlDeviceGetSamples works here


class GpuSampler:
    """Samples every GPU's utilisation and memory; ``result()`` gives the Run's section."""

    def __init__(self, nvml: Any, pid: int, t0: float,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, interval_s: float = 0.1) -> None:
        self._nvml = nvml
        self._pid = pid
        self._t0 = t0
        self._clock = clock
        self._wall_t0 = wall() - (clock() - t0)  # wall-clock time of run-relative 0
        self._interval = interval_s
        self._next_check = 0.0
        self.devices = [_Device(nvml, i) for i in range(nvml.nvmlDeviceGetCount())]

    @classmethod
    def create(cls, pid: int, t0: float, interval_s: float = 0.1
               ) -> tuple[GpuSampler | None, GpuTimeline]:
        """Return (a sampler, or None where NVML is unusable; the section to report if none)."""
        nvml, reason = load_nvml()
        if nvml is None:
            return None, GpuTimeline(reason=reason, interval_s=interval_s)
        try:
            return cls(nvml, pid, t0, interval_s=interval_s), GpuTimeline(interval_s=interval_s)
        except Exception as exc:
            _shutdown(nvml)
            return None, GpuTimeline(reason=f"NVML failed: {exc}", interval_s=interval_s)

    def sample(self) -> None:
        """Take the utilisation and memory of every GPU now; never raises."""
        now = self._clock()
        check = now >= self._next_check
        if check:
            self._next_check = now + PROCESS_CHECK_S
        for device in self.devices:
            try:
                self._sample(device, round(now - self._t0, 4), check)
            except Exception:
                continue

    def _sample(self, device: _Device, t: float, check_processes: bool) -> None:
        nvml = self._nvml
        used = float(nvml.nvmlDeviceGetMemoryInfo(device.handle).used)
        if check_processes and not device.used:
            procs = nvml.nvmlDeviceGetComputeRunningProcesses(device.handle)
            device.used = any(int(p.pid) == self._pid for p in procs)
        buffered = self._buffered(device) if device.buffered else None
        if buffered is not None:
            for stamp, util in buffered:
                if stamp / 1e6 >= self._wall_t0:  # the buffer also holds pre-run samples
                    device.rows.offer([round(stamp / 1e6 - self._wall_t0, 4), util, -1.0, used])
            return
        rates = nvml.nvmlDeviceGetUtilizationRates(device.handle)
        device.rows.offer([t, float(rates.gpu), float(rates.memory), used])

    def _buffered(self, device: _Device) -> list[tuple[int, float]] | None:
        """Return the driver's utilisation samples newer than the last ones taken."""
        try:
            _kind, samples = self._nvml.nvmlDeviceGetSamples(device.handle, UTILIZATION_SAMPLES,
                                                             device.last_stamp)
        except Exception as exc:
            if "NotFound" in type(exc).__name__ or "NOT_FOUND" in str(exc).upper():
                return []  # no new sample since last time
            device.buffered = False
            return None
        rows = sorted((int(s.timeStamp), float(s.sampleValue.uiVal)) for s in samples
                      if int(s.timeStamp) > device.last_stamp)
        if rows:
            device.last_stamp = rows[-1][0]
        return rows

    def result(self) -> GpuTimeline:
        """Return the section for the Run and release NVML."""
        _shutdown(self._nvml)
        return GpuTimeline(available=True, interval_s=self._interval, devices=[
            GpuDevice(index=d.index, name=d.name, used=d.used, memory_total=d.memory_total,
                      samples=d.rows.items, stride=d.rows.stride) for d in self.devices])
