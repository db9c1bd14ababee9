"""Collectors: each gathers one section of the Run (samples, memory, steps, environment, sources).

Collectors that must live inside the target (they need its frames, locks or imports) implement
``ChildCollector`` and are listed in ``CHILD_COLLECTORS``; the agent creates the enabled ones,
drains them at every flush (records go over the channel) and finishes them at exit."""

from __future__ import annotations

import importlib
from typing import Any, Protocol


class ChildCollector(Protocol):
    """A collector running inside the target. Constructed with the ``Agent``."""

    name: str

    def start(self) -> None:
        """Install hooks; called once, before the target runs."""

    def drain(self) -> list[dict[str, Any]]:
        """Return JSON-ready records (each with a ``type``) collected since the last drain.
        Called from the agent's thread or, at exit, from the exiting thread."""
        ...

    def finish(self) -> None:
        """Stop collecting (the target is exiting); a last ``drain`` follows."""


# name -> "module:Class"; imported only when enabled.
CHILD_COLLECTORS: dict[str, str] = {
    "torch-steps": "dldoctor.collectors.torch_steps:TorchSteps",
    "threads": "dldoctor.collectors.threads:ThreadCollector",
    "heap": "dldoctor.collectors.heap:HeapCollector",
}
DEFAULT_CHILD_COLLECTORS: tuple[str, ...] = ("torch-steps", "threads", "heap")


def load_child_collector(name: str) -> Any:
    """Return the class registered as ``name``."""
    module_name, _, class_name = CHILD_COLLECTORS[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)
