"""The reference MLP with the textbook first matmul: a pure-Python triple loop over lists.

Same network, loss, backprop and optimizer as ``numpy_mlp`` (only the matmul differs), trained
on a small subset of the digits to show what Python loops cost. Test accuracy is computed with
the same weights through the vectorised forward pass (evaluation is not what is being timed).
``python -m reference_models.numpy_mlp_naive [--subset N] [--epochs N]``.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from reference_models.data import load_dataset
from reference_models.numpy_mlp import fit, loss_and_grads, resolve_preset
from reference_models.run import ModelResult, RunConfig, summarize

DEFAULT_SUBSET = 32
DEFAULT_EPOCHS = 1
DEFAULT_BATCH = 16


def naive_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return ``a @ b`` computed element by element with three nested Python loops."""
    rows, inner = a.shape
    inner_b, cols = b.shape
    if inner != inner_b:
        raise ValueError(f"matmul shapes {a.shape} and {b.shape} do not align")
    left, right = a.tolist(), b.tolist()
    out = [[0.0] * cols for _ in range(rows)]
    for i in range(rows):
        for j in range(cols):
            total = 0.0
            for k in range(inner):
                total += left[i][k] * right[k][j]
            out[i][j] = total
    return np.array(out, dtype=a.dtype)


def run(config: RunConfig) -> ModelResult:
    """Train the MLP with the naive matmul on ``config.subset`` samples; return its figures."""
    data = load_dataset(config.data_dir, config.seed)
    data = data.take_train(config.subset or DEFAULT_SUBSET)
    preset = resolve_preset(config, default_epochs=DEFAULT_EPOCHS)
    preset = dataclasses.replace(preset, batch_size=config.batch_size or DEFAULT_BATCH)
    grad_fn = functools.partial(loss_and_grads, matmul=naive_matmul)
    training = fit(data, preset, config.seed, grad_fn)
    training = dataclasses.replace(training, threads=1, extra={"train_subset": len(data.x_train)})
    return summarize("numpy-mlp-naive", "numpy", config, data.name, training)


if __name__ == "__main__":
    from reference_models.cli import main

    main("numpy-mlp-naive")
