"""What any stack sampler at dldoctor's rate costs a workload on this machine: the floor under
the default-mode overhead budget (DESIGN.md section 6: <= 1.03).

Runs one workload, interleaved in rotating order (median of per-round ratios to plain):

- ``wake: process``: a second process that only wakes up at the rate (what an out-of-process
  sampler pays at the least: the kernel's wake-ups, a core taken for a moment);
- ``wake: thread``: a thread in the target that only wakes up at the rate and takes the GIL
  (what an in-process sampler pays at the least);
- ``wake: frames``: the same thread also calls ``sys._current_frames()``;
- ``py-spy``: ``py-spy record --nonblocking`` at the same rate, from outside the process (no
  GIL, no thread in the target, never pauses it: the field-standard out-of-process sampler);
- ``sampler only``: ``dldoctor profile`` with every collector family but the stack sampler off;
- ``default``: ``dldoctor profile`` as users run it.

    python benchmarks/sampler_floor.py [--workload torch-mlp] [--pairs 9] [--rate 100]

The wake rows tell the machine's floor from the sampler's own work: on this 2-core VM a process
waking at 100 Hz beside torch-mlp cost it nothing measurable (0.996-1.004), a thread in the
target taking the GIL at 100 Hz 1.005-1.010, with ``sys._current_frames()`` 1.016-1.024, while
dldoctor's sampler alone cost 1.010-1.028 and the default mode 1.042-1.051 in the same rounds.
py-spy comes with the dev install (``pip install -e ".[dev]"``); without it, or where ptrace is not
allowed, its row says why and the others still run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from interleave import PLAIN, command, median_interval, ratios, rounds_of
from overhead import ABLATIONS, HERE, WORKLOADS

WAKER = HERE / "workloads" / "with_waker.py"
WAKES = ("process", "thread", "frames")


def pyspy_problem(pyspy: str | None) -> str:
    """Return "" if py-spy can sample a child process here, else why not (one line)."""
    if pyspy is None:
        return "py-spy is not installed (pip install py-spy)"
    probe = subprocess.run([pyspy, "record", "--nonblocking", "--duration", "1", "--format", "raw",
                            "-o", "/dev/null", "--", sys.executable, "-c",
                            "import time; time.sleep(0.3)"], capture_output=True, text=True)
    if probe.returncode != 0:
        lines = (probe.stderr or probe.stdout).strip().splitlines()
        return f"py-spy cannot sample here: {lines[-1] if lines else probe.returncode}"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="torch-mlp")
    parser.add_argument("--pairs", type=int, default=9)
    parser.add_argument("--rate", type=int, default=100)
    args = parser.parse_args()
    script, script_args = WORKLOADS[args.workload]
    pyspy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    problem = pyspy_problem(pyspy)
    rate = ["--rate", str(args.rate)]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        commands = {
            "plain": command(script, script_args, PLAIN, out),
            "sampler only": command(script, script_args, [*ABLATIONS["sampler only"], *rate],
                                    out / "sampler"),
            "default": command(script, script_args, rate, out / "default"),
        }
        for mode in WAKES:
            commands[f"wake: {mode}"] = [sys.executable, str(WAKER), mode, str(args.rate),
                                         str(script), *script_args]
        if not problem:
            assert pyspy is not None
            commands["py-spy"] = [pyspy, "record", "--nonblocking", *rate, "--format", "raw",
                                  "-o", str(out / "pyspy.txt"), "--",
                                  *command(script, script_args, PLAIN, out)]
        results = rounds_of(commands, args.pairs)
    print(f"{args.workload}: {args.pairs} interleaved rounds, {args.rate} Hz, median ratio to "
          "plain of the workload's own time (90 % interval)")
    for name in (*(f"wake: {mode}" for mode in WAKES), "py-spy", "sampler only", "default"):
        if name not in commands:
            print(f"  {name:13s} skipped: {problem}")
            continue
        values = ratios(results, name, "plain")
        low, high = median_interval(values)
        print(f"  {name:13s} {statistics.median(values):.4f}   {low:.3f}..{high:.3f}")


if __name__ == "__main__":
    main()
