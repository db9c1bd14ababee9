"""dldoctor's own errors, turned into exit codes in one place (``dldoctor.cli.main``)."""

from __future__ import annotations


class DldoctorError(Exception):
    """An error the user can fix; printed as one line ``dldoctor: <message>``."""

    exit_code = 2


class UsageError(DldoctorError):
    """Bad command-line input: missing script, unwritable output, unknown model..."""


class ReportLoadError(DldoctorError):
    """A report.json that is missing, truncated or not dldoctor's."""


class TargetSyntaxError(DldoctorError):
    """The target does not compile: python's own message is shown, then exit 1 like python."""

    exit_code = 1

    def __init__(self, python_message: str) -> None:
        super().__init__("the target has a syntax error; nothing was profiled")
        self.detail = python_message
