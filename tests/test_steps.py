"""Step marks: ``dldoctor.step()``, automatic torch optimizer steps, and no torch import by us."""

from __future__ import annotations

import pytest


def test_torch_optimizer_steps_are_counted(write_script, profile) -> None:
    pytest.importorskip("torch")
    script = write_script("opt.py", """
        import torch
        model = torch.nn.Linear(4, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(25):
            opt.zero_grad()
            model(torch.randn(8, 4)).sum().backward()
            opt.step()
    """)
    steps = profile(script, options=("-q",)).report()["run"]["steps"]
    assert steps["source"] == "optimizer" and steps["count"] == 25
    assert len(steps["times"]) == 25


def test_explicit_steps_win_over_optimizer_steps(write_script, profile) -> None:
    pytest.importorskip("torch")
    script = write_script("both.py", """
        import torch, dldoctor
        model = torch.nn.Linear(4, 1)
        opt = torch.optim.Adam(model.parameters())
        for _ in range(10):
            for _ in range(2):
                model(torch.randn(8, 4)).sum().backward()
                opt.step()
            dldoctor.step()
    """)
    steps = profile(script, options=("-q",)).report()["run"]["steps"]
    assert steps["source"] == "explicit" and steps["count"] == 10


def test_dldoctor_does_not_import_torch_into_the_target(write_script, profile) -> None:
    script = write_script("notorch.py", """
        import sys
        print("torch" in sys.modules, "numpy" in sys.modules)
    """)
    assert profile(script, options=("-q",)).stdout == b"False False\n"


def test_steps_of_a_target_without_torch_call_no_collector(write_script, profile) -> None:
    """A NumPy target's steps may last ~100 us: until torch is imported, a step mark must not
    call into the torch-step or device-memory collectors (they once cost ~3 % of such a run)."""
    torch = pytest.importorskip("torch")
    script = write_script("listeners.py", """
        import dldoctor
        from dldoctor.collectors import steps
        def listeners():
            recorder = steps._recorder
            return sorted(l.__func__.__qualname__ for l in recorder.listeners)
        dldoctor.step()
        print(listeners())
        import torch
        print(listeners())
    """)
    result = profile(script, options=("-q",))
    # device-memory readings at step ends only where torch was built for a GPU
    with_torch = ["HeapCollector._on_step"] if torch.version.cuda or torch.version.hip else []
    assert result.stdout.decode().splitlines() == [
        "[]", str(sorted([*with_torch, "TorchSteps._on_mark"]))]


def test_until_imports_recomputes_only_when_modules_are_loaded() -> None:
    import sys
    import types

    from dldoctor.collectors.imports import until_imports

    calls: list[int] = []

    @until_imports
    def count() -> int:
        calls.append(1)
        return len(calls)

    assert count() == count() == 1
    sys.modules["_dldoctor_test_new_module"] = types.ModuleType("_dldoctor_test_new_module")
    try:
        assert count() == count() == 2
    finally:
        del sys.modules["_dldoctor_test_new_module"]
    assert count() == 3
