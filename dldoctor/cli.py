"""The ``dldoctor`` command line: a click group whose commands live one per module in
``dldoctor.commands``. Errors become exit codes here and nowhere else."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from dldoctor import __version__
from dldoctor.errors import DldoctorError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dldoctor")
def cli() -> None:
    """dldoctor: profile and diagnose deep-learning code (time, memory, threads, GPU)."""


def _register_commands(group: click.Group) -> None:
    """Add every ``command`` object found in the modules of ``dldoctor.commands``."""
    import dldoctor.commands as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        command = getattr(module, "command", None)
        if isinstance(command, click.Command):
            group.add_command(command)


_register_commands(cli)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit code (the target's own for ``profile``)."""
    try:
        result = cli.main(args=argv, prog_name="dldoctor", standalone_mode=False)
    except DldoctorError as exc:
        detail = getattr(exc, "detail", None)
        if detail:
            click.echo(detail, err=True)
        click.echo(f"dldoctor: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("dldoctor: aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
