"""The CI regression gate: compare a baseline and a candidate metric by metric and decide
pass (0), regression (1) or inconclusive (3).

- ``model``: metric specs, measurements, verdicts; ``stats``: paired median log ratio with a
  bootstrap interval; ``evaluate``: metrics -> verdicts.
- ``metrics``: where metrics come from (``DLDOCTOR_METRICS`` lines, report.json, saved files).
- ``runner``: interleaved ABBA runs of two commands in fresh processes (and git worktrees,
  callgrind instruction counts); ``baseline``: checked-in baseline files and fingerprints.
- ``pipeline``: the operations behind ``dldoctor gate``; ``output``: table, Markdown, JUnit, JSON.
- ``probe``: in-process measurement for the pytest plugin (``dldoctor.pytest_plugin``).
"""
