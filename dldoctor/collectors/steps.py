"""Training-step marks: ``dldoctor.step()`` and, automatically, ``torch.optim.Optimizer.step``.

torch is never imported here: the optimizer hook is installed when the target itself imports
``torch.optim`` (see ``dldoctor.collectors.imports``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from dldoctor.collectors.bounded import Decimator

STEP_CAP = 20_000
EXPLICIT, OPTIMIZER = "explicit", "optimizer"


class StepRecorder:
    """Counts step ends per source and keeps a bounded, evenly thinned list of their times."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, t0: float = 0.0) -> None:
        self._clock = clock
        self._t0 = t0
        self._counts = {EXPLICIT: 0, OPTIMIZER: 0}
        self._times = {EXPLICIT: Decimator[float](STEP_CAP), OPTIMIZER: Decimator[float](STEP_CAP)}
        self._sent = {EXPLICIT: 0, OPTIMIZER: 0}
        self.listeners: list[Callable[[str, float], None]] = []  # called (source, clock time)

    def listen(self, listener: Callable[[str, float], None]) -> None:
        """Call ``listener(source, clock time)`` at every step end from now on (once, however
        often it is added)."""
        if listener not in self.listeners:
            self.listeners.append(listener)

    def mark(self, source: str = EXPLICIT) -> None:
        """Record the end of one step now (rounded at ``drain``: between two torch kernels
        ``round(x, 6)`` alone costs ~5 us, with the CPU's caches full of torch's data)."""
        now = self._clock()
        self._counts[source] += 1
        self._times[source].offer(now - self._t0)
        for listener in self.listeners:
            listener(source, now)

    def drain(self) -> list[dict[str, Any]]:
        """Return one ``"steps"`` record per source with new marks since the last drain."""
        records = []
        for source, decimator in self._times.items():
            new = self._counts[source] - self._sent[source]
            if not new:
                continue
            self._sent[source] = self._counts[source]
            records.append({"type": "steps", "source": source, "count": new,
                            "times": [round(t, 6) for t in decimator.take()],
                            "stride": decimator.stride})
        return records


_recorder: StepRecorder | None = None


def set_recorder(recorder: StepRecorder | None) -> None:
    """Route ``step()`` calls to ``recorder`` (None: ignore them)."""
    global _recorder
    _recorder = recorder


def step() -> None:
    """Mark the end of one training step. A no-op when dldoctor is not profiling."""
    recorder = _recorder
    if recorder is not None:
        recorder.mark(EXPLICIT)


def install_optimizer_hook(optim_module: Any) -> None:
    """Count every ``torch.optim`` optimizer step (global post-hook, torch >= 2.0)."""
    # torch 2.x may delete the ``optimizer`` submodule name from ``torch.optim``'s namespace.
    optimizer = sys.modules.get(f"{optim_module.__name__}.optimizer",
                                getattr(optim_module, "optimizer", None))
    register = getattr(optimizer, "register_optimizer_step_post_hook", None)
    if register is None:
        return

    def _after_step(*_args: Any, **_kwargs: Any) -> None:
        recorder = _recorder
        if recorder is not None:
            recorder.mark(OPTIMIZER)

    register(_after_step)
