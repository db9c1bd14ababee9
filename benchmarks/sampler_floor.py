"""What any stack sampler at dldoctor's rate costs a workload on this machine: the floor under
the default-mode overhead budget (DESIGN.md section 6: <= 1.03).

Runs one workload, interleaved in rotating order (median of per-round ratios to plain):

- ``py-spy``: ``py-spy record --nonblocking`` at the same rate, from outside the process (no
  GIL, no thread in the target, never pauses it: the field-standard lowest-overhead sampler);
- ``sampler only``: ``dldoctor profile`` with every collector family but the stack sampler off;
- ``default``: ``dldoctor profile`` as users run it.

    python benchmarks/sampler_floor.py [--workload torch-mlp] [--pairs 9] [--rate 100]

On 2 cores a workload that keeps both busy (torch's or OpenBLAS's 2-thread pool) pays for every
wake-up of any sampler: the core it takes stalls the pool's parallel region. If ``py-spy`` alone
costs about what ``sampler only`` costs, the in-process design is not what the budget is short
of. py-spy comes with the dev install (``pip install -e ".[dev]"``); without it, or where
ptrace is not allowed, its row says why and the others still run.
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
from overhead import ABLATIONS, WORKLOADS


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
        if not problem:
            assert pyspy is not None
            commands["py-spy"] = [pyspy, "record", "--nonblocking", *rate, "--format", "raw",
                                  "-o", str(out / "pyspy.txt"), "--",
                                  *command(script, script_args, PLAIN, out)]
        results = rounds_of(commands, args.pairs)
    print(f"{args.workload}: {args.pairs} interleaved rounds, {args.rate} Hz, median ratio to "
          "plain of the workload's own time (90 % interval)")
    for name in ("py-spy", "sampler only", "default"):
        if name not in commands:
            print(f"  {name:13s} skipped: {problem}")
            continue
        values = ratios(results, name, "plain")
        low, high = median_interval(values)
        print(f"  {name:13s} {statistics.median(values):.4f}   {low:.3f}..{high:.3f}")


if __name__ == "__main__":
    main()
