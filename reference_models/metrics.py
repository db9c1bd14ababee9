"""Figures every reference model reports: FLOPs counted from layer shapes, this machine's
measured matmul peak (a short GEMM probe, once per process and device), peak memory, and
which devices exist here. Torch is imported only inside the functions that need it."""

from __future__ import annotations

import functools
import importlib.util
import resource
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

# Square GEMM sizes for the peak probe: large enough to reach the BLAS plateau, small enough
# to take well under a second (~6 ms per product on a 2-core AVX-512 CPU, < 1 ms on a GPU).
CPU_PROBE_N = 1024
CUDA_PROBE_N = 8192
PROBE_REPEATS = 10  # best of 10: a shared machine is rarely busy for all of them


def torch_installed() -> bool:
    """Return True when torch can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # an import hook refused it, or a broken sys.modules entry
        return False


def cuda_available() -> bool:
    """Return True when torch is installed and sees a CUDA device."""
    if not torch_installed():
        return False
    import torch

    return bool(torch.cuda.is_available())


def device_available(device: str) -> bool:
    """Return True when ``device`` ("cpu" or "cuda") can run a model on this machine."""
    return device == "cpu" or (device == "cuda" and cuda_available())


def training_flops(forward_flops: Sequence[int]) -> int:
    """Return one training sample's FLOPs given each layer's forward FLOPs, in layer order.

    Backward costs the forward twice per layer (weight gradient and input gradient), except
    that the first layer needs no input gradient. Elementwise work is not counted.
    """
    return 3 * sum(forward_flops) - forward_flops[0]


def linear_forward_flops(n_in: int, n_out: int) -> int:
    """Return the forward FLOPs of one sample through a dense layer (2 per multiply-add)."""
    return 2 * n_in * n_out


def mlp_train_flops(sizes: Sequence[int]) -> int:
    """Return the FLOPs of one training sample through an MLP with layer widths ``sizes``."""
    pairs = zip(sizes[:-1], sizes[1:], strict=True)
    return training_flops([linear_forward_flops(n_in, n_out) for n_in, n_out in pairs])


def conv_forward_flops(c_in: int, c_out: int, kernel: int, out_h: int, out_w: int) -> int:
    """Return the forward FLOPs of one sample through a 2-D convolution (2 per multiply-add)."""
    return 2 * c_in * kernel * kernel * c_out * out_h * out_w


def best_rate(flops: float, run: Callable[[], object], repeats: int = PROBE_REPEATS) -> float:
    """Return the best FLOP/s (in GFLOP/s) of ``repeats`` timed calls of ``run`` after a warm-up."""
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


@functools.cache
def numpy_matmul_peak(n: int = CPU_PROBE_N) -> float:
    """Return the measured float32 NumPy GEMM rate of this machine in GFLOP/s (cached)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    return best_rate(2.0 * n**3, lambda: np.matmul(a, b, out=out))


@functools.cache
def cuda_matmul_dtype() -> str:
    """Return the dtype name the CUDA models compute in: "bfloat16" where the GPU supports
    it, else "float32" (fp16 autocast would also need loss scaling)."""
    import torch

    return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"


@functools.cache
def cuda_matmul_peak(n: int = CUDA_PROBE_N) -> float:
    """Return the measured CUDA GEMM rate in GFLOP/s for ``cuda_matmul_dtype()`` (cached)."""
    import torch

    dtype = getattr(torch, cuda_matmul_dtype())
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)

    def product() -> None:
        torch.mm(a, b)
        torch.cuda.synchronize()

    return best_rate(2.0 * n**3, product)


def matmul_peak(device: str) -> float:
    """Return this machine's measured matmul peak in GFLOP/s for ``device``.

    CPU: float32 GEMM through NumPy's BLAS, the same figure for every CPU model so rows compare.
    CUDA: bf16 ``torch.mm`` (fp32 on GPUs without bf16), the precision the models train in.
    """
    return cuda_matmul_peak() if device == "cuda" else numpy_matmul_peak()


def peak_host_mb() -> float:
    """Return this process's peak resident set size in MiB (``getrusage`` high-water mark)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def peak_device_mb(device: str) -> float | None:
    """Return the peak CUDA memory allocated by torch in MiB, or None off the GPU."""
    if device != "cuda":
        return None
    import torch

    return torch.cuda.max_memory_allocated() / (1024 * 1024)
