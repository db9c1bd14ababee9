"""dldoctor profile: run a script or module under instrumentation and write its reports."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dldoctor.render.terminal import TerminalRenderer
from dldoctor.runner.profile import ProfileConfig, profile_target
from dldoctor.runner.target import Target


@click.command("profile", context_settings={"allow_interspersed_args": False})
@click.option("-m", "module", is_flag=True,
              help="Run TARGET as a module, like `python -m TARGET`.")
@click.option("--out", "-o", type=click.Path(path_type=Path, file_okay=False),
              help="Run directory (default: reports/<name>-<timestamp>).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Stop the target after this long; the report is still written (exit 124).")
@click.option("--rate", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="Stack samples per second.")
@click.option("--quiet", "-q", is_flag=True,
              help="Print nothing of dldoctor's own: the target's output stays byte-identical.")
@click.argument("target")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def command(module: bool, out: Path | None, timeout: float | None, rate: int, quiet: bool,
            target: str, args: tuple[str, ...]) -> int:
    """Run TARGET (a script, or a module with -m) under dldoctor; everything after TARGET is
    passed to it (a `--` right after TARGET is dropped). Exits with the target's own exit code.

    \b
    dldoctor profile train.py --epochs 3
    dldoctor profile -m mypkg.train -- --lr 0.1
    dldoctor profile --timeout 60 --out runs/a train.py
    """
    rest = list(args[1:]) if args[:1] == ("--",) else list(args)
    config = ProfileConfig(target=Target("module" if module else "script", target, rest),
                           out=out, timeout_s=timeout, interval_s=1.0 / rate)
    result = profile_target(config)
    if not quiet:
        renderer = TerminalRenderer(paths=result.paths, color=sys.stderr.isatty())
        sys.stderr.flush()
        click.echo(renderer.render(result.report), err=True, nl=False)
    return result.exit_code
