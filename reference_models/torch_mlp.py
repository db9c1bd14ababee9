"""The reference MLP in PyTorch (same widths, batch and optimizer as ``numpy_mlp``), on CPU
or CUDA, fed by a DataLoader.
``python -m reference_models.torch_mlp [--device cuda] [--size large]``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from reference_models.data import load_dataset
from reference_models.metrics import mlp_train_flops
from reference_models.numpy_mlp import layer_sizes, resolve_preset
from reference_models.run import ModelResult, RunConfig, summarize
from reference_models.torch_common import configure_threads, fit


def build_mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Return Linear layers of widths ``sizes`` with ReLU between them (logits out)."""
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def run(config: RunConfig) -> ModelResult:
    """Train the PyTorch MLP as ``config`` says; return its figures."""
    configure_threads(config.device, config.threads)
    torch.manual_seed(config.seed)
    data = load_dataset(config.data_dir, config.seed)
    preset = resolve_preset(config)
    sizes = layer_sizes(data, preset.hidden)
    training = fit(
        build_mlp(sizes), data, preset, config.seed, config.device,
        flops_per_sample=mlp_train_flops(sizes), image_input=False,
    )
    return summarize("torch-mlp", "torch", config, data.name, training)


if __name__ == "__main__":
    from reference_models.cli import main

    main("torch-mlp")
