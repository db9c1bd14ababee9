"""``dldoctor gate`` with real commands in subprocesses: A/A passes (and a false-positive rate
measured over recorded A/A pairs), a planted 30 % slowdown and a planted allocation increase are
caught, a 2 % change is not called a regression, and bad input exits 2 with a clear message.

The workload (benchmarks/workloads/gate_sleeper.py) is dominated by ``time.sleep`` plus a little
work proportional to it, so a loaded 2-core machine shifts both sides alike; a run takes ~0.1 s."""

from __future__ import annotations

import json
import random
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Completed, run_cli

from dldoctor.gate.evaluate import Settings, compare_paired
from dldoctor.gate.model import REGRESSION
from dldoctor.gate.runner import PairPlan, Side, run_pairs, valgrind_available

PY = shlex.quote(sys.executable)
WORKLOAD = Path(__file__).resolve().parents[1] / "benchmarks" / "workloads" / "gate_sleeper.py"


@pytest.fixture
def workload() -> Path:
    """The workload script: ``python gate_sleeper.py TIME_FACTOR [ALLOC_FACTOR]``."""
    return WORKLOAD


def cmd(script: Path, *args: float) -> str:
    """Return the shell command running ``script`` with ``args``."""
    return " ".join([PY, shlex.quote(str(script)), *(str(a) for a in args)])


def gate(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Completed:
    """Run ``dldoctor gate ARGS`` in ``tmp_path``."""
    return run_cli(["gate", *args], cwd=tmp_path, env=env, timeout=240)


def gate_run(tmp_path: Path, baseline: str, candidate: str, *extra: str) -> tuple[Completed,
                                                                                 dict]:
    """Run ``gate run`` with a JSON output; return the process and the parsed result."""
    out = tmp_path / "result.json"
    done = gate(tmp_path, "run", "-q", "--baseline-cmd", baseline, "--candidate-cmd",
                candidate, "--json", str(out), *extra)
    assert done.returncode != 2, done.stderr.decode()
    return done, json.loads(out.read_text())


def verdicts(result: dict) -> dict[str, str]:
    """Return metric name -> verdict of a gate JSON result."""
    return {m["name"]: m["verdict"] for m in result["metrics"]}


def test_aa_passes(tmp_path: Path, workload: Path) -> None:
    """The command's own timing and allocations pass; the process wall time (start-up jitter
    of a loaded machine included) is left out here, as the docs advise for such commands."""
    done, result = gate_run(tmp_path, cmd(workload, 1), cmd(workload, 1),
                            "--min-pairs", "6", "--max-pairs", "20", "--ignore", "wall_s")
    assert done.returncode == 0, done.stdout.decode()
    assert verdicts(result) == {"work_s": "pass", "alloc_peak_bytes": "pass"}
    assert b"PASS" in done.stdout


def test_aa_false_positive_rate_over_recorded_pairs(workload: Path) -> None:
    """Record 40 real A/A pairs, then run 20 gate evaluations on random 12-pair subsets and
    on the 3 disjoint 12-pair blocks: at most one may call a regression (< 5 %)."""
    side = Side("a", cmd(workload, 1))
    pairs = run_pairs(side, Side("b", side.command), PairPlan(40, 40, 1, 30),
                      lambda _pairs: True)
    rng = random.Random(7)
    subsets = [rng.sample(range(40), 12) for _ in range(20)]
    subsets += [list(range(start, start + 12)) for start in (0, 12, 24)]
    regressions = 0
    for seed, subset in enumerate(subsets):
        results = compare_paired([pairs.baseline[i] for i in subset],
                                 [pairs.candidate[i] for i in subset], Settings(seed=seed))
        regressions += any(r.verdict == REGRESSION for r in results)
    assert regressions / len(subsets) < 0.05, regressions


def test_planted_30_percent_slowdown_is_caught(tmp_path: Path, workload: Path) -> None:
    done, result = gate_run(tmp_path, cmd(workload, 1), cmd(workload, 1.3),
                            "--min-pairs", "6", "--max-pairs", "16")
    assert done.returncode == 1
    assert verdicts(result)["work_s"] == REGRESSION
    assert verdicts(result)["alloc_peak_bytes"] == "pass"
    work = next(m for m in result["metrics"] if m["name"] == "work_s")
    assert 1.2 < work["ratio"] < 1.4 and work["ratio_ci"][0] > 1.1


def test_two_percent_change_is_not_a_regression(tmp_path: Path, workload: Path) -> None:
    done, result = gate_run(tmp_path, cmd(workload, 1), cmd(workload, 1.02),
                            "--min-pairs", "6", "--max-pairs", "16")
    assert done.returncode in (0, 3), done.stdout.decode()
    assert REGRESSION not in verdicts(result).values()
    assert verdicts(result)["work_s"] == "pass"


def test_planted_allocation_increase_is_caught_by_the_deterministic_gate(
        tmp_path: Path, workload: Path) -> None:
    done, result = gate_run(tmp_path, cmd(workload, 1), cmd(workload, 1, 1.1),
                            "--min-pairs", "2", "--max-pairs", "2", "--warmup", "0")
    assert done.returncode == 1
    assert verdicts(result)["alloc_peak_bytes"] == REGRESSION
    assert b"alloc_peak_bytes  deterministic" in done.stdout


def test_baseline_save_and_check(tmp_path: Path, workload: Path) -> None:
    base = tmp_path / "ci" / "gate-baseline.json"
    saved = gate(tmp_path, "baseline", "save", str(base), "--cmd", cmd(workload, 1),
                 "--runs", "2", "-q")
    assert saved.returncode == 0, saved.stderr.decode()
    content = json.loads(base.read_text())
    assert list(content["metrics"]) == ["alloc_peak_bytes"]  # deterministic only by default
    assert content["fingerprint"]["cpus"] >= 1
    same = gate(tmp_path, "baseline", "check", str(base), "--cmd", cmd(workload, 1), "-q")
    assert same.returncode == 0, same.stdout.decode()
    worse = gate(tmp_path, "baseline", "check", str(base), "--cmd", cmd(workload, 1, 1.1),
                 "-q", "--runs", "1")
    assert worse.returncode == 1
    assert b"regression" in worse.stdout


def test_baseline_check_warns_when_the_machine_differs(tmp_path: Path) -> None:
    base = tmp_path / "base.json"
    base.write_text(json.dumps({
        "format": "dldoctor-gate-baseline", "version": 1, "fingerprint": {"cpus": 512},
        "metrics": {"alloc_bytes": {"kind": "deterministic", "samples": [100.0]}}}))
    current = tmp_path / "cur.json"
    current.write_text('{"alloc_bytes": 100, "new_metric_s": 1}')
    done = gate(tmp_path, "baseline", "check", str(base), "--current", str(current))
    assert done.returncode == 0
    assert b"warning: machine differs" in done.stdout and b"cpus 512" in done.stdout
    assert b"new_metric_s" not in done.stdout  # not in the baseline: not judged


def test_compare_saved_files_and_the_alias(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"alloc_bytes": 1000, "step_s": 1.0, "gone_s": 1}')
    (tmp_path / "b.json").write_text('{"alloc_bytes": 1500, "step_s": 1.01}')
    done = gate(tmp_path, "compare", "a.json", "b.json")
    assert done.returncode == 1
    assert b"gone_s" in done.stdout and b"missing" in done.stdout
    alias = gate(tmp_path, "--baseline", "a.json", "--current", "a.json")
    assert alias.returncode == 0 and b"PASS" in alias.stdout


def test_outputs_and_step_summary(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"alloc_bytes": 1000}')
    summary = tmp_path / "summary.md"
    summary.write_text("earlier\n")
    done = gate(tmp_path, "compare", "a.json", "a.json", "--junit", "out/r.xml",
                "--markdown", "out/r.md", "--json", "out/r.json",
                env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert done.returncode == 0
    assert summary.read_text().startswith("earlier\n### dldoctor gate: PASS")
    assert "<testcase classname=\"dldoctor.gate\" name=\"alloc_bytes\"" in (
        tmp_path / "out/r.xml").read_text()
    assert (tmp_path / "out/r.md").read_text().startswith("### dldoctor gate: PASS")
    assert json.loads((tmp_path / "out/r.json").read_text())["exit_code"] == 0


@pytest.mark.parametrize(("args", "message"), [
    (["baseline", "check", "missing.json", "--current", "x.json"], b"does not exist"),
    (["baseline", "check", "corrupt.json", "--current", "x.json"], b"not valid JSON"),
    (["compare", "corrupt.json", "x.json"], b"not valid JSON"),
    (["compare", "x.json", "x.json", "--threshold", "fast"], b"bad threshold"),
    (["run", "--candidate-cmd", "true"], b"--baseline-cmd"),
    (["--baseline", "x.json"], b"both --baseline and --current"),
    (["baseline", "save", "b.json", "--from", "x.json"], b"no deterministic metric"),
])
def test_bad_input_exits_2(tmp_path: Path, args: list[str], message: bytes) -> None:
    (tmp_path / "corrupt.json").write_text('{"format": "dldoctor-gate-baseline", "metr')
    (tmp_path / "x.json").write_text('{"step_s": 1.0}')
    done = gate(tmp_path, *args)
    assert done.returncode == 2
    assert message in done.stderr, done.stderr


def test_failing_command_exits_2_and_shows_its_stderr(tmp_path: Path, workload: Path) -> None:
    failing = f"{PY} -c \"import sys; sys.stderr.write('kaboom 42'); sys.exit(5)\""
    done = gate(tmp_path, "run", "-q", "--baseline-cmd", cmd(workload, 1), "--candidate-cmd",
                failing, "--min-pairs", "2", "--warmup", "0")
    assert done.returncode == 2
    assert b"kaboom 42" in done.stderr and b"exited with code 5" in done.stderr


def test_inconclusive_exits_3(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"format": "dldoctor-gate-baseline", "metrics": '
                                     '{"step_s": {"samples": [1.0, 1.5, 0.7, 1.2]}}}')
    (tmp_path / "b.json").write_text('{"step_s": 1.05}')
    done = gate(tmp_path, "compare", "a.json", "b.json")
    assert done.returncode == 3 and b"INCONCLUSIVE" in done.stdout


def test_profile_command_reports_feed_the_gate(tmp_path: Path, write_script) -> None:
    script = write_script("train.py", """
        import time, dldoctor
        for _ in range(4):
            time.sleep(0.02)
            dldoctor.step()
    """)
    profiled = f"{PY} -m dldoctor profile -q {shlex.quote(str(script))}"
    _done, result = gate_run(tmp_path, profiled, profiled, "--min-pairs", "2", "--max-pairs",
                             "2", "--warmup", "0")
    assert {"duration_s", "peak_rss_bytes", "step_median_s"} <= set(verdicts(result))
    assert not (tmp_path / "reports").exists()  # reports went to the gate's $DLDOCTOR_OUT


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                   check=True, capture_output=True)


def test_baseline_ref_runs_the_baseline_from_a_worktree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "bench").mkdir(parents=True)
    source = WORKLOAD.read_text()
    (repo / "bench" / "work.py").write_text(source.replace("float(sys.argv[1])", "1.0"))
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "base")
    (repo / "bench" / "work.py").write_text(source.replace("float(sys.argv[1])", "1.3"))
    out = repo / "result.json"
    done = run_cli(["gate", "run", "-q", "--baseline-ref", "HEAD", "--candidate-cmd",
                    f"{PY} work.py", "--min-pairs", "4", "--max-pairs", "8", "--json",
                    str(out)], cwd=repo / "bench", timeout=240)
    assert done.returncode == 1, done.stderr.decode()
    assert verdicts(json.loads(out.read_text()))["work_s"] == REGRESSION
    listed = subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True,
                            text=True, check=True)
    assert len(listed.stdout.splitlines()) == 1  # the temporary worktree is gone


def test_bad_baseline_ref_exits_2(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    done = gate(tmp_path, "run", "--baseline-ref", "no-such-ref", "--candidate-cmd", "true")
    assert done.returncode == 2 and b"no-such-ref" in done.stderr


@pytest.mark.skipif(not valgrind_available(), reason="valgrind is not installed")
def test_instruction_counts_under_callgrind(tmp_path: Path) -> None:
    loop = "{PY} -S -c 'sum(range({n}))'"
    done, result = gate_run(tmp_path, loop.format(PY=PY, n=200_000),
                            loop.format(PY=PY, n=300_000), "--instructions", "--min-pairs",
                            "2", "--max-pairs", "2", "--warmup", "0")
    assert verdicts(result)["instructions"] == REGRESSION
    assert done.returncode == 1
