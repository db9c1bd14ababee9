"""Where default-mode dldoctor's cost goes, measured inside one profiled run (no plain run).

The interleaved runs of ``overhead.py`` compare whole runs; on this shared 2-core machine the
host's speed drifts by tens of percent over seconds (the median step of one plain torch-mlp
run moved from 2.1 to 3.4 ms between quarter-seconds), so a 1 % cost drowns in it. This
benchmark compares steps of the *same* run, milliseconds apart, where the drift is the same
for both. For each of dldoctor's periodic interruptions (the sampler's ticks, read from the
report's sample timeline; the memory collector's censuses, from its ``heap.censuses``) it
takes

- the steps during which one happened (the steps are the ``optimizer.step`` calls dldoctor
  records, or ``dldoctor.step()`` marks), and
- the steps that held a *phantom* instead: a point half a sampling interval (a quarter-second
  for a census) after each real one. A point at a random moment lands more often in a long
  step than in a short one, so "steps with a tick" are longer even when a tick costs
  nothing; the phantoms pick steps with the same bias, without a tick in them.

The difference of their means (both cut at the 99th percentile of the two together, against
the host's rare hiccups) is the step time one interruption costs, the stalls it causes
included (the main thread waiting for the GIL while the sampler holds it, a pool thread
pushed off its core); times their count over the stepping time, its share of the run. The
torch step hooks' timed steps (past the first 50, drawn at random) are compared with the
untimed ones directly. Steps must be much shorter than the 10 ms sampling interval
(torch-mlp: ~2.5 ms), and a tick must fall at a random moment of a step: not so in a
program whose threads pass the GIL around (threaded-mlp on 256-sample batches, 3 ms steps,
gave 0.9-2.4 ms a tick, 10-21 % of the run, while its whole-run ratio is ~1.1): a tick runs
when it gets the GIL, at a phase of the step that is not random.
Not measured: a cost every step pays alike (the step mark), which the median-step ratio of
``overhead.py`` shows, and the agent's flush once a second (~1 ms).

    python benchmarks/overhead_parts.py [--runs 5] [--workload torch-mlp] [PROFILE OPTIONS]
    python benchmarks/overhead_parts.py --rate 50
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import statistics
import subprocess
import tempfile
from pathlib import Path

from interleave import command
from overhead import WORKLOADS as ALL_WORKLOADS

from dldoctor.collectors.torch_steps import WARM_STEPS  # the first steps, all timed

CENSUS_OFFSET_S = 0.25
LATE = 1.1
# overhead.py's workloads whose steps dldoctor records and that are short enough
WORKLOADS = {name: ALL_WORKLOADS[name] for name in ("torch-mlp", "torch_train")}


def tick_times(samples: dict) -> list[float]:
    """Return the start time of every tick in the report's sample timeline (one per tick)."""
    if samples.get("timeline_stride", 1) != 1:
        raise SystemExit("the timeline was thinned: run a shorter workload")
    return sorted({row[0] for row in samples["timeline"]})


def on_time(ticks: list[float], interval: float) -> list[float]:
    """Return the ticks that came at most 10 % late. A tick due while the host had stopped
    the machine (a stall of the step in progress) runs as soon as it resumes, so it lands in
    the stalled step: counting it would charge the host's stall to the tick."""
    return [b for a, b in zip(ticks, ticks[1:]) if b - a <= LATE * interval]


def split_steps(starts: list[float], ticks: list[float], phantoms: list[float]
                ) -> tuple[list[float], list[float]]:
    """Return the durations of the steps holding a tick, and of those holding a phantom tick
    and no real one."""
    ticked, phantom = [], []
    for a, b in zip(starts, starts[1:]):
        if bisect.bisect_left(ticks, a) != bisect.bisect_left(ticks, b):
            ticked.append(b - a)
        elif bisect.bisect_left(phantoms, a) != bisect.bisect_left(phantoms, b):
            phantom.append(b - a)
    return ticked, phantom


def trimmed_mean(values: list[float], pooled: list[float]) -> float:
    """Return the mean of ``values`` without those above the 99th percentile of ``pooled``
    (both groups together): one 50 ms hiccup of the host, landing in either group by chance,
    would move a mean of 300 steps by 170 us."""
    cut = sorted(pooled)[int(0.99 * (len(pooled) - 1))] if len(pooled) >= 100 else math.inf
    kept = [v for v in values if v <= cut]
    return statistics.mean(kept) if kept else float("nan")


def event_cost(starts: list[float], events: list[float], offset: float) -> float:
    """Return the step time one event at ``events`` (all within the steps) costs, its phantom
    ``offset`` later."""
    ticked, phantom = split_steps(starts, events, [t + offset for t in events])
    if not ticked or not phantom:
        return float("nan")
    return trimmed_mean(ticked, ticked + phantom) - trimmed_mean(phantom, ticked + phantom)


def timed_step_cost(starts: list[float], rows: list[list[float]]) -> tuple[float, int]:
    """Return (what a step timed by the torch step hooks costs over an untimed one, timed
    steps counted). Past the first ``WARM_STEPS`` (all timed) the timed steps are drawn at
    random, so no length bias: the mean of the timed steps against that of the others, over
    the same stretch."""
    ends = {round(row[0], 6) for row in rows}  # a row's time is the end mark of its step
    timed, untimed = [], []
    for a, b in list(zip(starts, starts[1:]))[WARM_STEPS:]:
        (timed if round(b, 6) in ends else untimed).append(b - a)
    if not timed or not untimed:
        return float("nan"), len(timed)
    return statistics.mean(timed) - statistics.mean(untimed), len(timed)


def estimate(report: dict) -> dict[str, float]:
    """Return what a tick, a census and a timed step each cost the steps, how many there
    were, and their shares of the stepping time."""
    run = report["run"]
    starts = run["steps"]["times"]
    if run["steps"].get("stride", 1) != 1 or len(starts) < 200:
        raise SystemExit("the run recorded too few steps (or thinned them)")
    interval = run["samples"]["interval_s"]
    span = starts[-1] - starts[0]

    def within(times: list[float]) -> list[float]:
        return [t for t in times if starts[0] <= t < starts[-1]]

    ticks = within(tick_times(run["samples"]))
    punctual = on_time(ticks, interval)
    tick = event_cost(starts, punctual, interval / 2)
    # a census every ~0.5 s; its phantom a quarter-second off, clear of the next one
    censuses = within(run["heap"]["censuses"])
    census = event_cost(starts, censuses, CENSUS_OFFSET_S) if censuses else float("nan")
    timed, timed_steps = timed_step_cost(starts, run["breakdown"].get("rows", []))
    return {"cost_us": tick * 1e6, "share": tick * len(ticks) / span,
            "ticks_per_s": len(ticks) / span, "on_time": len(punctual) / max(len(ticks), 1),
            "census_us": census * 1e6, "census_share": census * len(censuses) / span,
            "censuses": len(censuses),
            "timed_us": timed * 1e6, "timed_share": timed * timed_steps / span,
            "timed_steps": timed_steps,
            "step_us": statistics.median(b - a for a, b in zip(starts, starts[1:])) * 1e6}


def profiled_report(script: Path, args: list[str], options: list[str]) -> dict:
    """Run the workload under ``dldoctor profile`` and return its report.json."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = command(script, args, options, Path(tmp))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return json.loads((Path(tmp) / "report.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="torch-mlp")
    args, options = parser.parse_known_args()  # the rest: `dldoctor profile` options
    script, wargs = WORKLOADS[args.workload]
    rows = []
    for i in range(args.runs):
        r = estimate(profiled_report(script, wargs, options))
        rows.append(r)
        print(f"run {i + 1}: median step {r['step_us']:.0f} us, {r['ticks_per_s']:.0f} ticks/s "
              f"({100 * r['on_time']:.0f} % on time), "
              f"a tick costs the steps {r['cost_us']:.0f} us: {100 * r['share']:.2f} % of the "
              f"run; {r['censuses']} censuses, {r['census_us']:.0f} us each: "
              f"{100 * r['census_share']:.2f} %; {r['timed_steps']} timed steps, "
              f"{r['timed_us']:.0f} us each: {100 * r['timed_share']:.2f} %", flush=True)
    print(f"{args.workload} ({args.runs} runs, medians): a tick costs "
          f"{statistics.median(r['cost_us'] for r in rows):.0f} us, the sampler "
          f"{100 * statistics.median(r['share'] for r in rows):.2f} % of the run; a census "
          f"{statistics.median(r['census_us'] for r in rows):.0f} us, the censuses "
          f"{100 * statistics.median(r['census_share'] for r in rows):.2f} %; a timed step "
          f"{statistics.median(r['timed_us'] for r in rows):.0f} us, the timed steps "
          f"{100 * statistics.median(r['timed_share'] for r in rows):.2f} %")


if __name__ == "__main__":
    main()
