"""GPU checks of the memory collector, for a machine with a CUDA device (run by hand there).

1. the CUDA leak fixture (a list of device tensors) gives a `memory-leak` finding on the device
   memory, at the line that appends, with CUDA allocator readings in the Run;
2. the clean CUDA training fixture gives no memory finding of warning or above;
3. the default memory collection's overhead on a CUDA training loop, interleaved
   (`--memory off` vs default, median of ELAPSED ratios).

    python benchmarks/gpu_checks_memory.py [--rounds 5]

Exits 1 if a check fails, 2 if there is no CUDA device.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "pathologies" / "memory-leak"
LEAK_LINE = 25  # all_outputs.append(out.detach())
WORKLOAD = """
import sys, time, torch
from torch import nn
model = nn.Sequential(nn.Linear(1024, 4096), nn.ReLU(), nn.Linear(4096, 1024)).cuda()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
x = torch.randn(512, 1024, device="cuda")
torch.cuda.synchronize()
start = time.perf_counter()
for _ in range(int(sys.argv[1])):
    loss = model(x).pow(2).mean()
    opt.zero_grad(); loss.backward(); opt.step()
torch.cuda.synchronize()
print(f"ELAPSED {time.perf_counter() - start:.4f}")
"""


def profile(script: Path, out: Path, *options: str) -> dict:
    """Run `dldoctor profile` on ``script``; return its report.json."""
    subprocess.run([sys.executable, "-m", "dldoctor", "profile", "-q", "--out", str(out),
                    *options, str(script)], check=True, capture_output=True)
    return json.loads((out / "report.json").read_text())


def check_leak(tmp: Path) -> bool:
    report = profile(FIXTURES / "cuda_tensor_list.py", tmp / "leak")
    heap = report["run"]["heap"]
    found = [f for f in report["findings"] if f["rule"] == "memory-leak"]
    print(f"CUDA readings: {len(heap['device'])}, windows: {heap['windows']}")
    for f in found:
        print(f"  {f['severity']} {f['title']} at {f['location']}\n    {f['message']}")
    ok = bool(heap["device"]) and bool(found) and found[0]["evidence"].get("memory") == "device" \
        and (found[0]["location"] or {}).get("line") == LEAK_LINE
    print(f"[{'ok' if ok else 'FAIL'}] CUDA leak found on the device at line {LEAK_LINE}")
    return ok


def check_clean(tmp: Path) -> bool:
    report = profile(FIXTURES / "clean_cuda_training.py", tmp / "clean")
    loud = [f for f in report["findings"] if f["rule"] in ("memory-leak", "no-grad-inference")
            and f["severity"] != "info"]
    for f in loud:
        print(f"  {f['severity']} {f['title']}")
    print(f"[{'ok' if not loud else 'FAIL'}] clean CUDA training has no memory warning")
    return not loud


def elapsed(script: Path, tmp: Path, memory: str | None, steps: int) -> float:
    cmd = [sys.executable, str(script), str(steps)]
    if memory is not None:
        cmd = [sys.executable, "-m", "dldoctor", "profile", "-q", "--out", str(tmp / memory),
               "--memory", memory, str(script), str(steps)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    match = re.search(r"ELAPSED ([0-9.]+)", out)
    assert match is not None, out
    return float(match.group(1))


def overhead(tmp: Path, rounds: int, steps: int = 300) -> None:
    script = tmp / "cuda_train.py"
    script.write_text(WORKLOAD)
    elapsed(script, tmp, None, steps)  # warm-up
    ratios, totals = [], []
    for i in range(rounds):
        order = ("off", "default") if i % 2 == 0 else ("default", "off")
        t = {m: elapsed(script, tmp, m, steps) for m in order}
        plain = elapsed(script, tmp, None, steps)
        ratios.append(t["default"] / t["off"])
        totals.append(t["default"] / plain)
    print(f"CUDA training overhead: memory collector alone {statistics.median(ratios):.3f} "
          f"({min(ratios):.3f}..{max(ratios):.3f}); all of dldoctor "
          f"{statistics.median(totals):.3f} (budget 1.05)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device")
        return 2
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        ok = check_leak(tmp) & check_clean(tmp)
        overhead(tmp, args.rounds)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
