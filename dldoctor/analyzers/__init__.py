"""Analyzers: pure functions from a Run to findings, one rule family per module.

Each module defines rule classes (``rule``, ``description``, ``analyze(run)``) and lists them in
``RULES``; ``analyze`` runs them all. A rule that raises is reported in ``errors``, never fatal."""

from __future__ import annotations

import traceback
from typing import Protocol

from dldoctor.analyzers import bottlenecks, hostdevice, loops
from dldoctor.analyzers import memory as memory_rules
from dldoctor.analyzers import threads as thread_rules
from dldoctor.findings import Finding, sort_findings
from dldoctor.run import Run


class Rule(Protocol):
    """A diagnostic rule."""

    rule: str
    description: str

    def analyze(self, run: Run) -> list[Finding]:
        """Return the findings this rule makes on ``run``."""
        ...


REGISTRY: list[Rule] = [*loops.RULES, *bottlenecks.RULES, *hostdevice.RULES]
REGISTRY += thread_rules.RULES
REGISTRY += memory_rules.RULES


def analyze(run: Run, rules: list[Rule] | None = None) -> tuple[list[Finding], list[str]]:
    """Return (findings sorted most severe first, one line per rule that failed)."""
    findings: list[Finding] = []
    errors: list[str] = []
    for rule in REGISTRY if rules is None else rules:
        try:
            findings.extend(rule.analyze(run))
        except Exception as exc:  # an analyzer bug must not cost the user the report
            where = traceback.extract_tb(exc.__traceback__)[-1]
            errors.append(f"{rule.rule}: {type(exc).__name__}: {exc} "
                          f"({where.filename}:{where.lineno})")
    return sort_findings(findings), errors
