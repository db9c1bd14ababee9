"""Memory: the growth test, the census of the user's variables, allocation tracing, the two rules
on hand-built Runs, and end to end ``memory-leak``/``no-grad-inference`` on the fixtures in
``tests/pathologies/`` (planted leaks with their line, clean controls with big stable memory)."""

from __future__ import annotations

import collections
import functools
import json
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from pathlib import Path

import pytest

from dldoctor.analyzers.memory import MemoryLeak, NoGradInference
from dldoctor.collectors.allocations import TraceWindow, innermost_user
from dldoctor.collectors.heap import GrowthWatch, build_heap
from dldoctor.collectors.retention import Census
from dldoctor.collectors.sites import assignment_sites, growth_sites
from dldoctor.collectors.torch_memory import blocks_by_line
from dldoctor.findings import WARNING
from dldoctor.growth import Span, analysis_span, series_growth, theil_sen
from dldoctor.run import (
    GradObservation,
    Heap,
    HeapRoot,
    HeapSite,
    Memory,
    MemoryPoint,
    Report,
    Run,
    Steps,
)

PATHOLOGIES = Path(__file__).parent / "pathologies"
MIB = 1 << 20
MEMORY_RULES = {"memory-leak", "no-grad-inference"}


# -- the growth test ---------------------------------------------------------------------------
def test_theil_sen_ignores_an_outlier() -> None:
    xs = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    ys = [0.0, 2.0, 4.0, 600.0, 8.0, 10.0]
    slope, intercept = theil_sen(xs, ys)
    assert slope == pytest.approx(2.0) and intercept == pytest.approx(0.0)


def _series(fn, seconds: float = 10.0, rate: float = 10.0) -> list[tuple[float, float]]:
    return [(i / rate, fn(i / rate)) for i in range(int(seconds * rate))]


def test_steady_growth_is_significant_with_its_rate() -> None:
    span = Span(0.0, 10.0, "steps", steps=1000, marks=tuple(i / 100 for i in range(1, 1001)))
    g = series_growth(_series(lambda t: 300 * MIB + 4 * MIB * t), span, "host")
    assert g is not None and g.significant
    assert g.slope == pytest.approx(4 * MIB, rel=0.05)
    assert span.per_step(g.slope) == pytest.approx(4 * MIB * 10 / 1000, rel=0.05)


def test_transient_peaks_do_not_count_only_the_floor_does() -> None:
    span = Span(0.0, 10.0, "time")
    # every other reading catches a 200 MiB temporary; what stays is flat
    g = series_growth(_series(lambda t: 300 * MIB + (200 * MIB if int(t * 10) % 2 else 0)),
                      span, "host")
    assert g is not None and not g.significant


def test_warmup_then_plateau_is_not_a_leak() -> None:
    span = Span(0.0, 10.0, "time")
    g = series_growth(_series(lambda t: 300 * MIB + 80 * MIB * min(t, 5.5) / 5.5), span, "host")
    assert g is not None and not g.significant and "levelled off" in g.reason


def test_small_or_noisy_growth_is_not_a_leak() -> None:
    span = Span(0.0, 10.0, "time")
    small = series_growth(_series(lambda t: 300 * MIB + 0.3 * MIB * t), span, "host")
    assert small is not None and not small.significant


def test_too_short_a_span_gives_no_verdict() -> None:
    assert series_growth(_series(lambda t: t * MIB, 0.5), Span(0.0, 0.5, "time"), "host") is None


def test_span_skips_warmup_steps() -> None:
    run = Run(steps=Steps(source="explicit", count=100, times=[1.0 + i * 0.1 for i in range(100)]))
    span = analysis_span(run)
    assert span.basis == "steps" and span.start == pytest.approx(1.0 + 19 * 0.1)
    assert span.steps == 80


def test_growth_is_judged_against_steps_not_time() -> None:
    # 300 fast steps in the first second, then a stall, then 100 slow steps: memory grows
    # 1 MiB per step throughout, so per second it looks like it levels off; per step it does not
    marks = tuple([i / 300 for i in range(1, 301)] + [2 + i / 25 for i in range(1, 101)])
    span = Span(0.0, 6.0, "steps", steps=400, marks=marks)
    points = [(t / 20, 100 * MIB + span.x(t / 20) * MIB) for t in range(0, 121)]
    g = series_growth(points, span, "host")
    assert g is not None and g.significant, g and g.reason
    assert span.per_step(g.slope) == pytest.approx(MIB, rel=0.05)


def test_growth_watch_needs_rises_in_a_row() -> None:
    watch = GrowthWatch(bucket_s=1.0, buckets=3, min_bytes=MIB)
    for t in range(5):
        watch.add(t, 100 * MIB + t * 2 * MIB)
    assert watch.sustained()
    flat = GrowthWatch(bucket_s=1.0, buckets=3, min_bytes=MIB)
    for t in range(5):
        flat.add(t, 100 * MIB + (t % 2) * 2 * MIB)
    assert not flat.sustained()


# -- the census of the user's variables --------------------------------------------------------
def test_census_names_containers_tensorless_and_their_size(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    module = tmp_path / "user_mod.py"
    module.write_text(textwrap.dedent("""
        import functools
        history = []
        class Trainer:
            def __init__(self):
                self.log = {"outputs": [], "n": 0}
        def remember(x, seen=[]):
            seen.append(x)
        @functools.lru_cache(maxsize=None)
        def feature(i):
            return i * 2
    """))
    sys.path.insert(0, str(tmp_path))
    try:
        import user_mod
    finally:
        sys.path.remove(str(tmp_path))
    trainer = user_mod.Trainer()  # noqa: F841 - a local the census must find
    for i in range(40):
        user_mod.history.append(np.zeros(1024))
        trainer.log["outputs"].append(np.zeros(256))
        user_mod.remember(i)
        user_mod.feature(i)
    roots = {r.path: r for r in Census(sys._current_frames()).run().roots}
    sys.modules.pop("user_mod")
    assert roots["history"].kind == "list" and roots["history"].length == 40
    assert roots["history"].bytes >= 40 * 8192
    assert "ndarray float64 (1024,)" in roots["history"].item
    assert roots["trainer.log['outputs']"].scope == "attribute"
    assert roots["remember(seen=)"].scope == "default"
    assert roots["feature"].kind == "lru_cache" and roots["feature"].length == 40


def test_census_reads_locals_without_changing_what_the_program_sees() -> None:
    # On Python < 3.13 locals() returns the frame's one snapshot dict, which the census's
    # f_locals read refreshes and then empties (so that it keeps nothing alive): a program
    # holding that dict saw it emptied, or gain later locals.
    import weakref

    import numpy as np

    from dldoctor.collectors.retention import Census

    ready = [threading.Event() for _ in range(3)]
    go, freed, seen = threading.Event(), threading.Event(), {}

    def holds_its_own_locals():
        x = 1
        ns = locals()
        first = sorted(ns)
        ready[0].set()
        go.wait(10)
        seen["own"] = sorted(ns) == first, x

    def hold():
        return sys._getframe(1).f_locals

    def viewed_by_a_callee():
        z = 3
        view = hold()  # as a debugger does
        ready[1].set()
        go.wait(10)
        seen["view"] = view.get("z"), z

    def drops_a_big_array():
        big = np.ones(2 << 20)  # 16 MB
        seen["ref"] = weakref.ref(big)
        ready[2].set()
        go.wait(10)
        del big
        freed.set()
        go.wait(10)

    threads = [threading.Thread(target=f) for f in
               (holds_its_own_locals, viewed_by_a_callee, drops_a_big_array)]
    for thread in threads:
        thread.start()
    assert all(event.wait(10) for event in ready)
    census = Census(sys._current_frames()).run()
    go.set()
    assert freed.wait(10)
    alive = seen["ref"]() is not None  # no snapshot of the census keeps it
    for thread in threads:
        thread.join(10)
    assert seen["own"] == (True, 1) and seen["view"] == (3, 3) and not alive
    assert [r.path for r in census.roots if r.function.endswith("drops_a_big_array")] == ["big"]


def test_census_never_runs_the_users_attribute_hooks() -> None:
    # The census runs in its own thread while the program runs: a __getattr__ of the user's
    # (a proxy, a lazy loader, a config that logs unknown keys) must not run there.
    calls: list[str] = []

    class Lazy:
        def __getattr__(self, name: str) -> object:
            calls.append(name)
            raise AttributeError(name)

        @property  # type: ignore[misc]
        def __class__(self) -> type:  # what proxies do; isinstance() reads it
            calls.append("__class__")
            return Lazy

        def __sizeof__(self) -> int:  # sys.getsizeof() calls it (pandas' is slow)
            calls.append("__sizeof__")
            return 1 << 30

    proxies = [Lazy() for _ in range(300)]
    lone = Lazy()
    roots = {r.path: r for r in Census(sys._current_frames()).run().roots}
    assert roots["proxies"].length == 300 and roots["proxies"].item == "Lazy"
    assert calls == []
    del proxies, lone


def test_census_follows_autograd_graph_growth() -> None:
    torch = pytest.importorskip("torch")
    w = torch.randn(8, requires_grad=True)
    total = 0.0
    oldest: dict[str, int] = {}
    spans = []
    for _ in range(3):
        for _ in range(50):
            loss = (w * 2).sum()
            loss.backward()
            total += loss
        census = Census(sys._current_frames(), oldest=oldest).run()
        spans.append({r.path: r for r in census.roots}["total"].graph_nodes)
        grads = {g.variable for g in census.grad_locals}
        assert {"total", "loss"} <= grads
    assert spans[0] < spans[1] < spans[2]
    assert spans[2] - spans[1] == pytest.approx(spans[1] - spans[0], rel=0.1)


def test_tensor_census_counts_live_tensors_once_per_storage() -> None:
    torch = pytest.importorskip("torch")
    from dldoctor.collectors.torch_memory import TorchMemory

    memory = TorchMemory()
    memory.attach(torch)
    before = memory.tensor_census()
    base = torch.zeros(1 << 20)  # 4 MiB
    views = [base[i:] for i in range(3)]  # three more tensors on the same storage
    w = torch.ones(4, requires_grad=True)
    graph = w * 2
    after = memory.tensor_census()
    assert after["count"] - before["count"] == 6
    assert after["bytes"] - before["bytes"] == (1 << 22) + 16 + 16
    assert after["with_grad"] - before["with_grad"] == 1
    assert after["duration_s"] > 0
    del views, graph


def test_census_sees_a_user_module_imported_after_an_earlier_census(tmp_path: Path) -> None:
    (tmp_path / "late_user_module.py").write_text("CACHE = list(range(100))\n")
    Census(sys._current_frames()).run()  # remembers today's user modules
    sys.path.insert(0, str(tmp_path))
    try:
        import late_user_module  # noqa: F401
        roots = {r.path for r in Census(sys._current_frames()).run().roots}
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("late_user_module", None)
    assert "CACHE" in roots


def test_census_leaves_no_reference_behind() -> None:
    import weakref

    class Big:
        pass

    def scope() -> weakref.ref[Big]:
        value = Big()
        keep = [value] * 32  # noqa: F841 - a local container the census will look at
        Census(sys._current_frames()).run()
        return weakref.ref(value)

    ref = scope()
    assert ref() is None


def test_growth_sites_find_the_lines_that_grow_a_name(tmp_path: Path) -> None:
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent("""
        cache = {}
        def train(steps):
            losses = []
            total = 0.0
            for step in range(steps):
                loss = step * 2
                losses.append(loss)
                total += loss
                cache[step] = loss
                logs["x"].append(loss)
                self.history.extend([loss])
            return losses
    """))
    file = str(path)
    assert [s.line for s in growth_sites(file, "losses", 3)] == [8]
    assert [s.line for s in growth_sites(file, "total", 3)] == [9]
    assert [s.line for s in growth_sites(file, "cache")] == [10]
    assert [s.line for s in growth_sites(file, "logs")] == [11]
    assert [s.line for s in growth_sites(file, "history", attribute=True)] == [12]
    assert growth_sites(file, "losses", 3)[0].text == "losses.append(loss)"
    assert [s.line for s in assignment_sites(file, "loss", 3, 9)] == [7]


# -- allocation attribution --------------------------------------------------------------------
def test_innermost_user_skips_library_and_dldoctor_frames() -> None:
    user = str(PATHOLOGIES / "memory-leak" / "global_list_arrays.py")
    library = collections.__file__
    assert innermost_user([(library, 10, "f"), (user, 7, "g")]) == (user, 7, "g")
    assert innermost_user([(library, 10, "f")]) is None
    assert innermost_user([(functools.__file__, 1, "x"), (sys.modules[
        "dldoctor.collectors.heap"].__file__, 1, "y"), (user, 2, "z")]) is None


def test_trace_window_attributes_surviving_allocations_to_the_user_line() -> None:
    if tracemalloc.is_tracing():
        pytest.skip("tracemalloc already running")
    window = TraceWindow(0, 4)
    window.open()
    kept = [bytearray(100_000) for _ in range(20)]
    record = window.snapshot(1.0)
    window.close()
    assert not tracemalloc.is_tracing()
    top = record["lines"][0]
    assert top[0] == __file__ and top[2] >= 20 * 100_000
    assert kept


def test_back_to_back_trace_windows_hand_tracing_on_without_stopping_it() -> None:
    # tracemalloc.stop() while another thread allocates can crash CPython < 3.12.9 / 3.13.2
    # (gh-128679; --memory=trace segfaulted 2 runs in 10 here): a window closed for the next
    # one clears the traces and hands tracing on; the last window stops it.
    if tracemalloc.is_tracing():
        pytest.skip("tracemalloc already running")
    first = TraceWindow(0, 4)
    first.open()
    old = [bytearray(100_000) for _ in range(20)]
    assert first.snapshot(1.0)["lines"][0][2] >= 20 * 100_000
    assert first.close(keep=True) is True
    assert tracemalloc.is_tracing()  # never stopped between the two
    second = TraceWindow(1, 4)
    second.open(inherited=True)
    new = [bytearray(50_000) for _ in range(10)]
    top = second.snapshot(2.0)["lines"][0]
    assert top[0] == __file__ and 10 * 50_000 <= top[2] < 20 * 100_000  # traces from empty
    assert second.close() is False
    assert not tracemalloc.is_tracing()  # the window that inherited it stops it
    assert old and new


def test_a_window_that_did_not_start_tracing_neither_stops_nor_hands_it_on() -> None:
    if tracemalloc.is_tracing():
        pytest.skip("tracemalloc already running")
    tracemalloc.start()  # the target's own tracing
    try:
        window = TraceWindow(0, 4)
        window.open()
        assert window.close(keep=True) is False and tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()


def test_cuda_snapshot_blocks_grouped_by_user_line() -> None:
    user = __file__
    snapshot = {"segments": [{"blocks": [
        {"state": "active_allocated", "size": 1024,
         "frames": [{"filename": collections.__file__, "line": 3, "name": "lib"},
                    {"filename": user, "line": 42, "name": "train"}]},
        {"state": "active_allocated", "size": 512,
         "frames": [{"filename": user, "line": 42, "name": "train"}]},
        {"state": "inactive", "size": 4096,
         "frames": [{"filename": user, "line": 43, "name": "train"}]},
    ]}]}
    found = blocks_by_line(snapshot)
    assert list(found) == [(user, 42, "train")]
    assert found[(user, 42, "train")].bytes == 1536 and found[(user, 42, "train")].count == 2


def test_build_heap_merges_census_records_and_keeps_sites(tmp_path: Path) -> None:
    path = tmp_path / "t.py"
    path.write_text("history = []\nfor i in range(9):\n    history.append(i)\n")
    new = {"key": 0, "path": "history", "scope": "global", "kind": "list", "file": str(path),
           "function": "<module>", "line": 0, "item": "int", "grad": False}
    records = {
        "heap-census": [{"t": 1.0, "new": [new], "roots": [[0, 10, 1000, 0, 0]], "grad": [],
                         "backward": None, "available": 123},
                        {"t": 2.0, "new": [], "roots": [[0, 20, 2000, 0, 0]], "grad": [],
                         "backward": None, "available": 120}],
        "heap-status": [{"type": "heap-status", "mode": "default", "cost_s": 0.01,
                         "backward": None}],
    }
    heap = build_heap(records)
    assert heap.mode == "default" and heap.censuses == [1.0, 2.0] and heap.available == 120
    root = heap.roots[0]
    assert root.length == [10, 20] and root.sites[0].line == 3


# -- the rules on hand-built runs --------------------------------------------------------------
def _leaky_run(grows: bool = True, root: bool = True) -> Run:
    times = [1.0 + i * 0.01 for i in range(600)]
    points = [MemoryPoint(t / 10, int(400 * MIB + (3 * MIB * t / 10 if grows else 0)))
              for t in range(10, 80)]
    censuses = [1.0 + i * 0.7 for i in range(9)]
    roots = []
    if root:
        roots = [HeapRoot(path="history", scope="global", kind="list", file="/u/train.py",
                          function="<module>", item="ndarray float64 (64, 512)",
                          t=censuses, length=[int((t - 1.0) * 100) for t in censuses],
                          bytes=[int((t - 1.0) * 3 * MIB) for t in censuses],
                          device_bytes=[0] * 9, graph_nodes=[0] * 9,
                          sites=[HeapSite("/u/train.py", 12, "<module>",
                                          "history.append(x)")])]
    return Run(memory=Memory(points=points),
               steps=Steps(source="explicit", count=600, times=times),
               heap=Heap(mode="default", available=8 << 30, censuses=censuses,
                         backward=[None] * 9, roots=roots))


def test_leak_found_with_the_line_that_grows_the_variable() -> None:
    findings = MemoryLeak().analyze(_leaky_run())
    assert len(findings) == 1
    f = findings[0]
    assert f.rule == "memory-leak" and f.severity in ("warning", "error")
    assert (f.location.file, f.location.line) == ("/u/train.py", 12)
    assert f.evidence["items_per_step"] == pytest.approx(1.0, rel=0.1)
    assert f.evidence["growth_bytes_per_step"] == pytest.approx(3 * MIB / 100, rel=0.15)
    assert f.evidence["time_to_exhaust_s"] > 0
    assert "deque(maxlen" in f.advice


def test_growth_no_variable_explains_is_reported_without_a_line() -> None:
    findings = MemoryLeak().analyze(_leaky_run(root=False))
    assert len(findings) == 1 and findings[0].location is None
    assert "--memory=trace" in findings[0].advice


def test_flat_memory_and_no_growing_variable_is_clean() -> None:
    assert MemoryLeak().analyze(_leaky_run(grows=False, root=False)) == []


def _inference_run(backward: list[int | None], total: int) -> Run:
    censuses = [0.5 * i for i in range(1, 9)]
    obs = [GradObservation(t=t, file="/u/eval.py", line=20, function="evaluate",
                           variable="logits", grad_fn="AddmmBackward0",
                           sites=[HeapSite("/u/eval.py", 19, "evaluate", "logits = model(x)")])
           for t in censuses[3:]]
    return Run(heap=Heap(mode="default", censuses=censuses, backward=backward,
                         backward_total=total, inference=obs))


def test_graphs_recorded_while_no_backward_runs_are_no_grad_inference() -> None:
    run = _inference_run([5, 10, 15, 15, 15, 15, 15, 15], 15)
    findings = NoGradInference().analyze(run)
    assert len(findings) == 1
    f = findings[0]
    assert f.severity == WARNING and f.location.line == 19
    assert "no_grad" in f.advice


def test_graphs_seen_between_backward_calls_are_training() -> None:
    run = _inference_run([5, 10, 15, 20, 25, 30, 35, 40], 45)
    assert NoGradInference().analyze(run) == []


def test_report_with_heap_round_trips() -> None:
    run = _leaky_run()
    text = Report(run=run).to_json()
    loaded = Report.from_json(text)
    assert loaded.run.heap.roots[0].sites[0].line == 12
    assert Report.from_json(text.replace('"heap"', '"heap_old"')).run.heap == Heap()


# -- end to end on the fixtures ----------------------------------------------------------------
LEAKS = {  # fixture -> (rule, line the finding must point at)
    "memory-leak/global_list_arrays.py": ("memory-leak", 15),
    "memory-leak/loss_with_graph.py": ("memory-leak", 24),
    "memory-leak/dict_cache_by_step.py": ("memory-leak", 16),
    "memory-leak/trainer_history.py": ("memory-leak", 21),
    "memory-leak/lru_cache_unbounded.py": ("memory-leak", 9),
    "memory-leak/metrics_defaultdict.py": ("memory-leak", 18),
    "memory-leak/generator_cache.py": ("memory-leak", None),
    "no-grad-inference/eval_without_no_grad.py": ("no-grad-inference", 30),
    "no-grad-inference/inference_script.py": ("no-grad-inference", 17),
}
CLEAN = ["memory-leak/clean_preallocated.py", "memory-leak/clean_warmup_plateau.py",
         "memory-leak/clean_bounded_lru.py", "memory-leak/clean_torch_training.py",
         "memory-leak/clean_epoch_buffers.py", "no-grad-inference/clean_eval_no_grad.py",
         "no-grad-inference/clean_inference_mode.py", "no-grad-inference/clean_slow_training.py"]


def _findings(report: dict, rule: str) -> list[dict]:
    return [f for f in report["findings"] if f["rule"] == rule]


@pytest.mark.parametrize("fixture", sorted(LEAKS))
def test_planted_problem_is_found_at_its_line(profile, fixture: str) -> None:
    rule, line = LEAKS[fixture]
    result = profile(PATHOLOGIES / fixture)
    assert result.returncode == 0, result.stderr.decode()
    found = _findings(result.report(), rule)
    assert found, result.stderr.decode()
    best = found[0]
    assert best["severity"] in ("warning", "error")
    if line is None:
        assert best["location"] is None or best["location"]["line"]
    else:
        assert best["location"]["file"].endswith(fixture.split("/")[1])
        assert best["location"]["line"] == line, best


@pytest.mark.parametrize("fixture", CLEAN)
def test_clean_control_has_no_memory_warning(profile, fixture: str) -> None:
    result = profile(PATHOLOGIES / fixture)
    assert result.returncode == 0, result.stderr.decode()
    report = result.report()
    loud = [f for f in report["findings"] if f["severity"] != "info"]
    assert not loud, [(f["rule"], f["title"]) for f in loud]


def test_trace_mode_names_the_allocating_line(profile) -> None:
    """Trace windows see the generator's list grow. Trained long enough for two windows to
    close while it does (a loaded machine's snapshots of a fresh NumPy process take seconds,
    leaving two per window); the snapshot at exit, taken once the list was freed with the
    generator, does not hide that growth."""
    script = PATHOLOGIES / "memory-leak" / "generator_cache.py"
    lines = script.read_text().splitlines()
    allocating, growing, yielding = (
        next(n for n, text in enumerate(lines, 1) if part in text)
        for part in ("rng.standard_normal(", "produced.append(", "yield batch"))
    result = profile(script, "4.5", options=("--memory=trace",))
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr[-2000:])
    report = result.report()
    meta = report["run"]["meta"]
    assert report["run"]["heap"]["mode"] == "trace", (
        meta["status"], meta["duration_s"], meta["exit_code"], meta["signal"],
        report["run"]["heap"]["notes"], result.stderr[-2000:])
    allocations = report["run"]["heap"]["allocations"]
    top = max(allocations, key=lambda a: a["bytes"][-1])
    assert (top["function"], top["line"]) == ("batches", allocating), top
    found = _findings(report, "memory-leak")
    # The finding names the allocating line, or, when a census happened to catch the thread
    # inside the generator (its locals then visible), the line that grows `produced` or, when
    # it reached them through the suspended generator object, the generator's `yield`.
    assert found and found[0]["location"]["function"] == "batches", found[0]
    assert found[0]["location"]["line"] in (allocating, growing, yielding), found[0]


def test_native_mode_without_memray_says_so_and_runs(profile, write_script) -> None:
    pytest.importorskip("numpy")
    if "memray" in sys.modules or _installed("memray"):
        pytest.skip("memray is installed")
    script = write_script("ok.py", "print('hi')\n")
    result = profile(script, options=("--memory=native",))
    assert result.returncode == 0 and result.stdout == b"hi\n"
    notes = result.report()["run"]["heap"]["notes"]
    assert any("pip install memray" in n for n in notes)


def test_memory_off_collects_nothing_in_the_target(profile, write_script) -> None:
    script = write_script("ok.py", "x = [0] * 10\n")
    report = profile(script, options=("--memory=off",)).report()
    assert report["run"]["heap"]["censuses"] == []


def test_html_shows_growth_figures(profile) -> None:
    result = profile(PATHOLOGIES / "memory-leak" / "dict_cache_by_step.py")
    html = (result.out_dir / "report.html").read_text()
    assert 'id="memory-growth"' in html and "feature_cache" in html


@pytest.mark.gpu
def test_cuda_leak_is_found_on_the_device(profile) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    result = profile(PATHOLOGIES / "memory-leak" / "cuda_tensor_list.py")
    report = result.report()
    assert report["run"]["heap"]["device"], "no CUDA allocator readings"
    found = _findings(report, "memory-leak")
    assert found and found[0]["evidence"]["memory"] == "device"
    assert found[0]["location"]["line"] == 25


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


@pytest.mark.gpu
def test_clean_cuda_training_has_no_memory_warning(profile) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    report = profile(PATHOLOGIES / "memory-leak" / "clean_cuda_training.py").report()
    assert report["run"]["heap"]["device"], "no CUDA allocator readings"
    loud = [f for f in report["findings"] if f["rule"] in MEMORY_RULES and f["severity"] != "info"]
    assert not loud, [(f["rule"], f["title"]) for f in loud]


def test_peak_uss_is_read_while_the_target_runs(write_script, profile) -> None:
    """USS (smaps) is read from 0.5 s on, never only in the first instant after exec."""
    script = write_script("uss.py", """
        import time
        block = bytearray(64 << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(1.5)
    """)
    memory = profile(script, options=("-q",)).report()["run"]["memory"]
    assert memory["peak_uss"] is not None and memory["peak_uss"] > 60 << 20, memory["peak_uss"]
    assert memory["points"][0]["uss"] is None  # nothing read at exec time


def test_censuses_thin_out_only_while_what_they_follow_stays_still() -> None:
    from types import SimpleNamespace

    from dldoctor.collectors.heap import HeapCollector

    agent = SimpleNamespace(config=SimpleNamespace(options={}, t0=0.0), _clock=lambda: 0.0)
    heap = HeapCollector(agent)

    def root(path: str, nbytes: int, nodes: int = 0) -> SimpleNamespace:
        return SimpleNamespace(path=path, bytes=nbytes, device_bytes=0, graph_nodes=nodes)

    assert not heap._still([])  # nothing followed yet
    assert not heap._still([root("state", 100)])  # first sight: no comparison possible
    assert heap._still([root("state", 100)])
    assert not heap._still([root("state", 100), root("loss", 8, nodes=10)])  # a new name
    assert not heap._still([root("state", 100), root("loss", 8, nodes=20)])  # graph grows
    assert heap._still([root("state", 90), root("loss", 8, nodes=20)])  # shrinking is still
    assert not heap._still([root("state", 200), root("loss", 8, nodes=20)])  # bytes grow


def test_finish_waits_for_a_slow_snapshot_and_always_reports_status(write_script) -> None:
    # A trace-mode snapshot can take seconds on a loaded machine (CI once saw the status
    # record lost: finish() closed the window while the collector's thread was still in it).
    script = write_script("slow_snapshot.py", """
        import json, threading, time
        from types import SimpleNamespace
        from dldoctor.collectors.heap import HeapCollector

        inside = threading.Event()

        class Slow(HeapCollector):
            def _snapshot(self, now):
                if self._thread.is_current():
                    inside.set()
                    time.sleep(2.5)  # longer than the old 2-s join
                super()._snapshot(now)

        clock = time.monotonic
        agent = SimpleNamespace(config=SimpleNamespace(options={"memory": "trace"}, t0=clock()),
                                _clock=clock,
                                sampler=SimpleNamespace(exclude_thread=lambda ident: None))
        heap = Slow(agent)
        heap.start()
        kept = [bytearray(1 << 16) for _ in range(50)]
        assert inside.wait(10), "the collector's thread never took a snapshot"
        heap.finish()
        heap._thread.join(10)  # whatever the thread still does lands in the records too
        print(json.dumps(heap.drain()))
    """)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    records = json.loads(result.stdout)
    status = [r for r in records if r["type"] == "heap-status"]
    assert status and status[-1]["mode"] == "trace" and "cost_s" in status[-1], status
    assert not any(r.get("notes") for r in status), status  # no error, no missed snapshot
    windows = [r for r in records if r["type"] == "heap-window"]
    assert len(windows) == len({w["index"] for w in windows}) >= 1, windows  # each closed once


def test_a_collector_that_raises_is_named_in_the_report_collectors() -> None:
    from dldoctor.runner.profile import _failed_collectors

    statuses = _failed_collectors([
        {"type": "collector-error", "name": "heap", "error": "AssertionError: first"},
        {"type": "collector-error", "name": "heap", "error": "AssertionError: second"},
        {"type": "collector-error", "name": "locks", "error": "OSError: x"}])
    assert [(s.name, s.available, s.reason) for s in statuses] == [
        ("heap", False, "failed: AssertionError: first"), ("locks", False, "failed: OSError: x")]


def test_uss_is_read_less_often_the_longer_a_reading_takes() -> None:
    """A USS reading walks the target's page tables while its mmap calls wait: the gap to the
    next one is the reading's duration over USS_DUTY, between 1 and 30 s."""
    import os

    from dldoctor.collectors.memory import USS_DUTY, USS_FIRST_S, ProcessTreeMemory

    class Clock:  # advances ``tick`` at every read: a reading "takes" one tick
        def __init__(self) -> None:
            self.t, self.tick = 0.0, 0.0

        def __call__(self) -> float:
            self.t += self.tick
            return self.t

    clock = Clock()
    memory = ProcessTreeMemory(os.getpid(), t0=0.0, clock=clock)

    def uss_at(t: float, tick: float) -> bool:
        clock.t, clock.tick = t, tick
        memory.sample()
        return memory.result().points[-1].uss is not None

    assert not uss_at(USS_FIRST_S - 0.1, 0.0)
    assert uss_at(USS_FIRST_S + 0.1, 0.002)  # a 2-ms reading: the next in 0.002 / USS_DUTY
    gap = 0.002 / USS_DUTY
    assert 1.0 < gap < 30.0
    assert not uss_at(USS_FIRST_S + 0.1 + 0.002 + gap - 0.2, 0.0)
    assert uss_at(USS_FIRST_S + 0.1 + 0.002 + gap + 0.1, 0.00001)  # a fast reading...
    assert not uss_at(USS_FIRST_S + gap + 0.9, 0.0)
    assert uss_at(USS_FIRST_S + gap + 1.3, 0.0)  # ...and the next a second later
    assert memory.result().peak_uss


def test_the_process_tree_is_walked_from_the_trees_own_children_lists(tmp_path: Path) -> None:
    """The memory timeline's tree: children started by the main thread and by another thread,
    and a grandchild, found without scanning every process on the machine (psutil agrees)."""
    import time

    import psutil

    from dldoctor.collectors.memory import ProcessTreeMemory, descendants

    script = tmp_path / "tree.py"
    script.write_text(textwrap.dedent("""
        import subprocess, sys, threading, time
        sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
        nested = [sys.executable, "-c",
                  "import subprocess, sys, time; subprocess.Popen(%r); time.sleep(60)" % (sleeper,)]
        procs = [subprocess.Popen(sleeper)]
        worker = threading.Thread(target=lambda: procs.append(subprocess.Popen(nested)))
        worker.start(); worker.join()
        print("ready", flush=True)
        time.sleep(60)
    """))
    root = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert root.stdout is not None and root.stdout.readline().strip() == "ready"
        expected: set[int] = set()
        for _ in range(100):  # the grandchild starts a moment after its parent
            expected = {p.pid for p in psutil.Process(root.pid).children(recursive=True)}
            if len(expected) == 3:
                break
            time.sleep(0.05)
        assert len(expected) == 3
        found = descendants(root.pid)
        if found is None:
            pytest.skip("this kernel keeps no /proc/<pid>/task/<tid>/children lists")
        assert set(found) == expected
        memory = ProcessTreeMemory(root.pid)
        memory.sample()
        assert memory.result().points[-1].processes == 4
    finally:
        for proc in psutil.Process(root.pid).children(recursive=True):
            proc.kill()
        root.kill()
        root.wait()
    assert descendants(root.pid) == []  # a process that is gone has no children


def test_the_report_counts_the_cpu_of_every_dldoctor_thread(write_script, profile) -> None:
    """dldoctor's own CPU: the supervisor, the sampler's thread and the memory collector's
    thread (whose censuses' CPU is part of it); without the memory collector, no such line."""
    script = write_script("busy.py", """
        import time
        table = {}
        end = time.monotonic() + 1.6
        while time.monotonic() < end:
            table[len(table) % 5000] = [0] * 50
    """)
    result = profile(script, options=("-q",))
    assert result.returncode == 0, result.stderr
    run = result.report()["run"]
    own = run["meta"]["profiler_cpu_s"]
    assert list(own) == ["supervisor", "agent", "memory"]
    assert all(seconds > 0 for seconds in own.values()), own
    assert own["memory"] >= run["heap"]["cost_s"] > 0  # the censuses ran on that thread
    off = profile(script, options=("-q", "--memory", "off")).report()["run"]
    assert list(off["meta"]["profiler_cpu_s"]) == ["supervisor", "agent"]


def test_an_exit_snapshot_counts_only_for_a_window_with_no_other(tmp_path: Path) -> None:
    """The snapshot taken at exit comes after the target's code returned (a leaking
    generator's list may be freed by then): it would read as the growth stopping, so it is
    left out of a window that has other snapshots, and kept for one that has none."""
    from dldoctor.collectors.heap import _allocations

    source = tmp_path / "leaky.py"
    source.write_text("def batches():\n    kept = []\n    kept.append(bytearray(1 << 20))\n")
    file = str(source)

    def record(window: int, t: float, nbytes: int, at_exit: bool = False) -> dict[str, object]:
        return {"type": "heap-alloc", "window": window, "kind": "tracemalloc", "t": t,
                "lines": [[file, 3, nbytes, 1]], "outside": 0,
                **({"at_exit": True} if at_exit else {})}

    lines = _allocations([record(0, 1.0, 1 << 20), record(0, 2.0, 2 << 20),
                          record(0, 2.5, 0, at_exit=True), record(1, 3.0, 5 << 20, at_exit=True)])
    by_window = {line.window: line for line in lines}
    assert by_window[0].t == [1.0, 2.0] and by_window[0].bytes == [1 << 20, 2 << 20]
    assert by_window[1].t == [3.0] and by_window[1].function == "batches"


def test_a_process_whose_memory_is_already_released_is_not_a_reading() -> None:
    """Between releasing its memory and becoming a zombie an exiting process reads 0 bytes;
    the timeline skips it (a run's chart ended with a drop to 0 B), the rest of the tree
    still counts."""
    import os
    from types import SimpleNamespace

    from dldoctor.collectors.memory import ProcessTreeMemory

    exiting = SimpleNamespace(pid=-1, memory_info=lambda: SimpleNamespace(rss=0),
                              memory_full_info=lambda: SimpleNamespace(rss=0, uss=0))
    memory = ProcessTreeMemory(os.getpid(), t0=0.0, clock=lambda: 0.1)
    memory._next_slow = 1e9  # keep the tree as set here
    memory._tree.append(exiting)  # type: ignore[arg-type]
    memory.sample()
    point = memory.result().points[-1]
    assert point.processes == 1 and point.rss > 0
    memory._tree = [exiting]  # type: ignore[list-item]
    memory.sample()
    assert len(memory.result().points) == 1  # nothing alive: no reading at all
