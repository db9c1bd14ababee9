"""Benchmark of the reference models: the correctness and performance figures of issue 3.

Every measurement runs in a fresh Python process (same cold start for all, no torch thread
pool lingering beside a NumPy run); the kinds are interleaved round by round and the
figures are medians over rounds (ratios: median of per-round ratios). Machines are noisy;
nothing here is asserted by a test.

    python benchmarks/reference_models.py [--rounds 5] [--kinds a,b] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

# This file shares its name with the package it measures: put the repository, not this
# script's folder, first on the path.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from reference_models import RunConfig, get_model  # noqa: E402
from reference_models.metrics import cuda_available, torch_installed  # noqa: E402

CPU_KINDS = ["control:gemm", "numpy-mlp", "torch-mlp", "torch-cnn", "threaded:1:1", "threaded:1:2",
             "threaded:2:1", "numpy-mlp-naive"]
GPU_KINDS = ["torch-mlp@cuda:large", "torch-cnn@cuda:large", "torch-mlp@cuda:small"]


def measure(kind: str) -> dict[str, Any]:
    """Run one measurement in this process; return its figures."""
    if kind == "control:gemm":
        return measure_core_scaling()
    if kind.startswith("threaded:"):
        return measure_threaded(*(int(n) for n in kind.split(":")[1:]))
    name, _, where = kind.partition("@")
    device, _, size = (where or "cpu:small").partition(":")
    return get_model(name).run(RunConfig(device=device, size=size)).to_dict()


def measure_threaded(workers: int, blas: int) -> dict[str, Any]:
    """Train threaded-mlp with ``workers`` threads of ``blas`` BLAS threads; return figures."""
    from reference_models.data import load_dataset
    from reference_models.threaded_mlp import fit_threaded, threaded_preset

    training = fit_threaded(load_dataset(), threaded_preset(RunConfig()), 0, workers, blas)
    return {"samples_per_s": training.samples / training.seconds,
            "test_accuracy": training.test_accuracy}


def measure_core_scaling(n: int = 256, products: int = 2000) -> dict[str, Any]:
    """Return how much two threads of 1-BLAS-thread GEMMs outrun one (2.0 = two free cores).

    A control: on a shared machine the second core is often partly taken by someone else,
    and then no 2-thread figure (threaded-mlp, torch's pool) can be read at face value.
    """
    import threading
    import time

    import numpy as np
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)

    def work() -> None:
        for _ in range(products):
            np.matmul(a, a)

    with threadpool_limits(limits=1, user_api="blas"):
        start = time.perf_counter()
        work()
        one = time.perf_counter() - start
        threads = [threading.Thread(target=work) for _ in range(2)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        two = time.perf_counter() - start
    return {"samples_per_s": 2 * one / two}


def measure_in_child(kind: str) -> dict[str, Any] | None:
    """Return the figures of ``kind`` measured in a fresh process (None if it failed)."""
    proc = subprocess.run([sys.executable, __file__, "--child", kind], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        print(f"  {kind} failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.splitlines()[-1])


def collect(kinds: list[str], rounds: int) -> dict[str, list[dict[str, Any]]]:
    """Return every kind's figures per round, measured interleaved (kind order rotates)."""
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for r in range(rounds):
        order = kinds[r % len(kinds):] + kinds[: r % len(kinds)]
        for kind in order:
            figures = measure_in_child(kind)
            if figures:
                runs[kind].append(figures)
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    return runs


def median(runs: list[dict[str, Any]], key: str) -> float:
    """Return the median of ``key`` over ``runs`` (nan when there are none)."""
    return statistics.median(run[key] for run in runs) if runs else float("nan")


def ratio(a: list[dict[str, Any]], b: list[dict[str, Any]], key: str = "samples_per_s") -> float:
    """Return the median per-round ratio a/b of ``key``."""
    pairs = [x[key] / y[key] for x, y in zip(a, b, strict=False)]
    return statistics.median(pairs) if pairs else float("nan")


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Return the headline figures: per-kind medians and the ratios issue 3 asks for."""
    per_kind = {
        kind: {key: median(r, key) for key in
               ("samples_per_s", "gflops", "peak_share", "test_accuracy", "peak_host_mb")
               if r and key in r[0]}
        for kind, r in runs.items()
        if not kind.startswith("control:")
    }
    ratios = {}
    if runs.get("control:gemm"):
        ratios["control_2thread_gemm_scaling"] = median(runs["control:gemm"], "samples_per_s")
    if runs.get("numpy-mlp") and runs.get("torch-mlp"):
        ratios["numpy_mlp_over_torch_mlp_cpu"] = ratio(runs["numpy-mlp"], runs["torch-mlp"])
    if runs.get("numpy-mlp") and runs.get("numpy-mlp-naive"):
        ratios["numpy_mlp_over_naive"] = ratio(runs["numpy-mlp"], runs["numpy-mlp-naive"])
    if runs.get("threaded:2:1"):
        ratios["threaded_2w_over_1w_1blas"] = ratio(runs["threaded:2:1"], runs["threaded:1:1"])
        ratios["threaded_2w_over_1w_2blas"] = ratio(runs["threaded:2:1"], runs["threaded:1:2"])
    return {"medians": per_kind, "ratios": ratios}


def print_summary(summary: dict[str, Any], rounds: int) -> None:
    """Print the medians table and the ratios."""
    print(f"medians over {rounds} interleaved rounds (each run in a fresh process)")
    print(f"{'kind':<22}{'samples/s':>12}{'GFLOP/s':>10}{'% peak':>9}{'accuracy':>10}")
    for kind, m in summary["medians"].items():
        print(f"{kind:<22}{m.get('samples_per_s', float('nan')):>12,.0f}"
              f"{m.get('gflops', float('nan')):>10.2f}{m.get('peak_share', float('nan')):>9.1%}"
              f"{m.get('test_accuracy', float('nan')):>10.4f}")
    for name, value in summary["ratios"].items():
        print(f"{name:<32}{value:8.2f}x")


def main() -> None:
    """Parse options; run one child measurement, or the whole interleaved benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the summary here")
    parser.add_argument("--kinds", help=f"comma-separated subset of {','.join(CPU_KINDS)}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    kinds = args.kinds.split(",") if args.kinds else CPU_KINDS
    kinds = [k for k in kinds if torch_installed() or not k.startswith("torch")]
    if cuda_available():
        kinds += GPU_KINDS
    else:
        print("GPU figures skipped: no CUDA device here", file=sys.stderr)
    summary = summarize(collect(kinds, args.rounds))
    print_summary(summary, args.rounds)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
