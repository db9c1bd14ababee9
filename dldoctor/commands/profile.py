"""dldoctor profile: run a script or module under instrumentation and write its reports."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dldoctor.collectors.native import NATIVE_RATE
from dldoctor.render.terminal import TerminalRenderer
from dldoctor.runner.profile import ProfileConfig, profile_target
from dldoctor.runner.target import Target


@click.command("profile", context_settings={"allow_interspersed_args": False})
@click.option("-m", "module", is_flag=True,
              help="Run TARGET as a module, like `python -m TARGET`.")
@click.option("--out", "-o", type=click.Path(path_type=Path, file_okay=False),
              envvar="DLDOCTOR_OUT",  # set per run by `dldoctor gate run`
              help="Run directory (default: $DLDOCTOR_OUT, else reports/<name>-<timestamp>).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Stop the target after this long; the report is still written (exit 124).")
@click.option("--rate", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="Stack samples per second.")
@click.option("--quiet", "-q", is_flag=True,
              help="Print nothing of dldoctor's own: the target's output stays byte-identical.")
@click.option("--memory", type=click.Choice(["default", "trace", "native", "off"]),
              default="default", show_default=True,
              help="Allocation tracing: `trace` runs tracemalloc for the whole run (allocating "
                   "lines of all Python/NumPy memory; 1.3-5x slower), `native` runs memray "
                   "(native allocations too; needs `pip install memray`), `off` disables the "
                   "in-target memory collector.")
@click.option("--threads", type=click.Choice(["default", "off"]), default="default",
              show_default=True,
              help="Lock instrumentation (contention, lock order, deadlocks) and thread-target "
                   "recording; `off` leaves threading's locks untouched.")
@click.option("--torch", "torch_hooks", type=click.Choice(["default", "off"]),
              default="default", show_default=True,
              help="Torch step breakdown and sync/transfer/DataLoader hooks; `off` leaves torch "
                   "unpatched (optimizer steps are still counted).")
@click.option("--workers", type=click.Choice(["default", "off"]), default="default",
              show_default=True,
              help="Follow forked DataLoader worker processes (their stacks and CPU time).")
@click.option("--native", is_flag=True,
              help="Also sample native (C/C++) stacks from outside with py-spy: which BLAS "
                   "kernel, torch op or OpenMP wait each line's time goes to. py-spy pauses "
                   "the target at each sample (needs `pip install py-spy`).")
@click.option("--native-rate", type=click.IntRange(1, 1000), default=NATIVE_RATE,
              show_default=True, help="Native samples per second (with --native).")
@click.argument("target")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def command(module: bool, out: Path | None, timeout: float | None, rate: int, quiet: bool,
            memory: str, threads: str, torch_hooks: str, workers: str, native: bool,
            native_rate: int, target: str,
            args: tuple[str, ...]) -> int:
    """Run TARGET (a script, or a module with -m) under dldoctor; everything after TARGET is
    passed to it (a `--` right after TARGET is dropped). Exits with the target's own exit code.

    \b
    dldoctor profile train.py --epochs 3
    dldoctor profile -m mypkg.train -- --lr 0.1
    dldoctor profile --timeout 60 --out runs/a train.py
    """
    rest = list(args[1:]) if args[:1] == ("--",) else list(args)
    config = ProfileConfig(target=Target("module" if module else "script", target, rest),
                           out=out, timeout_s=timeout, interval_s=1.0 / rate,
                           options={name: value for name, value in
                                    (("memory", memory), ("threads", threads),
                                     ("torch", torch_hooks), ("workers", workers))
                                    if value != "default"},
                           native_rate=native_rate if native else None)
    result = profile_target(config)
    if not quiet:
        renderer = TerminalRenderer(paths=result.paths, color=sys.stderr.isatty())
        sys.stderr.flush()
        click.echo(renderer.render(result.report), err=True, nl=False)
    return result.exit_code
