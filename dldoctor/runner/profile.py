"""``dldoctor profile``'s pipeline: check the target, run it under the supervisor, assemble the
Run, analyze it and write the reports. The exit code is the target's."""

from __future__ import annotations

import functools
import os
import signal
import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dldoctor import __version__
from dldoctor.analyzers import analyze
from dldoctor.collectors import DEFAULT_CHILD_COLLECTORS, environment
from dldoctor.collectors.heap import build_heap
from dldoctor.collectors.source import describe_lines
from dldoctor.collectors.threads import build_threads
from dldoctor.collectors.torch_steps import bottleneck_locations, build_breakdown
from dldoctor.collectors.workers import build_workers
from dldoctor.errors import UsageError
from dldoctor.render import write_reports
from dldoctor.run import CollectorStatus, Environment, Memory, Report, Run, RunMeta
from dldoctor.runner.builder import RunBuilder
from dldoctor.runner.channel import read_records
from dldoctor.runner.supervisor import ChildOutcome, default_out_dir, run_child
from dldoctor.runner.target import Target
from dldoctor.stats import hot_lines

TIMEOUT_EXIT = 124
CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT}
HOT_LINE_LIMIT = 200


@dataclass(frozen=True)
class ProfileConfig:
    """Everything ``dldoctor profile`` was asked to do."""

    target: Target
    out: Path | None = None
    timeout_s: float | None = None
    interval_s: float = 0.01
    collectors: tuple[str, ...] = DEFAULT_CHILD_COLLECTORS
    options: dict[str, str] = field(default_factory=dict)
    native_rate: int | None = None  # also sample native stacks with py-spy, at this rate


@dataclass(frozen=True)
class ProfileResult:
    """The report, where it was written, and the exit code to return."""

    report: Report
    out_dir: Path
    paths: dict[str, Path] = field(default_factory=dict)
    exit_code: int = 0


def prepare_out_dir(path: Path) -> Path:
    """Create ``path`` and prove it is writable; raise ``UsageError`` otherwise."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write to output directory {path}: "
                         f"{exc.strerror or exc}") from None
    return path


def profile_target(config: ProfileConfig) -> ProfileResult:
    """Run the target under instrumentation and write its reports."""
    config.target.check()
    out_dir = prepare_out_dir(config.out or default_out_dir(config.target))
    gpus, gpu_status = environment.gpu_status()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    channel = out_dir / ".channel.jsonl"
    channel.unlink(missing_ok=True)
    try:
        outcome = run_child(config.target, channel, interval_s=config.interval_s,
                            timeout_s=config.timeout_s, collectors=config.collectors,
                            options=config.options,
                            native_rate=config.native_rate,
                            on_alert=functools.partial(_write_interim, config, channel, out_dir,
                                                       gpus, gpu_status, started_at))
    except OSError as exc:
        raise UsageError(f"cannot start the Python interpreter: {exc}") from None
    report = _report(config, outcome, channel, gpus, gpu_status, started_at)
    paths = write_reports(report, out_dir)
    channel.unlink(missing_ok=True)
    return ProfileResult(report, out_dir, paths, exit_code_of(outcome))


def _report(config: ProfileConfig, outcome: ChildOutcome, channel: Path,
            gpus: list[dict[str, Any]], gpu_status: CollectorStatus, started_at: str,
            status: str | None = None) -> Report:
    """Return ``build_report`` for this profile's target."""
    return build_report(config.target, outcome, channel, gpus, gpu_status, started_at, status)


def build_report(target: Target, outcome: ChildOutcome, channel: Path,
                 gpus: list[dict[str, Any]], gpu_status: CollectorStatus, started_at: str,
                 status: str | None = None) -> Report:
    """Return the analysed Report of what the channel holds now (``status`` overrides the
    run's status, e.g. ``hung`` for an interim report)."""
    builder = RunBuilder()
    builder.feed(read_records(channel))
    run = assemble_run(target, outcome, builder, environment.describe(gpus),
                       [gpu_status], started_at)
    if status is not None:
        run = replace(run, meta=replace(run.meta, status=status, exit_code=None))
    findings, errors = analyze(run)
    return Report(run=run, findings=findings, analyzer_errors=errors)


def _write_interim(config: ProfileConfig, channel: Path, out_dir: Path,
                   gpus: list[dict[str, Any]], gpu_status: CollectorStatus, started_at: str,
                   outcome: ChildOutcome) -> None:
    """Write the reports of the run so far while the target still runs (hung in a deadlock:
    the user can read them before pressing Ctrl-C or the ``--timeout``)."""
    try:
        write_reports(_report(config, outcome, channel, gpus, gpu_status, started_at, "hung"),
                      out_dir)
    except Exception:  # the final report is still written when the target ends
        pass


def exit_code_of(outcome: ChildOutcome) -> int:
    """Return the exit code a shell would have seen from plain python (124 on timeout)."""
    if outcome.timed_out:
        return TIMEOUT_EXIT
    if outcome.returncode < 0:
        return 128 - outcome.returncode
    return outcome.returncode


def _status(outcome: ChildOutcome, builder: RunBuilder) -> str:
    how = (builder.exit or {}).get("how")
    if outcome.timed_out:
        return "timeout"
    if outcome.returncode < 0:
        signum = -outcome.returncode
        if signum == signal.SIGINT or how == "interrupt" or outcome.interrupted:
            return "interrupted"
        return "crashed" if signum in CRASH_SIGNALS else "killed"
    return "ok" if outcome.returncode == 0 else "error"


def assemble_run(target: Target, outcome: ChildOutcome, builder: RunBuilder,
                 env: Environment, statuses: list[CollectorStatus], started_at: str) -> Run:
    """Return the Run built from the child's records and the supervisor's own observations."""
    runtime = builder.end or {}
    env = replace(env, thread_pools=runtime.get("thread_pools", []),
                  torch_threads=runtime.get("torch_threads"))
    returncode = outcome.returncode
    samples = builder.samples()
    meta = RunMeta(
        dldoctor_version=__version__, target=target.name, mode=target.mode,
        argv=list(target.args), cwd=os.getcwd(), started_at=started_at,
        duration_s=round(outcome.duration_s, 3),
        exit_code=exit_code_of(outcome),
        signal=-returncode if returncode < 0 else None,
        status=_status(outcome, builder), incomplete=builder.end is None,
        exception=(builder.exit or {}).get("exception"), pid=outcome.pid,
        profiler_cpu_s={"supervisor": round(outcome.supervisor_cpu_s, 4),
                        "agent": samples.sampler_cpu_s, **builder.threads_cpu},
    )
    memory = outcome.memory.result() if outcome.memory else Memory()
    statuses = [
        CollectorStatus("sampler", builder.hello is not None,
                        "" if builder.hello else "the agent never started in the target"),
        CollectorStatus("memory", bool(memory.points), "" if memory.points else "no readings"),
        CollectorStatus("steps", True, ""),
        *statuses,
        CollectorStatus("native", outcome.native.available, outcome.native.reason),
        *_failed_collectors(builder.extra.get("collector-error", [])),
    ]
    run = Run(meta=meta, environment=env, collectors=statuses, samples=samples, memory=memory,
              steps=builder.steps())
    run = replace(run, breakdown=build_breakdown(builder.extra, run.steps.source),
                  workers=build_workers(builder.extra), gpu=outcome.gpu)
    run = replace(run, threads=build_threads(builder.extra))
    run = replace(run, heap=build_heap(builder.extra), native=outcome.native)
    locations = [(s.file, s.line) for s in hot_lines(run)[:HOT_LINE_LIMIT]]
    locations += [loc for loc in bottleneck_locations(run) if loc not in locations]
    return replace(run, sources=describe_lines(locations))


def _failed_collectors(records: list[dict[str, Any]]) -> list[CollectorStatus]:
    """One status per child collector that raised (its first error): the target ran on, and
    the report says which of its sections may be incomplete."""
    first: dict[str, str] = {}
    for record in records:
        first.setdefault(str(record.get("name", "?")), str(record.get("error", "")))
    return [CollectorStatus(name, False, f"failed: {error}") for name, error in first.items()]
