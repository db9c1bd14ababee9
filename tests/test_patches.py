"""Reversible patches (``dldoctor.collectors.patches``): the torch-step hooks come and go between
steps, next to other collectors' and users' own wrappers."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from dldoctor.collectors.patches import Patch


def tagging(tag: str, calls: list[str]) -> Callable[[Any], Any]:
    def make(function: Any) -> Any:
        def wrapper(*args: Any) -> Any:
            calls.append(tag)
            return function(*args)
        return wrapper
    return make


def patched_module() -> tuple[Any, Patch, list[str]]:
    """A module whose ``g`` our patch wraps (applied), and the list the wrappers append to."""
    module = types.ModuleType("m")
    module.g = lambda: "x"  # type: ignore[attr-defined]
    calls: list[str] = []
    ours = Patch(module, "g", tagging("ours", calls))
    ours.apply()
    return module, ours, calls


class Base:
    def f(self) -> str:
        return "base"


def test_an_inherited_method_is_inherited_again_after_removal() -> None:
    class Child(Base):
        pass

    calls: list[str] = []
    patch = Patch(Child, "f", tagging("ours", calls))
    patch.apply()
    assert Child().f() == "base" and calls == ["ours"]
    assert patch.remove() and "f" not in vars(Child)
    assert Child().f() == "base" and calls == ["ours"]
    Base.f = lambda self: "changed"  # type: ignore[method-assign]
    try:
        assert Child().f() == "changed"  # not pinned to the old one
    finally:
        del Base.f
        Base.f = lambda self: "base"  # type: ignore[method-assign]


def test_own_attribute_is_restored_and_the_wrapper_reused() -> None:
    module = types.ModuleType("m")
    module.g = lambda: 1  # type: ignore[attr-defined]
    original = module.g  # type: ignore[attr-defined]
    made: list[int] = []

    def make(function: Any) -> Any:
        made.append(1)
        return lambda: function() + 10

    patch = Patch(module, "g", make)
    for _ in range(3):
        patch.apply()
        assert module.g() == 11  # type: ignore[attr-defined]
        assert patch.remove() and module.g is original  # type: ignore[attr-defined]
    assert len(made) == 1  # built once while the attribute stayed the same


def test_a_wrapper_put_on_top_of_ours_keeps_ours_in_place() -> None:
    module, ours, calls = patched_module()
    module.g = tagging("theirs", calls)(module.g)  # type: ignore[attr-defined]
    assert not ours.remove() and ours.applied  # taking ours out would drop theirs
    module.g()  # type: ignore[attr-defined]
    assert calls == ["theirs", "ours"]


def test_reapplying_wraps_what_others_installed_meanwhile() -> None:
    module, ours, calls = patched_module()
    assert ours.remove()
    module.g = tagging("theirs", calls)(module.g)  # type: ignore[attr-defined]
    ours.apply()
    assert module.g() == "x" and calls == ["ours", "theirs"]  # type: ignore[attr-defined]
    assert ours.remove()
    module.g()  # type: ignore[attr-defined]
    assert calls == ["ours", "theirs", "theirs"]


def test_as_caller_makes_a_call_look_like_the_callers_own() -> None:
    import sys
    import warnings

    from dldoctor.collectors.callas import as_caller

    def warns() -> int:
        warnings.warn("careful", UserWarning, stacklevel=2)  # blames its caller
        return 7

    def user() -> tuple[int, int]:
        line = sys._getframe().f_lineno + 1
        return as_caller(sys._getframe())(warns), line

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value, line = user()
    assert value == 7
    assert (caught[0].filename, caught[0].lineno) == (__file__, line)
    call = as_caller(sys._getframe())
    assert call.__code__.co_name == sys._getframe().f_code.co_name
    assert call.__globals__ is globals()  # the caller's module: its filters and registry
    made = [as_caller(sys._getframe()) for _ in range(3)]
    assert made[0] is made[1] is made[2]  # one per call site


def test_stack_sampler_and_census_leave_call_shims_out() -> None:
    """A shim carries the caller's file and function name; profiles must not show the caller
    twice, nor the shim's arguments as the caller's variables."""
    import sys

    from dldoctor.collectors.callas import as_caller
    from dldoctor.collectors.retention import Census
    from dldoctor.collectors.sampler import StackSampler

    sampler = StackSampler(0.01, crop_root=False)
    seen: list[list[str]] = []

    def inside() -> None:
        sampler.sample()
        census = Census({0: sys._getframe()})
        seen.append([f.f_code.co_name for f in census._user_frames()])

    def caller() -> None:
        as_caller(sys._getframe())(inside)

    caller()
    record = sampler.drain()
    frames = record["frames"]
    mine = [f for f in frames if f["file"] == __file__]
    names = [f["function"] for f in mine]
    assert names.count("test_stack_sampler_and_census_leave_call_shims_out.<locals>.caller") == 1
    assert any(n.endswith("<locals>.inside") for n in names)
    stack = next(s for s in record["stacks"]
                 if any(frames[s[i]]["function"].endswith("<locals>.inside")
                        for i in range(0, len(s), 2)))
    functions = [frames[stack[i]]["function"] for i in range(0, len(stack), 2)]
    at = next(i for i, f in enumerate(functions) if f.endswith("<locals>.inside"))
    assert functions[at - 1].endswith("<locals>.caller")  # right below, no shim between
    assert functions.count(functions[at - 1]) == 1
    assert seen[0].count("caller") == 1
