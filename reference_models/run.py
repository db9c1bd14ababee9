"""What a reference-model run takes (``RunConfig``) and what it reports (``ModelResult``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from reference_models import metrics

SIZES = ("small", "large")
Extra = dict[str, float | int | str]


@dataclass(frozen=True)
class RunConfig:
    """Options shared by every reference model; ``None`` means "the model's own default"."""

    device: str = "cpu"
    epochs: int | None = None
    batch_size: int | None = None
    threads: int | None = None
    seed: int = 0
    size: str = "small"
    data_dir: str | None = None
    subset: int | None = None

    def to_args(self) -> list[str]:
        """Return the command-line arguments that reproduce this config for ``python -m``."""
        args = ["--device", self.device, "--seed", str(self.seed), "--size", self.size]
        for name in ("epochs", "batch_size", "threads", "data_dir", "subset"):
            value = getattr(self, name)
            if value is not None:
                args += ["--" + name.replace("_", "-"), str(value)]
        return args


@dataclass(frozen=True)
class Training:
    """What a training loop measured: work done, time taken, and the model's test accuracy."""

    epochs: int
    batch_size: int
    samples: int
    seconds: float
    flops_per_sample: int
    test_accuracy: float
    final_loss: float
    threads: int
    extra: Extra = field(default_factory=dict)


@dataclass(frozen=True)
class ModelResult:
    """One model's figures: throughput, achieved GFLOP/s, share of peak, memory, accuracy."""

    model: str
    framework: str
    device: str
    size: str
    dataset: str
    epochs: int
    batch_size: int
    threads: int
    train_samples: int
    train_seconds: float
    samples_per_s: float
    gflops: float
    peak_gflops: float
    peak_share: float
    peak_host_mb: float
    peak_device_mb: float | None
    test_accuracy: float
    final_loss: float
    extra: Extra = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelResult:
        """Return a result rebuilt from ``to_dict`` output, ignoring unknown keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def summarize(
    model: str, framework: str, config: RunConfig, dataset: str, training: Training
) -> ModelResult:
    """Return the ``ModelResult`` for ``training``, adding peak and memory figures measured now."""
    seconds = max(training.seconds, 1e-9)
    gflops = training.flops_per_sample * training.samples / seconds / 1e9
    peak = metrics.matmul_peak(config.device)
    return ModelResult(
        model=model,
        framework=framework,
        device=config.device,
        size=config.size,
        dataset=dataset,
        epochs=training.epochs,
        batch_size=training.batch_size,
        threads=training.threads,
        train_samples=training.samples,
        train_seconds=training.seconds,
        samples_per_s=training.samples / seconds,
        gflops=gflops,
        peak_gflops=peak,
        peak_share=gflops / peak if peak > 0 else 0.0,
        peak_host_mb=metrics.peak_host_mb(),
        peak_device_mb=metrics.peak_device_mb(config.device),
        test_accuracy=training.test_accuracy,
        final_loss=training.final_loss,
        extra=dict(training.extra),
    )
