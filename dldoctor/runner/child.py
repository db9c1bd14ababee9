"""Entry point of the child process: start the agent, then run the target with the semantics of
plain ``python script.py`` / ``python -m module`` (argv, sys.path[0], ``__main__``, exit status)."""

from __future__ import annotations

import atexit
import builtins
import importlib.machinery
import json
import os
import runpy
import signal
import sys
import threading
import types

from dldoctor.runner.agent import Agent, AgentConfig, uncaught
from dldoctor.runner.target import is_packaged

SPEC_ENV = "DLDOCTOR_CHILD_SPEC"


def _run_script(path: str) -> None:
    abspath = os.path.abspath(path)
    with open(abspath, "rb") as handle:
        source = handle.read()
    code = compile(source, abspath, "exec", dont_inherit=True)
    main = sys.modules["__main__"]
    main.__dict__.update({
        "__file__": abspath, "__cached__": None, "__builtins__": builtins,
        "__loader__": importlib.machinery.SourceFileLoader("__main__", abspath),
    })
    exec(code, main.__dict__)


def _set_orig_argv(run: list[str], args: list[str]) -> None:
    """``sys.orig_argv`` as ``python [flags] script args`` would have it, not the bootstrap's
    ``-c`` line (a program that re-executes itself with it must run itself again)."""
    orig = getattr(sys, "orig_argv", None)
    if orig and "-c" in orig:
        sys.orig_argv = [*orig[:orig.index("-c")], *run, *args]


def _fresh_main() -> None:
    """A new ``__main__`` module: no bootstrap names leak in, and the names python's own has
    (``__builtins__``, and ``__annotations__`` where the interpreter makes it) are there."""
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    if "__annotations__" in vars(sys.modules["__main__"]):
        main.__dict__["__annotations__"] = {}
    sys.modules["__main__"] = main


def _die_of_sigint() -> None:
    """End like python after an uncaught KeyboardInterrupt: killed by SIGINT, after cleanup."""
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)


def main() -> None:
    """Run the target described by the spec in ``$DLDOCTOR_CHILD_SPEC``."""
    spec = json.loads(os.environ.pop(SPEC_ENV))
    agent = Agent(AgentConfig(**spec["agent"]))
    mode, target, args = spec["mode"], spec["target"], spec["args"]
    packaged = mode == "script" and is_packaged(target)
    if packaged:  # a directory or zip file with a __main__.py, as python runs it
        sys.argv = [target, *args]
        sys.path[0] = os.path.abspath(target)
    elif mode == "script":
        sys.argv = [target, *args]
        sys.path[0] = os.path.dirname(os.path.realpath(target))
    else:
        sys.argv = ["-m", *args]  # runpy replaces argv[0] with the module's file, like python -m
        sys.path[0] = os.getcwd()
    _set_orig_argv([target] if mode == "script" else ["-m", target], args)
    _fresh_main()
    agent.start()
    try:
        if packaged:
            runpy._run_module_as_main("__main__", alter_argv=False)  # type: ignore[attr-defined]
        elif mode == "script":
            _run_script(target)
        else:
            runpy._run_module_as_main(target, alter_argv=True)  # type: ignore[attr-defined]
    except SystemExit as exc:
        agent.note_exit("exit", exc.code if isinstance(exc.code, int) else None)
        raise
    except KeyboardInterrupt as exc:
        agent.note_exit("interrupt", None, exc)
        uncaught(exc)
        _die_of_sigint()
    except BaseException as exc:
        agent.note_exit("exception", 1, exc)
        uncaught(exc)
        sys.exit(1)
