"""Report size and render time for a simulated one-hour run (DESIGN.md §6: report.json +
report.html <= 5 MB, render < 2 s).

Streams one hour of agent records (100 Hz samples of 3 threads over 2,000 distinct stacks,
300 steps/s, memory at 10 Hz) through the same Decimators and RunBuilder the real pipeline uses,
then renders every output and prints sizes and times.

    python benchmarks/report_size.py [--hours 1]
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import replace

from dldoctor.collectors.bounded import Decimator
from dldoctor.collectors.memory import POINT_CAP
from dldoctor.collectors.sampler import TIMELINE_CAP
from dldoctor.collectors.steps import STEP_CAP
from dldoctor.render import RENDERERS
from dldoctor.run import Memory, MemoryPoint, Report, Run
from dldoctor.runner.builder import RunBuilder

RATE, THREADS, STACKS, STEPS_PER_S = 100, 3, 2_000, 300


def simulate(seconds: int) -> Run:
    """Return a Run built from ``seconds`` of synthetic agent records."""
    rng = random.Random(0)
    builder = RunBuilder()
    frames = [{"file": f"/proj/module_{i % 40}.py", "function": f"function_{i}", "line": i,
               "kind": "user" if i % 3 else "library"} for i in range(400)]
    stacks = [[v for depth in range(12) for v in (rng.randrange(400), rng.randrange(1, 500))]
              for _ in range(STACKS)]
    timeline: Decimator[list[float]] = Decimator(TIMELINE_CAP)
    steps: Decimator[float] = Decimator(STEP_CAP)
    memory: Decimator[MemoryPoint] = Decimator(POINT_CAP)
    for second in range(seconds):
        counts: dict[tuple[int, int], int] = {}
        for tick in range(RATE):
            t = second + tick / RATE
            for thread in range(THREADS):
                stack = rng.randrange(STACKS)
                counts[(thread, stack)] = counts.get((thread, stack), 0) + 1
                timeline.offer([round(t, 4), thread, stack])
            if tick % 10 == 0:
                memory.offer(MemoryPoint(round(t, 4), 2**30 + second * 1000, None, 2))
        for k in range(STEPS_PER_S):
            steps.offer(round(second + k / STEPS_PER_S, 6))
        builder.feed([
            {"type": "samples", "interval_s": 1 / RATE, "ticks": RATE,
             "frames": frames if second == 0 else [], "stacks": stacks if second == 0 else [],
             "threads": [{"id": i, "name": f"t{i}", "main": i == 0} for i in range(THREADS)]
             if second == 0 else [],
             "counts": [[th, st, n, n * 0.01] for (th, st), n in counts.items()],
             "timeline": timeline.take(), "timeline_stride": timeline.stride},
            {"type": "steps", "source": "explicit", "count": STEPS_PER_S,
             "times": steps.take(), "stride": steps.stride},
        ])
    mem = Memory(points=memory.items, peak_rss=2**31)
    return replace(Run(samples=builder.samples(), steps=builder.steps()), memory=mem)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    args = parser.parse_args()
    start = time.perf_counter()
    run = simulate(int(args.hours * 3600))
    print(f"simulated {args.hours:g} h in {time.perf_counter() - start:.1f} s")
    report = Report(run=run)
    sizes = {}
    for name in ("json", "html", "trace"):
        start = time.perf_counter()
        text = RENDERERS[name]().render(report)
        sizes[name] = len(text.encode())
        print(f"{name:<6} {sizes[name] / 2**20:7.2f} MiB  rendered in "
              f"{time.perf_counter() - start:.2f} s")
    start = time.perf_counter()
    Report.from_json(RENDERERS["json"]().render(report))
    print(f"load   report.json back in {time.perf_counter() - start:.2f} s")
    total = (sizes["json"] + sizes["html"]) / 2**20
    print(f"report.json + report.html = {total:.2f} MiB (budget 5 MiB): "
          f"{'ok' if total <= 5 else 'OVER'}")


if __name__ == "__main__":
    main()
