"""Overhead of default-mode `dldoctor profile`: instrumented / plain wall-time ratios.

Runs each workload plain (`python W`) and under `dldoctor profile -q W`, interleaved (the order
rotates every round, after a discarded warm-up), and prints per workload the median ratio of

- the target's own measured time (ELAPSED, printed by the workload: the in-run overhead the
  budget in DESIGN.md §6 is about: <= 1.03), and
- the end-to-end wall time of the command (adds dldoctor's fixed start-up and report writing).

Beside each median it prints a bootstrap 90 % interval of that median (how much the machine's
noise leaves it uncertain: on a shared 2-core machine single runs of the BLAS-bound workload
vary by +-10 %, so it takes ~25 pairs to pin the median within ~2 %) and the ratio of the
fastest runs (noise only slows runs down, so minima are the least disturbed figures).

    python benchmarks/overhead.py [--pairs 15] [--workload numpy_train ...]
    python benchmarks/overhead.py --models     # the reference models instead
    python benchmarks/overhead.py --ablate --workload torch-mlp   # cost of each collector
    python benchmarks/overhead.py --native --workload numpy-mlp   # also the opt-in --native

For the torch reference models it also prints the median ratios of the median step and of the
99th-percentile step: a cost every step pays (a hook, caches lost to another thread) moves the
first, a rare stall (a census holding the GIL for a millisecond) only the second.

`--ablate` adds, in the same interleaved rounds, the profile with one collector family turned
off at a time and with the stack sampler alone: the drop from `profiled` is that family's cost.

Workloads: a NumPy MLP on digits with 64-sample batches (BLAS-bound, ~350 us steps: the
worst case for a sampler on 2 cores), a pure-Python loop, a small torch training loop, and
the bundled reference models; ``idle_threads`` (not run by default) is the pure-Python loop
beside 200 threads parked in ``Event.wait``, the per-thread cost of every sample.
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

from interleave import PLAIN, median_interval, min_ratio, ratios, rounds, step_ratio

HERE = Path(__file__).resolve().parent
MODEL = HERE / "workloads" / "reference_model.py"
WORKLOADS = {
    "numpy_train": (HERE / "workloads" / "numpy_train.py", ["400"]),
    "python_loop": (HERE / "workloads" / "python_loop.py", ["300"]),
    "torch_train": (HERE / "workloads" / "torch_train.py", ["2500"]),
    "idle_threads": (HERE / "workloads" / "idle_threads.py", ["150", "200"]),  # not default
    # The bundled reference models (DESIGN.md section 6), each sized to ~3 s of training here.
    "numpy-mlp": (MODEL, ["numpy-mlp", "180"]),
    "threaded-mlp": (MODEL, ["threaded-mlp", "300"]),
    "torch-mlp": (MODEL, ["torch-mlp", "180"]),
    "torch-cnn": (MODEL, ["torch-cnn", "40"]),
}
DEFAULT_WORKLOADS = ("numpy_train", "python_loop", "torch_train")
MODELS = ("numpy-mlp", "threaded-mlp", "torch-mlp", "torch-cnn")  # what --models measures
BUDGET = 1.03


VARIANTS: dict[str, list[str] | None] = {"plain": PLAIN, "profiled": []}
ABLATIONS = {
    "memory off": ["--memory", "off"],
    "threads off": ["--threads", "off"],
    "torch off": ["--torch", "off"],
    "sampler only": ["--memory", "off", "--threads", "off", "--torch", "off", "--workers", "off"],
}


# the opt-in py-spy native sampling, beside the default: at its default rate and at 100 Hz
NATIVE = {"native": ["--native"], "native 100Hz": ["--native", "--native-rate", "100"]}


def measure(name: str, pairs: int, ablate: bool = False, native: bool = False
            ) -> dict[str, float]:
    """Return median ratios for one workload over ``pairs`` interleaved pairs (with
    ``ablate``, also ``"<variant> ratio"`` for each of ABLATIONS; with ``native``, for
    ``--native``)."""
    script, args = WORKLOADS[name]
    variants = {**VARIANTS, **(ABLATIONS if ablate else {}), **(NATIVE if native else {})}
    results = rounds(script, args, variants, pairs)
    inner = ratios(results, "profiled", "plain")
    outer = ratios(results, "profiled", "plain", wall=True)
    low, high = median_interval(inner)
    return {"inner": statistics.median(inner), "outer": statistics.median(outer),
            "inner_low": low, "inner_high": high,
            "fastest": min_ratio(results, "profiled", "plain"),
            "step_p50": step_ratio(results, "profiled", "plain", 2),
            "step_p99": step_ratio(results, "profiled", "plain", 3),
            **{f"{v} ratio": statistics.median(ratios(results, v, "plain"))
               for v in variants if v not in VARIANTS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--workload", action="append", choices=sorted(WORKLOADS))
    parser.add_argument("--models", action="store_true", help="measure the reference models")
    parser.add_argument("--ablate", action="store_true",
                        help="also measure with each collector family turned off")
    parser.add_argument("--native", action="store_true",
                        help="also measure the opt-in --native mode (py-spy native stacks)")
    args = parser.parse_args()
    names = args.workload or (MODELS if args.models else DEFAULT_WORKLOADS)
    print(f"{'workload':<14} {'in-run median':>13} {'90% interval':>15} {'fastest':>8} "
          f"{'end-to-end':>11}  budget")
    worst = 0.0
    for name in names:
        r = measure(name, args.pairs, args.ablate, args.native)
        worst = max(worst, r["inner"])
        print(f"{name:<14} {r['inner']:>13.4f} {r['inner_low']:>7.3f}..{r['inner_high']:<7.3f} "
              f"{r['fastest']:>8.4f} {r['outer']:>11.4f}  "
              f"{'ok' if r['inner'] <= BUDGET else 'OVER'} (<= {BUDGET})", flush=True)
        if not math.isnan(r["step_p50"]):  # the workload timed its steps
            print(f"  {'steps':<12} median step {r['step_p50']:.4f}, 99th percentile "
                  f"{r['step_p99']:.4f} (every step's cost vs rare stalls)", flush=True)
        for key, value in r.items():
            if key.endswith(" ratio"):
                print(f"  {key[:-6]:<12} {value:>13.4f}", flush=True)
    print(f"worst in-run median ratio: {worst:.4f}")


if __name__ == "__main__":
    main()
