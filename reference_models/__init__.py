"""Reference models that show what a healthy training run looks like on this hardware.

``MODELS`` is the registry: each ``ModelSpec`` names a model (CLI names use dashes), its
framework, the devices it supports and the module that trains it. Importing this package
imports neither torch nor any model module; ``ModelSpec.run`` imports the module on demand.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from reference_models.metrics import device_available, torch_installed
from reference_models.run import ModelResult, RunConfig

__all__ = ["MODELS", "ModelResult", "ModelSpec", "RunConfig", "UnknownModelError", "get_model"]


class UnknownModelError(KeyError):
    """A model name that is not in the registry."""


@dataclass(frozen=True)
class ModelSpec:
    """One reference model: CLI name, framework, supported devices, module that trains it."""

    name: str
    framework: str
    devices: tuple[str, ...]
    module: str
    description: str

    def installed(self) -> bool:
        """Return True when the model's framework can be imported here."""
        return self.framework != "torch" or torch_installed()

    def available_devices(self) -> tuple[str, ...]:
        """Return the supported devices that exist on this machine (empty without torch)."""
        if not self.installed():
            return ()
        return tuple(d for d in self.devices if device_available(d))

    def run(self, config: RunConfig) -> ModelResult:
        """Train the model as ``config`` says and return its figures."""
        module = importlib.import_module(self.module)
        return module.run(config)


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("numpy-mlp", "numpy", ("cpu",), "reference_models.numpy_mlp",
              "MLP from scratch in NumPy (vectorised), SGD with momentum"),
    ModelSpec("numpy-mlp-naive", "numpy", ("cpu",), "reference_models.numpy_mlp_naive",
              "the same MLP with a pure-Python triple-loop matmul, on a small subset"),
    ModelSpec("threaded-mlp", "numpy", ("cpu",), "reference_models.threaded_mlp",
              "the same MLP, data-parallel over N threads pulling shards from a queue"),
    ModelSpec("torch-mlp", "torch", ("cpu", "cuda"), "reference_models.torch_mlp",
              "the same MLP in PyTorch with a DataLoader (bf16 autocast on CUDA)"),
    ModelSpec("torch-cnn", "torch", ("cpu", "cuda"), "reference_models.torch_cnn",
              "a small CNN in PyTorch with a DataLoader (bf16 autocast on CUDA)"),
)


def get_model(name: str) -> ModelSpec:
    """Return the registered model called ``name``; raise ``UnknownModelError`` otherwise."""
    for spec in MODELS:
        if spec.name == name:
            return spec
    known = ", ".join(spec.name for spec in MODELS)
    raise UnknownModelError(f"unknown model {name!r} (known: {known})")
