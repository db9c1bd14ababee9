"""A small CNN in PyTorch on the same digits (or MNIST), on CPU or CUDA, fed by a DataLoader.
``python -m reference_models.torch_cnn [--device cuda] [--size large] [--epochs N]``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from reference_models.data import Dataset, load_dataset
from reference_models.metrics import conv_forward_flops, linear_forward_flops, training_flops
from reference_models.numpy_mlp import resolve_preset
from reference_models.run import ModelResult, RunConfig, summarize
from reference_models.torch_common import configure_threads, fit

KERNEL = 3


@dataclass(frozen=True)
class CNNShape:
    """Two 3x3 same-padding convolutions (ReLU), a 2x2 max-pool, then two dense layers."""

    channels: tuple[int, int]
    hidden: int


SHAPES = {"small": CNNShape((32, 64), 128), "large": CNNShape((256, 512), 4096)}


def build_cnn(shape: CNNShape, data: Dataset) -> nn.Sequential:
    """Return the CNN for ``data``'s image size and classes."""
    c1, c2 = shape.channels
    height, width = data.image_shape
    return nn.Sequential(
        nn.Conv2d(1, c1, KERNEL, padding=1), nn.ReLU(),
        nn.Conv2d(c1, c2, KERNEL, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(c2 * (height // 2) * (width // 2), shape.hidden), nn.ReLU(),
        nn.Linear(shape.hidden, data.num_classes),
    )


def cnn_train_flops(shape: CNNShape, data: Dataset) -> int:
    """Return the FLOPs of one training sample through the CNN, counted from layer shapes."""
    c1, c2 = shape.channels
    height, width = data.image_shape
    pooled = c2 * (height // 2) * (width // 2)
    return training_flops([
        conv_forward_flops(1, c1, KERNEL, height, width),
        conv_forward_flops(c1, c2, KERNEL, height, width),
        linear_forward_flops(pooled, shape.hidden),
        linear_forward_flops(shape.hidden, data.num_classes),
    ])


def run(config: RunConfig) -> ModelResult:
    """Train the CNN as ``config`` says; return its figures."""
    configure_threads(config.device, config.threads)
    torch.manual_seed(config.seed)
    data = load_dataset(config.data_dir, config.seed)
    preset = resolve_preset(config)
    shape = SHAPES[config.size]
    model = build_cnn(shape, data)
    if config.device == "cuda":
        # NHWC lets cuDNN use tensor-core kernels without transposes; a 1-channel input is
        # already laid out the same either way.
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    training = fit(
        model, data, preset, config.seed, config.device,
        flops_per_sample=cnn_train_flops(shape, data), image_input=True,
    )
    return summarize("torch-cnn", "torch", config, data.name, training)


if __name__ == "__main__":
    from reference_models.cli import main

    main("torch-cnn")
