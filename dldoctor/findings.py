"""Findings: what the analyzers conclude, in the stable vocabulary of DESIGN.md §3."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

INFO, WARNING, ERROR = "info", "warning", "error"
SEVERITIES = (INFO, WARNING, ERROR)
SEVERITY_RANK = {INFO: 0, WARNING: 1, ERROR: 2}

RULES = (
    "memory-leak",
    "data-race",
    "deadlock",
    "lock-contention",
    "gil-contention",
    "thread-oversubscription",
    "dataloader-bottleneck",
    "slow-python-loop",
    "host-device-sync",
    "host-device-transfer",
    "gpu-underutilization",
    "no-grad-inference",
)


@dataclass(frozen=True)
class Location:
    """A place in the user's code."""

    file: str
    line: int
    function: str = ""


@dataclass(frozen=True)
class Finding:
    """One diagnosis with its evidence, where it is in the user's code, and what to do."""

    rule: str
    severity: str
    title: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    location: Location | None = None
    advice: str = ""
    confidence: float = 1.0


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Return findings most severe first, then most confident, then by rule id."""
    return sorted(findings,
                  key=lambda f: (-SEVERITY_RANK.get(f.severity, 0), -f.confidence, f.rule))
