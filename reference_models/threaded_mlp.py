"""Data-parallel training of the reference MLP over N worker threads.

Each mini-batch is cut into shards put on a queue; workers pull shards as they become free
(dynamic load balancing) and compute shard gradients with NumPy, which releases the GIL inside
BLAS and large ufuncs. By default a batch has one shard per worker: on 2 cores, 2 shards of
512 samples gave 1.7-1.8x over one thread, 4 shards of 256 only ~1.6x (each shard's fixed
Python work and hand-offs weigh more), so more shards per batch are an option, not the default.
Each worker stores its shard's gradients in that shard's slot and
a lock-protected countdown tells the main thread when all are in; the main thread sums them
in shard order (a reduction: no buffer is written by two threads, and the result does not
depend on which worker ran which shard), then takes the SGD step. BLAS threads per worker
are capped so that workers x BLAS threads <= cores. Reports the speedup over one thread
doing all the work.
``python -m reference_models.threaded_mlp [--threads N] [--epochs N]``.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
from types import TracebackType

import numpy as np

from reference_models.data import Dataset, load_dataset
from reference_models.numpy_mlp import (
    MLPPreset,
    Params,
    blas_limit,
    fit,
    loss_and_grads,
    resolve_preset,
)
from reference_models.run import ModelResult, RunConfig, Training, summarize

# Shards must be big enough (hundreds of samples) that BLAS time, which runs without the GIL,
# dominates the Python work between calls; the batch is therefore larger than numpy-mlp's.
DEFAULT_BATCH = 1024
DEFAULT_EPOCHS = 40
DEFAULT_LR = 0.1
Outcome = tuple[float, Params] | BaseException
Shard = tuple[int, Params, np.ndarray, np.ndarray, int]


def cpu_count() -> int:
    """Return the number of CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def blas_threads_per_worker(workers: int) -> int:
    """Return the BLAS threads each worker may use so that workers x BLAS <= cores."""
    return max(1, cpu_count() // workers)


class ShardedGradients:
    """A gradient function whose shards are computed by a pool of worker threads.

    Use as a context manager; calling it has the signature of ``numpy_mlp.loss_and_grads``.
    Each worker writes its outcome into the slot of its shard (one writer per slot); a
    lock-protected countdown wakes the main thread once, when the last shard is done.
    """

    def __init__(self, workers: int, shards_per_batch: int | None = None) -> None:
        self.shards_per_batch = shards_per_batch or workers
        self._tasks: queue.SimpleQueue[Shard | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._outcomes: list[Outcome | None] = []
        self._remaining = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"mlp-worker-{i}", daemon=True)
            for i in range(workers)
        ]

    def __enter__(self) -> ShardedGradients:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for _ in self._threads:
            self._tasks.put(None)
        for thread in self._threads:
            thread.join()

    def _work(self) -> None:
        """Worker loop: compute shard gradients until the ``None`` sentinel arrives."""
        while (shard := self._tasks.get()) is not None:
            index, params, x, labels, denom = shard
            outcome: Outcome
            try:
                outcome = loss_and_grads(params, x, labels, denom)
            except BaseException as exc:  # handed to the main thread, re-raised there
                outcome = exc
            self._outcomes[index] = outcome
            with self._lock:
                self._remaining -= 1
                if self._remaining == 0:
                    self._done.set()

    def __call__(self, params: Params, x: np.ndarray, labels: np.ndarray) -> tuple[float, Params]:
        """Return the batch's (mean loss, gradients), summed from shards computed by workers."""
        bounds = np.linspace(0, len(x), min(self.shards_per_batch, len(x)) + 1).astype(int)
        self._outcomes = [None] * (len(bounds) - 1)
        self._remaining = len(bounds) - 1
        self._done.clear()
        for index, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            self._tasks.put((index, params, x[lo:hi], labels[lo:hi], len(x)))
        self._done.wait()
        return reduce_shards(self._outcomes)


def reduce_shards(outcomes: list[Outcome | None]) -> tuple[float, Params]:
    """Return the summed (loss, gradients) of shard outcomes, in shard order; re-raise a
    worker's exception."""
    results: list[tuple[float, Params]] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException) or outcome is None:
            raise outcome or RuntimeError("a shard produced no result")
        results.append(outcome)
    loss, total = results[0]
    for shard_loss, grads in results[1:]:
        loss += shard_loss
        for acc, grad in zip(total, grads, strict=True):
            acc += grad
    return loss, total


def fit_threaded(
    data: Dataset, preset: MLPPreset, seed: int, workers: int, blas: int | None = None
) -> Training:
    """Train with ``workers`` threads (``blas`` BLAS threads each); return what was measured."""
    blas = blas or blas_threads_per_worker(workers)
    with blas_limit(blas), ShardedGradients(workers) as grad_fn:
        training = fit(data, preset, seed, grad_fn)
    return dataclasses.replace(
        training, threads=workers, extra={"workers": workers, "blas_threads_per_worker": blas}
    )


def threaded_preset(config: RunConfig) -> MLPPreset:
    """Return the MLP preset with this model's default batch (large enough to shard)."""
    if config.size != "small":
        return resolve_preset(config)
    preset = resolve_preset(config, default_epochs=DEFAULT_EPOCHS)
    return dataclasses.replace(preset, batch_size=config.batch_size or DEFAULT_BATCH, lr=DEFAULT_LR)


def run(config: RunConfig) -> ModelResult:
    """Train with ``config.threads`` workers (default: one per core) and, for more than one,
    a one-thread baseline; return the figures with the speedup in ``extra``."""
    data = load_dataset(config.data_dir, config.seed)
    preset = threaded_preset(config)
    workers = config.threads or cpu_count()
    training = fit_threaded(data, preset, config.seed, workers)
    if workers > 1:
        baseline = fit_threaded(data, preset, config.seed, workers=1, blas=1)
        extra = {"speedup_vs_1_thread": round(baseline.seconds / training.seconds, 3),
                 "accuracy_1_thread": baseline.test_accuracy}
        training = dataclasses.replace(training, extra={**training.extra, **extra})
    return summarize("threaded-mlp", "numpy", config, data.name, training)


if __name__ == "__main__":
    from reference_models.cli import main

    main("threaded-mlp")
