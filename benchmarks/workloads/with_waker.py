"""Run a workload (``python with_waker.py MODE RATE SCRIPT [ARGS...]``) beside a bare
"sampler" that does nothing but wake up RATE times a second: the floor any sampler pays.

MODE ``process``: a second process wakes up (no GIL, no thread in the target: what an
out-of-process sampler pays at least). ``thread``: a daemon thread in the target wakes up and
returns into Python (takes the GIL: what an in-process sampler pays at least). ``frames``: the
thread also calls ``sys._current_frames()`` (the one call no Python sampler can avoid)."""

from __future__ import annotations

import runpy
import select
import subprocess
import sys
import threading
from pathlib import Path

WAKE = "import select, sys\nwhile True:\n    select.select([], [], [], float(sys.argv[1]))\n"


def _thread_loop(interval: float, frames: bool) -> None:
    while True:
        select.select([], [], [], interval)
        if frames:
            sys._current_frames()


def main() -> None:
    mode, rate, script, *args = sys.argv[1:]
    interval = 1.0 / float(rate)
    if mode == "process":
        waker = subprocess.Popen([sys.executable, "-c", WAKE, str(interval)])
    else:
        threading.Thread(target=_thread_loop, args=(interval, mode == "frames"),
                         daemon=True).start()
    sys.argv = [script, *args]
    sys.path[0] = str(Path(script).resolve().parent)  # as `python SCRIPT` would
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        if mode == "process":
            waker.kill()
            waker.wait()


if __name__ == "__main__":
    main()
