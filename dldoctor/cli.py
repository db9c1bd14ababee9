"""The ``dldoctor`` command line: a click group whose commands live one per module in
``dldoctor.commands``. Errors become exit codes here and nowhere else."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from dldoctor import __version__
from dldoctor.errors import DldoctorError


class CommandModules(click.Group):
    """A group whose commands are the ``command`` objects of the modules in
    ``dldoctor.commands``, imported only when used (``dldoctor profile`` never pays for the
    imports of ``bench``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return the command names (module names, ``_`` as ``-``)."""
        import dldoctor.commands as package

        return sorted(info.name.replace("_", "-") for info in pkgutil.iter_modules(package.__path__)
                      if not info.name.startswith("_"))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import ``dldoctor.commands.<cmd_name>`` and return its ``command``."""
        if cmd_name not in self.list_commands(ctx):
            return None
        module = importlib.import_module(f"dldoctor.commands.{cmd_name.replace('-', '_')}")
        command = getattr(module, "command", None)
        return command if isinstance(command, click.Command) else None


@click.group(cls=CommandModules, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dldoctor")
def cli() -> None:
    """dldoctor: profile and diagnose deep-learning code (time, memory, threads, GPU)."""


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
