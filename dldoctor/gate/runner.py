"""Run the baseline and candidate commands interleaved, in fresh processes, in this job.

Order is ABBA (pair 0: baseline then candidate, pair 1: candidate then baseline, ...), so slow
drifts of the machine (thermal, a neighbour's job) hit both sides alike. Warm-up runs are
discarded. Pairs are added in ABBA blocks while ``more_needed`` says the verdict is still open,
up to ``max_pairs``.

Each run gets a fresh empty directory, passed as ``$DLDOCTOR_OUT`` (where ``dldoctor profile``
writes its report when given no ``--out``) and substituted for ``{out}`` in the command; a
report.json found there adds its metrics. ``DLDOCTOR_METRICS`` lines on stdout add theirs."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from dldoctor.gate import metrics
from dldoctor.gate.model import (
    DETERMINISTIC,
    TIME,
    CommandFailed,
    GateInputError,
    Measurement,
    MetricSpec,
)
from dldoctor.run import Report

OUT_ENV = "DLDOCTOR_OUT"
STDERR_TAIL = 2000
WALL = MetricSpec("wall_s", TIME, "s")
INSTRUCTIONS = MetricSpec("instructions", DETERMINISTIC, "instr")


@dataclass(frozen=True)
class Side:
    """One side of the comparison: a shell command, where it runs, extra environment."""

    label: str
    command: str
    cwd: Path = field(default_factory=Path.cwd)
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PairPlan:
    """How many pairs to run: at least ``min_pairs``, at most ``max_pairs``."""

    min_pairs: int = 10
    max_pairs: int = 30
    warmup: int = 1
    timeout_s: float | None = None


@dataclass
class Pairs:
    """The measurements so far: ``baseline[i]`` and ``candidate[i]`` form pair i."""

    baseline: list[Measurement] = field(default_factory=list)
    candidate: list[Measurement] = field(default_factory=list)

    def __len__(self) -> int:
        return min(len(self.baseline), len(self.candidate))


def _stderr_tail(stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace").rstrip()
    return text if len(text) <= STDERR_TAIL else "..." + text[-STDERR_TAIL:]


def run_once(side: Side, timeout_s: float | None = None) -> Measurement:
    """Run ``side``'s command once in a fresh process; return its wall time and the metrics
    it printed or wrote. Raise CommandFailed (exit 2, stderr shown) if it fails."""
    out_dir = Path(tempfile.mkdtemp(prefix="dldoctor-gate-"))
    command = side.command.replace("{out}", shlex.quote(str(out_dir)))
    env = {**os.environ, **side.env, OUT_ENV: str(out_dir)}
    try:
        started = time.perf_counter()
        proc = subprocess.run(command, shell=True, cwd=side.cwd, env=env, capture_output=True,
                              timeout=timeout_s, stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise CommandFailed(f"the {side.label} command exited with code {proc.returncode}: "
                                f"{side.command}", _stderr_tail(proc.stderr))
        found = Measurement({WALL.name: wall}, {WALL.name: WALL})
        found = found.merged(metrics.from_output(proc.stdout.decode("utf-8", "replace")))
        report = metrics.find_report(out_dir)
        if report is not None:
            found = found.merged(metrics.from_report(Report.load(report)))
        return found
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(f"the {side.label} command ran past {timeout_s:g} s: "
                            f"{side.command}", _stderr_tail(exc.stderr or b"")) from None
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def run_pairs(baseline: Side, candidate: Side, plan: PairPlan,
              more_needed: Callable[[Pairs], bool],
              progress: Callable[[str], None] = lambda _line: None) -> Pairs:
    """Run warm-ups, then interleaved ABBA pairs until ``plan.min_pairs`` are done and
    ``more_needed`` is false (checked after each ABBA block), or ``plan.max_pairs``."""
    for _ in range(plan.warmup):
        run_once(baseline, plan.timeout_s)
        run_once(candidate, plan.timeout_s)
    pairs = Pairs()
    while len(pairs) < plan.max_pairs:
        if len(pairs) % 2 == 0:
            base = run_once(baseline, plan.timeout_s)
            cand = run_once(candidate, plan.timeout_s)
        else:
            cand = run_once(candidate, plan.timeout_s)
            base = run_once(baseline, plan.timeout_s)
        pairs.baseline.append(base)
        pairs.candidate.append(cand)
        progress(_progress_line(pairs))
        block_done = len(pairs) % 2 == 0 or len(pairs) == plan.max_pairs
        if block_done and len(pairs) >= plan.min_pairs and not more_needed(pairs):
            break
    return pairs


def _progress_line(pairs: Pairs) -> str:
    base = pairs.baseline[-1].values[WALL.name]
    cand = pairs.candidate[-1].values[WALL.name]
    return f"pair {len(pairs)}: baseline {base:.3f} s, candidate {cand:.3f} s"


def valgrind_available() -> bool:
    """Return whether ``valgrind`` is on PATH."""
    return shutil.which("valgrind") is not None


def count_instructions(side: Side, timeout_s: float | None = None) -> Measurement:
    """Run ``side`` once under callgrind (children traced, hash seed fixed) and return its
    total instruction count as the deterministic metric ``instructions``."""
    with tempfile.TemporaryDirectory(prefix="dldoctor-callgrind-") as tmp:
        wrapped = (f"valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="
                   f"{shlex.quote(tmp)}/callgrind.%p -q sh -c {shlex.quote(side.command)}")
        traced = Side(side.label, wrapped, side.cwd, {**side.env, "PYTHONHASHSEED": "0"})
        run_once(traced, None if timeout_s is None else timeout_s * 100)
        total = sum(_callgrind_total(path) for path in Path(tmp).glob("callgrind.*"))
    return Measurement({INSTRUCTIONS.name: float(total)}, {INSTRUCTIONS.name: INSTRUCTIONS})


def _callgrind_total(path: Path) -> int:
    """Return the instruction total of one callgrind output file (its ``summary:`` or
    ``totals:`` line)."""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            fields = line.split(":", 1)[1].split()
            return int(fields[0]) if fields else 0
    return 0


def _git(args: list[str], cwd: Path) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise GateInputError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


@contextmanager
def git_worktree(ref: str, cwd: Path) -> Iterator[tuple[Path, Path, Path]]:
    """Check ``ref`` out in a temporary worktree of the repository holding ``cwd``; yield
    (worktree top, repository top, ``cwd`` relative to the top). Removed afterwards."""
    if shutil.which("git") is None:
        raise GateInputError("--baseline-ref needs git on PATH")
    top = Path(_git(["rev-parse", "--show-toplevel"], cwd))
    relative = cwd.resolve().relative_to(top.resolve())
    holder = Path(tempfile.mkdtemp(prefix="dldoctor-gate-ref-"))
    tree = holder / "baseline"
    try:
        _git(["worktree", "add", "--detach", "--quiet", str(tree), ref], top)
        try:
            yield tree, top, relative
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=top,
                           capture_output=True)
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def python_path(root: Path) -> dict[str, str]:
    """Return a PYTHONPATH environment entry that imports the project at ``root`` first
    (its ``src/`` too when it has one), keeping any existing PYTHONPATH after it."""
    parts = [str(root / "src")] if (root / "src").is_dir() else []
    parts.append(str(root))
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return {"PYTHONPATH": os.pathsep.join(parts)}
