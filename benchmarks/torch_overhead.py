"""Overhead of the ``torch-steps`` hooks (step breakdown, syncs, transfers, DataLoader).

Two measurements, both printed as median ratios (instrumented / plain); nothing is asserted:

1. ``hooks``: a training step of a model made of many small modules (451 modules, tiny
   tensors: the worst case for forward timing), timed plain, with the collector's hooks in
   their learning phase (``Module.__call__`` wrapped), and after they narrowed to the root
   module; each in a fresh process, interleaved, torch on one thread, best of 5 per process.
2. ``e2e``: the torch reference model, ``python -m reference_models.torch_mlp --json`` plain vs
   under ``dldoctor profile`` (all default collectors), interleaved in ABBA order; the ratio of
   the model's own ``train_seconds`` (the DESIGN.md budget: <= 1.03).

    python benchmarks/torch_overhead.py [--pairs 7] [--skip-e2e] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _collector():  # type: ignore[no-untyped-def]
    """Return a TorchSteps collector on a fake agent, hooks installed (torch imported)."""
    import torch

    from dldoctor.collectors.steps import StepRecorder, install_optimizer_hook, set_recorder
    from dldoctor.collectors.torch_steps import TorchSteps

    recorder = StepRecorder(clock=time.monotonic)
    set_recorder(recorder)
    install_optimizer_hook(torch.optim)
    agent = SimpleNamespace(_clock=time.monotonic, steps=recorder,
                            config=SimpleNamespace(t0=time.monotonic(), options={},
                                                   channel="/dev/null", interval_s=0.01))
    collector = TorchSteps(agent)
    collector.start()
    return collector


def step_ms(mode: str, steps: int = 40, repeats: int = 5) -> float:
    """Return the best ms per training step of the many-small-modules model, in this process,
    ``plain``, with the hooks in their ``learning`` phase, or ``narrowed`` to the root."""
    import torch
    from torch import nn

    torch.set_num_threads(1)
    model = nn.Sequential(*[nn.Sequential(nn.Linear(16, 16), nn.ReLU()) for _ in range(150)])
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(8, 16)

    def step() -> None:
        optimizer.zero_grad()
        model(x).square().mean().backward()
        optimizer.step()

    if mode != "plain":
        forward = _collector().forward
        if mode == "learning":
            forward.narrow = lambda: None  # type: ignore[method-assign]  # stay in learning
    for _ in range(5):
        step()  # warm-up; narrows after two steps unless learning
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - start) / steps)
    return best * 1000


def hook_ratios(rounds: int) -> dict[str, float]:
    """Return median ratios (learning / plain, narrowed / plain) over interleaved rounds, each
    mode in a fresh process."""
    modes = ["plain", "learning", "narrowed"]
    times: dict[str, list[float]] = {m: [] for m in modes}
    for i in range(rounds):
        for mode in modes if i % 2 == 0 else modes[::-1]:
            proc = subprocess.run([sys.executable, __file__, "--child", mode], cwd=REPO,
                                  capture_output=True, text=True, check=True)
            times[mode].append(float(proc.stdout.strip().splitlines()[-1]))
    ratios = {m: statistics.median(a / b for a, b in zip(times[m], times["plain"]))
              for m in modes[1:]}
    return {"modules": 451, "plain_ms": statistics.median(times["plain"]), **ratios}


def run_model(mode: str, device: str, out: Path, threads: int = 0) -> float:
    """Return the reference model's own train_seconds: ``plain``, under ``dldoctor profile``
    (``profile``), or profiled with the torch hooks off (``torch-off``)."""
    model = ["-m", "reference_models.torch_mlp", "--json", "--device", device,
             *(["--threads", str(threads)] if threads else [])]
    cmd = [sys.executable, *model]
    if mode != "plain":
        extra = ["--torch", "off"] if mode == "torch-off" else []
        cmd = [sys.executable, "-m", "dldoctor", "profile", "-q", "--out", str(out), *extra,
               "-m", "reference_models.torch_mlp", "--", *model[2:]]
    for _attempt in range(3):  # a failed run is reported and retried, not measured
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if proc.returncode == 0:
            return float(json.loads(proc.stdout.strip().splitlines()[-1])["train_seconds"])
        print(f"run failed ({mode}, exit {proc.returncode}): {proc.stderr.strip()[-300:]}",
              file=sys.stderr)
    raise SystemExit(f"{mode} run failed three times")


def e2e_ratio(pairs: int, device: str, baseline: str = "plain",
              threads: int = 0) -> dict[str, float]:
    """Return the median profiled/``baseline`` ratio of train_seconds over ABBA pairs."""
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        run_model(baseline, device, Path(tmp), threads)  # warm-up
        for i in range(pairs):
            order = (baseline, "profile") if i % 2 == 0 else ("profile", baseline)
            seconds = {mode: run_model(mode, device, Path(tmp) / f"r{i}", threads)
                       for mode in order}
            ratios.append(seconds["profile"] / seconds[baseline])
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--threads", type=int, default=0,
                        help="e2e: torch threads of the model (1 gives readable figures on a "
                             "busy shared machine; 0: the model's default)")
    parser.add_argument("--baseline", choices=["plain", "torch-off"], default="plain",
                        help="e2e: compare with plain python, or with `profile --torch off` "
                             "(isolates the torch hooks)")
    parser.add_argument("--skip-hooks", action="store_true")
    parser.add_argument("--child", choices=["plain", "learning", "narrowed"],
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(step_ms(args.child))
        return
    if not args.skip_e2e:
        r = e2e_ratio(args.pairs, args.device, args.baseline, args.threads)
        print(f"e2e torch_mlp ({args.device}) train_seconds, profile / {args.baseline}: "
              f"median {r['median']:.4f} "
              f"(min {r['min']:.3f}, max {r['max']:.3f}) over {args.pairs} pairs; budget 1.03")
    if not args.skip_hooks:
        h = hook_ratios(args.rounds)
        print(f"hooks, {h['modules']} modules, plain {h['plain_ms']:.2f} ms/step: "
              f"learning phase (Module.__call__ wrapped) x{h['learning']:.3f}, "
              f"narrowed to the root x{h['narrowed']:.3f} (median of {args.rounds} rounds)")


if __name__ == "__main__":
    main()
