"""The torch step breakdown times only some steps once training is fast (its hooks cost ~40 µs
a timed step); untimed steps move the baseline and never pollute the timed ones."""

from __future__ import annotations

import pytest

from dldoctor.collectors.phases import FORWARD, PhaseClock, SiteTable, StepWindows
from tests.conftest import FakeClock


def test_untimed_steps_only_move_the_baseline() -> None:
    clock = FakeClock()
    phases = PhaseClock(clock)
    windows = StepWindows(phases, [SiteTable(2)])
    windows.mark("optimizer", 0.0)
    for step in range(1, 7):
        timed = step % 3 == 0
        if timed:
            phases.enter(FORWARD)
            clock.now += 0.004
            phases.exit(FORWARD)
            clock.now += 0.006
        else:
            clock.now += 0.1  # slow untimed steps must not show up anywhere
            phases.reset(clock.now)
        windows.mark("optimizer", clock.now, timed=timed)
    (record,) = windows.records()
    assert record["steps"] == 2
    assert record["duration_s"] == pytest.approx(0.02)
    assert record["phase_s"][FORWARD] == pytest.approx(0.008)
    assert [round(row[1], 6) for row in record["rows"]] == [0.01, 0.01]


def test_fast_training_is_sampled(write_script, profile) -> None:
    pytest.importorskip("torch")
    script = write_script("fast.py", """
        import torch
        model = torch.nn.Linear(8, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        x = torch.randn(4, 8)
        for _ in range(600):
            opt.zero_grad()
            model(x).sum().backward()
            opt.step()
    """)
    run = profile(script, options=("-q",)).report()["run"]
    assert run["steps"]["count"] == 600
    breakdown = run["breakdown"]
    assert breakdown["available"] and breakdown["source"] == "optimizer"
    assert 50 <= breakdown["steps"] < 300  # all warm-up steps, then one in k
    assert sum(breakdown["totals_s"]) == pytest.approx(breakdown["duration_s"], rel=0.1)
