"""What to run: a script path or a module name, checked before anything is started."""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from dldoctor.errors import TargetSyntaxError, UsageError


@dataclass(frozen=True)
class Target:
    """A script (``mode="script"``) or module (``mode="module"``) and the arguments it gets."""

    mode: str
    name: str
    args: list[str] = field(default_factory=list)

    @property
    def stem(self) -> str:
        """Return a short name for run directories (``train`` for ``train.py``)."""
        if self.mode == "module":
            return self.name.split(".")[-1] or "module"
        path = Path(self.name)
        return (path.stem if path.suffix else path.name) or "script"

    def check(self) -> None:
        """Raise ``UsageError`` if the target cannot be started, ``TargetSyntaxError`` if it
        does not compile (with python's own message)."""
        if self.mode == "module":
            self._check_module()
        else:
            self._check_script()

    def _check_script(self) -> None:
        path = Path(self.name)
        if not path.exists():
            raise UsageError(f"can't open file '{self.name}': no such file")
        if is_packaged(self.name):
            return
        if path.is_dir():
            raise UsageError(f"'{self.name}' is a directory, not a Python script (nor a "
                             "directory with a __main__.py)")
        if zipfile.is_zipfile(path):
            raise UsageError(f"'{self.name}' is a zip file with no __main__.py")
        try:
            source = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"can't read '{self.name}': {exc.strerror}") from None
        try:
            compile(source, os.path.abspath(self.name), "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            lines = traceback.format_exception_only(type(exc), exc)
            raise TargetSyntaxError("".join(lines).rstrip("\n")) from None

    def _check_module(self) -> None:
        top = self.name.split(".")[0]
        if not top or not all(part.isidentifier() for part in self.name.split(".")):
            raise UsageError(f"'{self.name}' is not a module name")
        if top in sys.builtin_module_names:
            return
        # Look it up as the child will (cwd first), through every finder (editable installs
        # add their own); a top-level name has no parent package, so nothing is imported.
        saved = sys.path[:]
        sys.path[:] = [os.getcwd(), *saved[1:]]
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        finally:
            sys.path[:] = saved
        if spec is None:
            raise UsageError(f"no module named '{top}'")


def is_packaged(path: str) -> bool:
    """True for what python runs by its ``__main__.py``: a directory or a zip file (a zipapp,
    ``.pyz``) that has one."""
    if os.path.isdir(path):
        return os.path.isfile(os.path.join(path, "__main__.py"))
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            return "__main__.py" in archive.namelist() or "__main__.pyc" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
