"""Training loop shared by the PyTorch reference models: a DataLoader over the real data,
SGD with momentum, bf16 autocast on CUDA where supported, figures measured like the NumPy
models. Only the torch model modules import this module (torch stays optional)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from reference_models.data import Dataset
from reference_models.metrics import cuda_matmul_dtype
from reference_models.numpy_mlp import MOMENTUM, MLPPreset
from reference_models.run import Training


def configure_threads(device: str, threads: int | None) -> int:
    """Apply ``threads`` to torch's intra-op pool (CPU only); return the count in use."""
    if device == "cpu" and threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def make_loader(
    x: torch.Tensor, y: torch.Tensor, preset: MLPPreset, seed: int, device: str
) -> DataLoader:
    """Return a DataLoader that yields whole shuffled mini-batches (one index per batch).

    Batches are gathered by one tensor index instead of per-sample ``__getitem__`` plus
    collate, the fast path for in-memory tensors; ``repeat`` passes make one epoch.
    """
    generator = torch.Generator().manual_seed(seed)
    sampler = RandomSampler(x, num_samples=len(x) * preset.repeat, generator=generator)
    return DataLoader(
        TensorDataset(x, y),
        sampler=BatchSampler(sampler, preset.batch_size, drop_last=False),
        batch_size=None,
        pin_memory=device == "cuda",
    )


def autocast(device: str) -> contextlib.AbstractContextManager[object]:
    """Return the autocast context: bf16 on CUDA where supported, none otherwise (fp32)."""
    if device != "cuda" or cuda_matmul_dtype() != "bfloat16":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16)


def make_optimizer(model: nn.Module, lr: float, device: str) -> torch.optim.Optimizer:
    """Return SGD with momentum (fused kernels on CUDA)."""
    fused = True if device == "cuda" else None
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM, fused=fused)


def _device_batches(
    loader: DataLoader, device: str
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield the loader's batches moved to ``device`` (non-blocking from pinned memory)."""
    for x, y in loader:
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
    device: str,
) -> torch.Tensor:
    """Run one forward/backward/update step; return the loss tensor (not synchronised)."""
    optimizer.zero_grad(set_to_none=True)
    with autocast(device):
        loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.detach()


def synchronize(device: str) -> None:
    """Wait for queued GPU work so wall-clock timings are honest (no-op on CPU)."""
    if device == "cuda":
        torch.cuda.synchronize()


def warm_up(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: str) -> None:
    """Run one untimed forward/backward (kernel selection, allocator) and drop its gradients."""
    with autocast(device):
        nn.functional.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    synchronize(device)


@torch.inference_mode()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: str) -> float:
    """Return the test accuracy of ``model`` on (``x``, ``y``), evaluated in batches."""
    model.eval()
    correct = 0
    for start in range(0, len(x), 4096):
        xb = x[start : start + 4096].to(device)
        with autocast(device):
            correct += int((model(xb).argmax(dim=1).cpu() == y[start : start + 4096]).sum())
    model.train()
    return correct / len(x)


def fit(
    model: nn.Module, data: Dataset, preset: MLPPreset, seed: int, device: str,
    flops_per_sample: int, image_input: bool,
) -> Training:
    """Train ``model`` on ``data`` with a DataLoader; return what was measured."""
    shape = (-1, 1, *data.image_shape) if image_input else (-1, data.num_features)
    x_train = torch.from_numpy(data.x_train).reshape(shape)
    x_test = torch.from_numpy(data.x_test).reshape(shape)
    y_train, y_test = torch.from_numpy(data.y_train), torch.from_numpy(data.y_test)
    model.to(device)
    optimizer = make_optimizer(model, preset.lr, device)
    loader = make_loader(x_train, y_train, preset, seed, device)
    x_first, y_first = next(_device_batches(loader, device))
    warm_up(model, x_first, y_first, device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    loss, samples = torch.tensor(float("nan")), 0
    start = time.perf_counter()
    for _ in range(preset.epochs):
        for x, y in _device_batches(loader, device):
            loss = train_step(model, optimizer, x, y, device)
            samples += len(x)
    synchronize(device)
    seconds = time.perf_counter() - start
    return Training(
        epochs=preset.epochs, batch_size=preset.batch_size, samples=samples, seconds=seconds,
        flops_per_sample=flops_per_sample, test_accuracy=evaluate(model, x_test, y_test, device),
        final_loss=float(loss), threads=torch.get_num_threads(),
        extra={"precision": cuda_matmul_dtype() if device == "cuda" else "float32"},
    )
