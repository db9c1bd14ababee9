"""``slow-python-loop``: numeric work done element by element in a Python loop on a hot path.

Evidence comes from two places in the Run: sampled CPU time attributed to the user's lines, and
the source facts of the loops around them. A loop nest qualifies when its body indexes elements by
the loop variable (or computes with it) and does scalar arithmetic or comparisons, with no array
operation (``@``, ``np.dot``...) or call to other code where the time could really be going.

In-process samples of a pure-Python loop land on its back-edge (that is where the interpreter
lets other threads run), so time is judged per loop nest, not per line."""

from __future__ import annotations

from dataclasses import dataclass, field

from dldoctor.findings import INFO, WARNING, Finding, Location
from dldoctor.run import LoopInfo, Run, SourceLine
from dldoctor.stats import LineStat, hot_lines, input_pipeline_lines, totals

MIN_SHARE = 0.10  # of all sampled CPU time
WARN_SHARE = 0.25
MIN_CPU_S = 0.2
ELEMENTWISE = {"subscript-loopvar", "loopvar-arith"}
SCALAR_OPS = {"arith", "compare"}
VECTOR = {"matmul"}
CHEAP_CALLS = {"range", "len", "abs", "min", "max", "float", "int", "round", "sum", "enumerate",
               "zip", "bool", "divmod", "pow", "reversed"}
SCALAR_NUMPY = {"exp", "log", "sqrt", "tanh", "abs", "maximum", "minimum", "sin", "cos", "floor",
                "ceil", "sign", "float32", "float64", "isnan", "isfinite"}


def _cheap(call: str) -> bool:
    head, _, last = call.rpartition(".")
    if not head:
        return call in CHEAP_CALLS
    if head in ("math", "cmath", "random", "operator") or last in ("append", "item"):
        return True
    return head in ("np", "numpy") and last in SCALAR_NUMPY


def is_elementwise(loop: LoopInfo) -> bool:
    """Return True if the loop body does scalar numeric work on individual elements."""
    tags = set(loop.features)
    calls = [t[5:] for t in tags if t.startswith("call:")]
    return bool(tags & ELEMENTWISE and tags & SCALAR_OPS and not tags & VECTOR
                and all(_cheap(c) for c in calls))


@dataclass
class _Nest:
    file: str
    outer: LoopInfo
    cpu_s: float = 0.0
    lines: list[tuple[LineStat, SourceLine]] = field(default_factory=list)


def _outermost_elementwise(loops: list[LoopInfo]) -> LoopInfo | None:
    if not loops or not is_elementwise(loops[-1]):
        return None
    index = len(loops) - 1
    while index > 0 and is_elementwise(loops[index - 1]):
        index -= 1
    return loops[index]


class SlowPythonLoop:
    """Hot user loop nests whose time goes to element-wise Python arithmetic."""

    rule = "slow-python-loop"
    description = "numeric work done element by element in Python in a hot path"

    def analyze(self, run: Run) -> list[Finding]:
        """Return one finding per hot element-wise loop nest."""
        _wall, total_cpu = totals(run)
        total_cpu += run.workers.cpu_s  # followed DataLoader workers run the user's Dataset code
        if total_cpu <= 0:
            return []
        facts = {(s.file, s.line): s for s in run.sources}
        nests: dict[tuple[str, int], _Nest] = {}
        for stat in [*hot_lines(run), *input_pipeline_lines(run, workers=True)]:
            fact = facts.get((stat.file, stat.line))
            outer = _outermost_elementwise(fact.loops) if fact else None
            if fact is None or outer is None:
                continue
            nest = nests.setdefault((stat.file, outer.line), _Nest(stat.file, outer))
            nest.cpu_s += stat.cpu_s
            nest.lines.append((stat, fact))
        return [self._finding(nest, total_cpu, run.samples.interval_s) for nest in nests.values()
                if nest.cpu_s >= MIN_CPU_S and nest.cpu_s / total_cpu >= MIN_SHARE]

    def _finding(self, nest: _Nest, total_cpu: float, interval_s: float) -> Finding:
        share = nest.cpu_s / total_cpu
        hottest, fact = max(nest.lines, key=lambda pair: pair[0].cpu_s)
        loop = nest.outer
        variables = ", ".join(loop.targets) or "while"
        return Finding(
            rule=self.rule,
            severity=WARNING if share >= WARN_SHARE else INFO,
            title=f"Element-wise Python loop takes {share:.0%} of CPU time",
            message=(f"The loop over {variables} at line {loop.line} (to line {loop.end_line}) "
                     f"works on one element at a time with scalar arithmetic; it used "
                     f"{nest.cpu_s:.2f} s of {total_cpu:.2f} s sampled CPU. "
                     f"Hottest line: `{fact.text}`."),
            evidence={
                "cpu_share": round(share, 4),
                "cpu_s": round(nest.cpu_s, 3),
                "loop": {"line": loop.line, "end_line": loop.end_line, "variables": loop.targets,
                         "features": loop.features},
                # "samples": sampling intervals of wall time (a sample after a GIL-held gap
                # counts for the gap), kept for older readers; "wall_s" is that in seconds
                "lines": [{"line": s.line, "cpu_s": round(s.cpu_s, 3), "samples": s.wall,
                           "wall_s": round(s.wall * interval_s, 3), "text": f.text}
                          for s, f in sorted(nest.lines, key=lambda p: -p[0].cpu_s)[:5]],
            },
            location=Location(hottest.file, hottest.line, hottest.function),
            advice=("Replace the element-by-element loop with whole-array operations "
                    "(`a @ b`, `x.argmax(axis=1)`, `np.einsum`, broadcasting, boolean masks) or "
                    "move it into torch/numba: each Python-level operation costs ~50 ns, a "
                    "vectorised one well under 1 ns."),
            confidence=round(min(1.0, 0.5 + share), 2),
        )


RULES = [SlowPythonLoop()]
