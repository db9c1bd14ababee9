"""GPU checks for the bottleneck rules (issue 6): run on a machine with an NVIDIA GPU.

Profiles the fixtures under ``tests/pathologies/`` and the torch reference models on CUDA with
the real CLI, and checks what only a GPU can show: NVML sampling, the measured stall of
``.item()`` every step, copies from pageable memory, a starved GPU, the step breakdown on CUDA,
and the default-mode overhead on a CUDA training loop. Prints one line per check with the
measured figures and writes them all to ``$OUT/gpu_checks_bottlenecks.json`` (or the current
directory). Exit status 0 when every check passed, 1 otherwise, 2 without CUDA.

Needs torch with CUDA and nvidia-ml-py (``pip install -e ".[gpu]"``) for the NVML checks.

    python benchmarks/gpu_checks_bottlenecks.py [--pairs 3] [--skip-overhead]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "pathologies"
Check = Callable[[dict[str, Any]], tuple[bool, dict[str, Any]]]


def profile(name: str, target: list[str], out_root: Path) -> dict[str, Any]:
    """Run ``dldoctor profile`` on ``target``; return report.json plus the wall time."""
    out = out_root / name
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dldoctor", "profile", "-q", "--out", str(out),
                           *target], cwd=REPO, capture_output=True, text=True, timeout=900)
    report = json.loads((out / "report.json").read_text())
    report["_wall_s"] = time.perf_counter() - start
    report["_returncode"] = proc.returncode
    report["_stderr_tail"] = proc.stderr[-2000:]
    return report


def findings(report: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    """Return the report's findings of ``rule``."""
    return [f for f in report["findings"] if f["rule"] == rule]


def strong(report: dict[str, Any]) -> list[str]:
    """Return 'rule (severity)' of every warning-or-worse finding."""
    return [f"{f['rule']} ({f['severity']})" for f in report["findings"] if f["severity"] != "info"]


def breakdown_figures(report: dict[str, Any]) -> dict[str, Any]:
    """Return the step breakdown's shares and how well it adds up to the step marks."""
    run, breakdown = report["run"], report["run"]["breakdown"]
    times = run["steps"]["times"]
    window = times[-1] - times[0] if len(times) > 1 else 0.0
    total = sum(breakdown["totals_s"])
    shares = {p: round(s / total, 4) for p, s in zip(breakdown["phases"], breakdown["totals_s"])
              } if total else {}
    return {"cuda": breakdown["cuda"], "steps": breakdown["steps"], "shares": shares,
            "sum_vs_window": round(total / window, 4) if window else None}


def check_sync(report: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    found = findings(report, "host-device-sync")
    ev = found[0]["evidence"] if found else {}
    figures = {"severity": [f["severity"] for f in found], "stall_s": ev.get("stall_s"),
               "stall_share": ev.get("stall_share"), "calls_per_step": ev.get("calls_per_step"),
               "measured": ev.get("measured"), **breakdown_figures(report)}
    return bool(found) and ev.get("measured") is True and (ev.get("stall_s") or 0) > 0, figures


def check_sync_clean(report: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    return not findings(report, "host-device-sync") and not strong(report), {
        "strong": strong(report), "syncs": report["run"]["breakdown"]["syncs"][:5]}


def check_transfer(report: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    found = findings(report, "host-device-transfer")
    sites = [s for s in report["run"]["breakdown"]["transfers"] if s["kind"] == "h2d"]
    figures = {"severity": [f["severity"] for f in found],
               "evidence": found[0]["evidence"] if found else None,
               "h2d_sites": sites[:4], **breakdown_figures(report)}
    return bool(found) and bool(sites), figures


def check_transfer_clean(report: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    sites = report["run"]["breakdown"]["transfers"]
    ok = not findings(report, "host-device-transfer") and not strong(report)
    return ok, {"strong": strong(report), "transfers": sites[:4]}


def check_starved(report: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    gpu = report["run"]["gpu"]
    found = findings(report, "gpu-underutilization")
    figures = {"nvml": gpu["available"], "reason": gpu["reason"],
               "devices": [{"index": d["index"], "name": d["name"], "used": d["used"],
                            "samples": len(d["samples"])} for d in gpu["devices"]],
               "severity": [f["severity"] for f in found],
               "evidence": found[0]["evidence"] if found else None,
               "dataloader": [f["severity"] for f in findings(report, "dataloader-bottleneck")],
               **breakdown_figures(report)}
    used = any(d["used"] and d["samples"] for d in gpu["devices"])
    return gpu["available"] and used and bool(found), figures


def check_busy(report: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    gpu = report["run"]["gpu"]
    util = [row[1] for d in gpu["devices"] if d["used"] for row in d["samples"]]
    mean = sum(util) / len(util) if util else None
    ok = gpu["available"] and not findings(report, "gpu-underutilization") and not strong(report)
    return ok, {"mean_util_pct": mean, "samples": len(util), "strong": strong(report)}


def check_reference(report: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    figures = {"strong": strong(report), **breakdown_figures(report),
               "syncs": report["run"]["breakdown"]["syncs"][:3],
               "transfers": report["run"]["breakdown"]["transfers"][:3]}
    ratio = figures["sum_vs_window"]
    ok = (report["_returncode"] == 0 and not figures["strong"] and figures["cuda"]
          and ratio is not None and abs(ratio - 1) <= 0.10)
    return ok, figures


CHECKS: list[tuple[str, list[str], Check]] = [
    ("sync-item", [str(FIXTURES / "host-device-sync" / "item_every_step.py")], check_sync),
    ("sync-metrics", [str(FIXTURES / "host-device-sync" / "metrics_every_step.py")], check_sync),
    ("sync-clean", [str(FIXTURES / "host-device-sync" / "clean_log_every_n.py")],
     check_sync_clean),
    ("transfer-pageable", [str(FIXTURES / "host-device-transfer" / "gpu_pageable_batches.py")],
     check_transfer),
    ("transfer-same", [str(FIXTURES / "host-device-transfer" / "constant_in_loop.py")],
     check_transfer),
    ("transfer-clean", [str(FIXTURES / "host-device-transfer" / "clean_move_once.py")],
     check_transfer_clean),
    ("gpu-starved", [str(FIXTURES / "gpu-underutilization" / "gpu_starved.py")], check_starved),
    ("gpu-busy", [str(FIXTURES / "gpu-underutilization" / "clean_gpu_busy.py")], check_busy),
    ("ref-torch-mlp", ["-m", "reference_models.torch_mlp", "--", "--device", "cuda"],
     check_reference),
    ("ref-torch-cnn", ["-m", "reference_models.torch_cnn", "--", "--device", "cuda"],
     check_reference),
]


def overhead(pairs: int) -> dict[str, Any]:
    """Return the interleaved instrumented/plain ratio of torch_mlp's train_seconds on CUDA."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from torch_overhead import e2e_ratio

    return e2e_ratio(pairs, "cuda")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--only", action="append", help="run only these checks")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check here")
        return 2
    out_root = Path(os.environ.get("OUT", "."))
    results: dict[str, Any] = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    print(f"device: {results['device']}  torch {results['torch']}")
    passed = True
    for name, target, check in CHECKS:
        if args.only and name not in args.only:
            continue
        report = profile(name, target, out_root / "runs")
        ok, figures = check(report)
        ok = ok and report["_returncode"] == 0
        passed &= ok
        results[name] = {"ok": ok, "wall_s": round(report["_wall_s"], 2), **figures}
        if report["_returncode"]:
            results[name]["stderr"] = report["_stderr_tail"]
        print(f"{'PASS' if ok else 'FAIL'} {name:<18} {json.dumps(figures, default=str)[:600]}")
    if not args.skip_overhead:
        results["overhead"] = overhead(args.pairs)
        print(f"overhead torch_mlp cuda: {results['overhead']}")
    (out_root / "gpu_checks_bottlenecks.json").write_text(json.dumps(results, indent=1,
                                                                      default=str))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
