"""The one interface every renderer implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

from dldoctor.run import Report


class Renderer(ABC):
    """Turns a Report into text. Subclasses set ``name`` and, for files, ``filename``."""

    name: str = ""
    filename: str = ""

    @abstractmethod
    def render(self, report: Report) -> str:
        """Return the rendered output."""
