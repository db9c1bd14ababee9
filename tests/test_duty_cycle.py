"""The torch step breakdown times only some steps once training is fast (its hooks cost ~40 µs
a timed step); untimed steps move the baseline and never pollute the timed ones."""

from __future__ import annotations

import pytest

from dldoctor.collectors.phases import FORWARD, PhaseClock, SiteTable, StepWindows
from tests.conftest import FakeClock, run_plain


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


def test_untimed_steps_run_with_torch_unpatched(write_script, profile) -> None:
    """The step hooks are in place in the timed steps only: the other steps run torch's own
    functions with no wrapper of dldoctor's in between (Tensor's methods excepted: their
    descriptors stay from the first step on, as changing a class costs every attribute
    lookup)."""
    pytest.importorskip("torch")
    script = write_script("unpatched.py", """
        import torch
        backward = torch.autograd.backward
        model = torch.nn.Linear(8, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        x = torch.randn(4, 8)
        patched, lasting = [], []
        for _ in range(600):
            patched.append(torch.autograd.backward is not backward)
            lasting.append("to" in vars(torch.Tensor))  # inherited from TensorBase before
            opt.zero_grad()
            model(x).sum().backward()
            opt.step()
        print("PATCHED", sum(patched), patched[0], all(patched[1:50]), lasting[0], all(lasting[1:]))
    """)
    result = profile(script, options=("-q",))
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    count, first, warm, first_lasting, lasting = result.stdout.decode().split()[1:]
    assert first == first_lasting == "False"  # nothing before the first step mark
    assert warm == lasting == "True"  # in place from the first step mark on
    assert 50 <= int(count) < 300
    run = result.report()["run"]
    assert run["breakdown"]["steps"] == int(count)  # the steps timed are the patched ones


WARNING_SCRIPT = """
    import sys
    import warnings

    import torch

    torch.set_warn_always(True)  # torch's warn-once warnings on every call
    if "--always" in sys.argv:
        warnings.simplefilter("always")
    w = torch.randn(3, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.01)
    for step in range(400):
        loss = (w * 2).sum()
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step % 7 == 0:
            value = float(loss)  # warns: a tensor that requires grad made a Python scalar
        if step % 11 == 0:
            value = loss.item()
        if step % 13 == 0:
            value = f"{loss:.3f}"
    print("done")
"""


@pytest.mark.parametrize("always", [False, True])
def test_warnings_raised_inside_hooked_tensor_methods_name_the_users_line(
        write_script, profile, always: bool) -> None:
    """A warning raised inside a Tensor method dldoctor hooks (timed steps and untimed) is
    printed exactly as without dldoctor: at the user's line, once per line by default."""
    pytest.importorskip("torch")
    script = write_script("warns.py", WARNING_SCRIPT)
    args = ["--always"] if always else []
    plain = run_plain(script, *args, timeout=120)
    result = profile(script, *args, options=("-q",))
    assert result.returncode == plain.returncode == 0, result.stderr.decode()[-2000:]
    assert f"{script.name}:18: UserWarning" in plain.stderr.decode()  # the case is real
    assert result.stdout == plain.stdout
    assert result.stderr == plain.stderr
    syncs = result.report()["run"]["breakdown"]["syncs"]
    assert {s["line"] for s in syncs} >= {18, 20}  # timed calls went through the hooks too
