"""Calls made by a dldoctor wrapper on the target's behalf, seen by ``warnings`` as the
target's own.

A warning raised in C code (torch's ``TORCH_WARN``: "Converting a tensor with
requires_grad=True to a scalar ...") or with ``stacklevel=2`` in a wrapped Python function is
attributed to the innermost Python frame: inside a wrapper, the wrapper's line. Then stderr
names dldoctor's file instead of the user's line, and since ``warnings`` shows a warning once
per location, a second user line with the same warning is not shown at all: what the program
prints would change. ``as_caller(frame)`` returns a function ``call(f, *args, **kwargs)``
whose frame has ``frame``'s file name, function name, current line and globals (so the
warning's module, its filters and its once-per-location registry are the caller's), one
compiled per call site, kept for the process's life (at most ``CAP``).

Such a frame is dldoctor's, not the user's, though it carries the user's file name: the stack
sampler and the memory census leave it out (``is_call_shim``), else a function would show up
twice in the profile and the shim's arguments as the user's variables."""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import CodeType, FrameType, FunctionType
from typing import Any

CAP = 4096
CALLEE = "__dldoctor_callee"  # the shim's first parameter: what tells its code apart
_SITES: dict[tuple[int, int], tuple[CodeType, FunctionType]] = {}  # by id: codes hash slowly


def as_caller(frame: FrameType) -> Callable[..., Any]:
    """Return ``call(f, *args, **kwargs) -> f(*args, **kwargs)`` made to look like a call
    from ``frame``'s current line (to ``warnings``, tracebacks and stack samplers)."""
    code = frame.f_code
    line = frame.f_lineno or code.co_firstlineno
    entry = _SITES.get((id(code), line))
    if entry is None or entry[1].__globals__ is not frame.f_globals:
        if len(_SITES) >= CAP:
            _SITES.clear()
        entry = _SITES[(id(code), line)] = (code, _compile(code, line, frame.f_globals))
    return entry[1]


def calling(function: Callable[..., Any], frame: FrameType) -> Callable[..., Any]:
    """Return ``function`` to be called with its own arguments as if from ``frame``'s line
    (for code that takes a ready callable, such as ``TorchSteps.sync_call``)."""
    return functools.partial(as_caller(frame), function)


def _compile(code: CodeType, line: int, globals_: dict[str, Any]) -> FunctionType:
    """A function defined on ``code``'s first line (so samplers file it under the caller's
    function) whose one statement sits on ``line``."""
    first = code.co_firstlineno
    head = f"def _call({CALLEE}, /, *args, **kwargs):"
    body = f"return {CALLEE}(*args, **kwargs)"
    if line > first:
        source = "\n" * (first - 1) + head + "\n" * (line - first) + " " + body + "\n"
    else:
        source = "\n" * (max(line, 1) - 1) + head + " " + body + "\n"
    module = compile(source, code.co_filename, "exec", dont_inherit=True)
    template = next(c for c in module.co_consts if isinstance(c, CodeType))
    renamed = template.replace(co_name=code.co_name,
                               co_qualname=getattr(code, "co_qualname", code.co_name))
    return FunctionType(renamed, globals_, code.co_name)


def is_call_shim(code: CodeType) -> bool:
    """True for the code of a function ``as_caller`` made."""
    names = code.co_varnames
    return bool(names) and names[0] == CALLEE
