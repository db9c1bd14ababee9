"""``dldoctor gate``: the CI regression gate. Exit codes: 0 pass, 1 regression, 2 usage or
input error, 3 inconclusive."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dldoctor.errors import UsageError
from dldoctor.gate.baseline import baseline_dict, load_baseline, save_baseline
from dldoctor.gate.evaluate import Settings, Thresholds
from dldoctor.gate.metrics import load_series
from dldoctor.gate.model import KINDS, GateResult, MetricSeries
from dldoctor.gate.output import FORMATS, MarkdownFormat, TableFormat
from dldoctor.gate.pipeline import check_baseline, collect_series, compare_files, run_gate
from dldoctor.gate.runner import PairPlan, Side, git_worktree, python_path
from dldoctor.run import write_atomic

SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _apply(func: Callable[..., Any], options: list[Decorator]) -> Callable[..., Any]:
    """Return ``func`` decorated with ``options``, the first listed shown first in --help."""
    for option in reversed(options):
        func = option(func)
    return func


def _output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    return _apply(func, [
        click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False),
                     help="Write the result (with every sample) as JSON."),
        click.option("--junit", "junit_path", type=click.Path(path_type=Path, dir_okay=False),
                     help="Write JUnit XML, one testcase per metric."),
        click.option("--markdown", "markdown_path",
                     type=click.Path(path_type=Path, dir_okay=False),
                     help=f"Write Markdown (it is also appended to ${SUMMARY_ENV} when set)."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed of the bootstrap resampling."),
        click.option("--ignore", multiple=True, metavar="PATTERN",
                     help="Leave metrics matching this pattern out (repeatable), e.g. "
                          "'wall_s' when the command reports its own timings."),
        click.option("--threshold", "thresholds", multiple=True, metavar="[NAME=]PCT",
                     help="Relative threshold: '10%' for time metrics, 'memory=5%' or "
                          "'deterministic=1%' for a kind, 'step_s=3%' for one metric "
                          "(repeatable). Defaults: time 10%, memory 5%, deterministic 2%."),
    ])


def _settings(thresholds: tuple[str, ...], seed: int, ignore: tuple[str, ...]) -> Settings:
    return Settings(Thresholds.parse(thresholds), seed=seed, ignore=ignore)


def _emit(result: GateResult, json_path: Path | None, junit_path: Path | None,
          markdown_path: Path | None) -> int:
    """Print the table, write the requested files and the step summary; return the exit code."""
    click.echo(TableFormat().render(result), nl=False)
    for path, name in ((json_path, "json"), (junit_path, "junit"), (markdown_path, "markdown")):
        if path is not None:
            _write(path, FORMATS[name]().render(result))
    summary = os.environ.get(SUMMARY_ENV)
    if summary:
        try:
            with open(summary, "a", encoding="utf-8") as handle:
                handle.write(MarkdownFormat().render(result) + "\n")
        except OSError as exc:
            click.echo(f"dldoctor: cannot append to ${SUMMARY_ENV}: {exc}", err=True)
    return result.exit_code


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _progress(quiet: bool) -> Callable[[str], None]:
    return (lambda _line: None) if quiet else (lambda line: click.echo(line, err=True))


@click.group("gate", invoke_without_command=True)
@click.option("--baseline", "baseline_file", type=click.Path(path_type=Path),
              help="Alias of `gate compare BASELINE CURRENT`: the baseline file.")
@click.option("--current", "current_file", type=click.Path(path_type=Path),
              help="With --baseline: the current file.")
@_output_options
@click.pass_context
def command(ctx: click.Context, baseline_file: Path | None, current_file: Path | None,
            **outputs: Any) -> int:
    """Gate performance regressions in CI.

    \b
    dldoctor gate run --baseline-cmd "python bench.py" --candidate-cmd "python bench.py --new"
    dldoctor gate run --baseline-ref origin/main --candidate-cmd "python bench.py"
    dldoctor gate compare base.json cur.json
    dldoctor gate baseline save gate-baseline.json --cmd "python bench.py"
    dldoctor gate baseline check gate-baseline.json --cmd "python bench.py"

    Exit codes: 0 pass, 1 regression, 2 usage or input error, 3 inconclusive.
    """
    if ctx.invoked_subcommand is not None:
        given = [v for v in (baseline_file, current_file, *outputs.values()) if v not in
                 (None, (), 0)]
        if given:
            raise UsageError("options before the subcommand only go with --baseline/--current; "
                             "put them after it (e.g. `gate compare --threshold 5% A B`)")
        return 0
    if baseline_file is None and current_file is None:
        click.echo(ctx.get_help())
        return 0
    if baseline_file is None or current_file is None:
        raise UsageError("give both --baseline and --current")
    return _compare(baseline_file, current_file, **outputs)


def _compare(baseline: Path, current: Path, thresholds: tuple[str, ...], seed: int,
             ignore: tuple[str, ...], **paths: Any) -> int:
    return _emit(compare_files(baseline, current, _settings(thresholds, seed, ignore)), **paths)


@command.command("compare")
@click.argument("baseline", type=click.Path(path_type=Path))
@click.argument("current", type=click.Path(path_type=Path))
@_output_options
def compare_command(baseline: Path, current: Path, **outputs: Any) -> int:
    """Compare two saved files: report.json (or run directories), gate baselines, gate
    results (--json output; their candidate side) or plain {"metric": value} JSON."""
    return _compare(baseline, current, **outputs)


@command.command("run")
@click.option("--candidate-cmd", required=True, help="Shell command of the candidate side.")
@click.option("--baseline-cmd", help="Shell command of the baseline side "
              "(default with --baseline-ref: the candidate command).")
@click.option("--baseline-ref", metavar="GIT_REF",
              help="Run the baseline side in a git worktree of this ref.")
@click.option("--min-pairs", type=click.IntRange(min=2), default=10, show_default=True)
@click.option("--max-pairs", type=click.IntRange(min=2), default=30, show_default=True,
              help="Pairs are added while a verdict is inconclusive, up to this many.")
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True,
              help="Discarded runs of each side before the pairs.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Fail (exit 2) when one run takes longer than this.")
@click.option("--instructions", is_flag=True,
              help="Also count instructions once per side under valgrind's callgrind "
                   "(deterministic; skipped with a warning without valgrind).")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
@_output_options
def run_command(candidate_cmd: str, baseline_cmd: str | None, baseline_ref: str | None,
                min_pairs: int, max_pairs: int, warmup: int, timeout: float | None,
                instructions: bool, quiet: bool, thresholds: tuple[str, ...], seed: int,
                ignore: tuple[str, ...], **paths: Any) -> int:
    """Run the baseline and candidate commands interleaved (ABBA, fresh process each) and
    gate every metric with a paired statistic. Metrics: wall time, DLDOCTOR_METRICS lines
    the command prints, and the report of a `dldoctor profile` command ($DLDOCTOR_OUT)."""
    if baseline_cmd is None and baseline_ref is None:
        raise UsageError("give --baseline-cmd, --baseline-ref, or both")
    plan = PairPlan(min_pairs, max(min_pairs, max_pairs), warmup, timeout)
    settings = _settings(thresholds, seed, ignore)
    progress = _progress(quiet)
    if baseline_ref is None:
        sides = Side("baseline", baseline_cmd or ""), Side("candidate", candidate_cmd)
        return _emit(run_gate(*sides, plan, settings, instructions, progress), **paths)
    with git_worktree(baseline_ref, Path.cwd()) as (tree, top, relative):
        base = Side(f"baseline ({baseline_ref})", baseline_cmd or candidate_cmd,
                    tree / relative, python_path(tree))
        cand = Side("candidate", candidate_cmd, Path.cwd(), python_path(top))
        result = run_gate(base, cand, plan, settings, instructions, progress)
    return _emit(result, **paths)


@command.group("baseline")
def baseline_group() -> None:
    """Checked-in baselines of deterministic metrics (allocations, instruction counts)."""


def _current(cmd: str | None, from_file: Path | None, runs: int, timeout: float | None,
             instructions: bool, quiet: bool) -> tuple[MetricSeries, list[str]]:
    if (cmd is None) == (from_file is None):
        raise UsageError("give exactly one of --cmd and a metrics file")
    if from_file is not None:
        return load_series(from_file), []
    _progress(quiet)(f"running {runs}x: {cmd}")
    return collect_series(Side("current", cmd or ""), runs, timeout, instructions)


def _measure_options(func: Callable[..., Any]) -> Callable[..., Any]:
    return _apply(func, [
        click.option("--cmd", help="Shell command to run and measure."),
        click.option("--runs", type=click.IntRange(min=1), default=3, show_default=True,
                     help="How many times to run --cmd (fresh process each)."),
        click.option("--timeout", type=click.FloatRange(min=0, min_open=True),
                     metavar="SECONDS", help="Fail (exit 2) when one run takes longer."),
        click.option("--instructions", is_flag=True,
                     help="Also count instructions under callgrind (needs valgrind)."),
        click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr."),
    ])


@baseline_group.command("save")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--from", "from_file", type=click.Path(path_type=Path),
              help="Take the metrics from this file (report.json, gate result, metrics JSON) "
                   "instead of running --cmd.")
@click.option("--kinds", default="deterministic", show_default=True,
              help="Comma-separated kinds to keep (time, memory, deterministic) or 'all'.")
@_measure_options
def save_command(path: Path, from_file: Path | None, kinds: str, cmd: str | None, runs: int,
                 timeout: float | None, instructions: bool, quiet: bool) -> int:
    """Save a baseline file at PATH from --cmd runs or a metrics file."""
    wanted = KINDS if kinds.strip() == "all" else tuple(k.strip() for k in kinds.split(","))
    unknown = [k for k in wanted if k not in KINDS]
    if unknown:
        raise UsageError(f"unknown kind(s) {', '.join(unknown)}: use {', '.join(KINDS)} or all")
    series, warnings = _current(cmd, from_file, runs, timeout, instructions, quiet)
    content = baseline_dict(series, wanted)
    for warning in warnings:
        click.echo(f"dldoctor: warning: {warning}", err=True)
    if not content["metrics"]:
        raise UsageError(f"no {'/'.join(wanted)} metric to save "
                         f"(found: {', '.join(sorted(series.samples)) or 'none'})")
    save_baseline(path, content)
    click.echo(f"saved {len(content['metrics'])} metric(s) to {path}: "
               f"{', '.join(content['metrics'])}")
    return 0


@baseline_group.command("check")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--current", "from_file", type=click.Path(path_type=Path),
              help="Check this file (report.json, gate result, metrics JSON) instead of "
                   "running --cmd.")
@_measure_options
@_output_options
def check_command(path: Path, from_file: Path | None, cmd: str | None, runs: int,
                  timeout: float | None, instructions: bool, quiet: bool,
                  thresholds: tuple[str, ...], seed: int, ignore: tuple[str, ...],
                  **paths: Any) -> int:
    """Check --cmd runs (or a metrics file) against the baseline file at PATH; warn when this
    machine differs from the one that saved it."""
    stored = load_baseline(path)
    series, warnings = _current(cmd, from_file, runs, timeout, instructions, quiet)
    result = check_baseline(stored, series, _settings(thresholds, seed, ignore), warnings)
    return _emit(result, **paths)
