"""dldoctor: profiling and diagnostics for deep-learning code in Python.

Command line: ``dldoctor profile train.py``. In code::

    import dldoctor
    with dldoctor.profile(out="runs/a") as session:
        for batch in loader:
            train_step(batch)
            dldoctor.step()
    print(session.report.findings)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dldoctor.collectors.steps import step

__version__ = "0.1.0"
__all__ = ["__version__", "profile", "step"]

if TYPE_CHECKING:
    from dldoctor.api import Session


def profile(out: Any = None, rate: int = 100, write: bool = True) -> Session:
    """Return a context manager that profiles the code inside it in this process
    (see ``dldoctor.api.Session``)."""
    from dldoctor.api import Session

    return Session(out=out, rate=rate, write=write)
