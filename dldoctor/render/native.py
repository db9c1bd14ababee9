"""The native-code view of the HTML report (``--native``): which libraries and which C/C++
functions the samples ended in, and the user line each ran under. Figures come from
``dldoctor.stats``; the template only lays them out."""

from __future__ import annotations

from typing import Any

from dldoctor.run import Run
from dldoctor.stats import display_path, native_asked, native_functions, native_libraries

ROWS = 25


def native_view(run: Run) -> dict[str, Any]:
    """Return what the native section shows: ``asked`` (False when ``--native`` was not
    given: the section is left out), ``available``/``reason``, libraries and functions."""
    native = run.native
    cwd = run.meta.cwd
    functions = [{"function": s.function, "library": s.library, "share": s.share,
                  "samples": s.samples,
                  "caller": f"{display_path(s.caller[0], cwd)}:{s.caller[1]}" if s.caller
                  else "", "caller_function": s.caller[2] if s.caller else ""}
                 for s in native_functions(run, limit=ROWS)] if native.available else []
    return {
        "asked": native_asked(run),
        "available": native.available,
        "reason": native.reason,
        "rate": native.rate,
        "samples": sum(row[2] for row in native.counts),
        "threads": native.threads,
        "dropped": native.dropped,
        "libraries": [{"library": name, "samples": count, "share": share}
                      for name, count, share in native_libraries(run)[:ROWS]]
        if native.available else [],
        "functions": functions,
    }
