"""An MLP written from scratch in NumPy: forward pass, ReLU, softmax cross-entropy,
backpropagation and SGD with momentum, trained on real digits.

Run alone: ``python -m reference_models.numpy_mlp [--epochs N] [--threads N] [--data DIR]``.
The naive and threaded variants reuse ``fit`` with another matmul or gradient function.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import dldoctor
from reference_models.data import Dataset, load_dataset
from reference_models.metrics import mlp_train_flops
from reference_models.run import ModelResult, RunConfig, Training, summarize

Params = list[np.ndarray]  # [W0, b0, W1, b1, ...]; W has shape (fan_in, fan_out)
Matmul = Callable[[np.ndarray, np.ndarray], np.ndarray]
GradFn = Callable[[Params, np.ndarray, np.ndarray], tuple[float, Params]]
MOMENTUM = 0.9


@dataclass(frozen=True)
class MLPPreset:
    """Network widths and training schedule; ``repeat`` = passes over the train set per epoch."""

    hidden: tuple[int, ...]
    batch_size: int
    epochs: int
    lr: float
    repeat: int = 1


# "large" is sized for a GPU: wide enough that GEMMs, not Python, dominate a step.
PRESETS = {
    "small": MLPPreset(hidden=(512, 512), batch_size=128, epochs=20, lr=0.05),
    "large": MLPPreset(hidden=(8192, 8192, 8192), batch_size=4096, epochs=10, lr=0.05, repeat=32),
}


def resolve_preset(config: RunConfig, default_epochs: int | None = None) -> MLPPreset:
    """Return the preset for ``config.size`` with the epochs and batch size it overrides."""
    preset = PRESETS[config.size]
    epochs = config.epochs or default_epochs or preset.epochs
    return dataclasses.replace(
        preset, epochs=epochs, batch_size=config.batch_size or preset.batch_size
    )


def layer_sizes(data: Dataset, hidden: Sequence[int]) -> tuple[int, ...]:
    """Return the widths of every layer: inputs, hidden layers, classes."""
    return (data.num_features, *hidden, data.num_classes)


def init_params(sizes: Sequence[int], rng: np.random.Generator, dtype: type = np.float32) -> Params:
    """Return He-initialised weights and zero biases for an MLP with layer widths ``sizes``."""
    params: Params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        weights = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
        params.append(weights.astype(dtype))
        params.append(np.zeros(fan_out, dtype=dtype))
    return params


def forward(params: Params, x: np.ndarray, matmul: Matmul = np.matmul) -> list[np.ndarray]:
    """Return every layer's input followed by the logits (ReLU after all but the last layer)."""
    activations = [x]
    n_layers = len(params) // 2
    for i in range(n_layers):
        z = matmul(activations[-1], params[2 * i])
        z += params[2 * i + 1]
        if i < n_layers - 1:
            np.maximum(z, 0, out=z)
        activations.append(z)
    return activations


def softmax_cross_entropy(
    logits: np.ndarray, labels: np.ndarray, denom: float
) -> tuple[float, np.ndarray]:
    """Return (sum of per-sample cross-entropies / ``denom``, its gradient w.r.t. the logits)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    rows = np.arange(len(labels))
    loss = float((np.log(total[:, 0]) - shifted[rows, labels]).sum() / denom)
    grad = exp / total
    grad[rows, labels] -= 1.0
    grad /= denom
    return loss, grad


def backward(
    params: Params, activations: list[np.ndarray], dlogits: np.ndarray, matmul: Matmul = np.matmul
) -> Params:
    """Return the gradients of every parameter, in ``params`` order, by backpropagation."""
    grads: Params = [np.empty(0)] * len(params)
    delta = dlogits
    for i in reversed(range(len(params) // 2)):
        grads[2 * i] = matmul(activations[i].T, delta)
        grads[2 * i + 1] = delta.sum(axis=0)
        if i > 0:
            delta = matmul(delta, params[2 * i].T) * (activations[i] > 0)
    return grads


def loss_and_grads(
    params: Params,
    x: np.ndarray,
    labels: np.ndarray,
    denom: float | None = None,
    matmul: Matmul = np.matmul,
) -> tuple[float, Params]:
    """Return (loss, gradients) of the summed cross-entropy over ``x`` divided by ``denom``.

    ``denom`` defaults to ``len(x)`` (the mean); shards of one batch pass the batch size so
    their gradients add up to the batch gradient.
    """
    activations = forward(params, x, matmul)
    loss, dlogits = softmax_cross_entropy(activations[-1], labels, denom or len(x))
    return loss, backward(params, activations, dlogits, matmul)


def sgd_momentum_step(params: Params, grads: Params, velocity: Params, lr: float) -> None:
    """Update ``params`` in place: ``v = momentum * v + g; p -= lr * v`` (PyTorch's SGD rule)."""
    for p, g, v in zip(params, grads, velocity, strict=True):
        v *= MOMENTUM
        v += g
        p -= lr * v


def accuracy(params: Params, x: np.ndarray, labels: np.ndarray) -> float:
    """Return the share of ``x`` whose arg-max logit equals the label."""
    logits = forward(params, x)[-1]
    return float((logits.argmax(axis=1) == labels).mean())


def batches(n: int, batch_size: int, repeat: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Yield shuffled index batches covering ``range(n)`` ``repeat`` times."""
    for _ in range(repeat):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            yield order[start : start + batch_size]


def blas_threads() -> int:
    """Return the number of threads NumPy's BLAS uses now (1 when none is reported)."""
    counts = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    return max(counts, default=1)


def fit(data: Dataset, preset: MLPPreset, seed: int, grad_fn: GradFn) -> Training:
    """Train a fresh MLP with ``grad_fn`` and SGD with momentum; return what was measured."""
    rng = np.random.default_rng(seed)
    sizes = layer_sizes(data, preset.hidden)
    params = init_params(sizes, rng)
    velocity = [np.zeros_like(p) for p in params]
    loss, samples = float("nan"), 0
    start = time.perf_counter()
    for _ in range(preset.epochs):
        for index in batches(len(data.x_train), preset.batch_size, preset.repeat, rng):
            loss, grads = grad_fn(params, data.x_train[index], data.y_train[index])
            sgd_momentum_step(params, grads, velocity, preset.lr)
            samples += len(index)
            dldoctor.step()  # a no-op unless dldoctor is profiling this run
    seconds = time.perf_counter() - start
    return Training(
        epochs=preset.epochs,
        batch_size=preset.batch_size,
        samples=samples,
        seconds=seconds,
        flops_per_sample=mlp_train_flops(sizes),
        test_accuracy=accuracy(params, data.x_test, data.y_test),
        final_loss=loss,
        threads=blas_threads(),
    )


def blas_limit(threads: int | None) -> contextlib.AbstractContextManager[object]:
    """Return a context that limits BLAS to ``threads`` (no limit when None)."""
    if threads is None:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def run(config: RunConfig) -> ModelResult:
    """Train the vectorised NumPy MLP as ``config`` says; return its figures."""
    data = load_dataset(config.data_dir, config.seed)
    preset = resolve_preset(config)
    with blas_limit(config.threads):
        training = fit(data, preset, config.seed, loss_and_grads)
    return summarize("numpy-mlp", "numpy", config, data.name, training)


if __name__ == "__main__":
    from reference_models.cli import main

    main("numpy-mlp")
