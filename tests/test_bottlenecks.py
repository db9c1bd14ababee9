"""Step breakdown, DataLoader workers, NVML timeline and the bottleneck rules
(``dataloader-bottleneck``, ``host-device-sync``, ``host-device-transfer``,
``gpu-underutilization``; fixtures for ``slow-python-loop`` too).

Unit tests drive the pure parts with fake clocks, fake NVML and hand-built Runs; end-to-end
tests profile the real scripts under ``tests/pathologies/`` and assert on report.json."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dldoctor.analyzers.bottlenecks import DataLoaderBottleneck, GpuUnderutilization, host_activity
from dldoctor.analyzers.hostdevice import HostDeviceSync, HostDeviceTransfer
from dldoctor.collectors import gpu as gpu_module
from dldoctor.collectors.gpu import GpuSampler
from dldoctor.collectors.phases import (
    BACKWARD,
    DATA,
    FORWARD,
    SYNC,
    PhaseClock,
    SiteTable,
    StepWindows,
)
from dldoctor.collectors.torch_steps import build_breakdown
from dldoctor.collectors.workers import build_workers, follow_worker_loop
from dldoctor.run import (
    Environment,
    Frame,
    GpuDevice,
    GpuTimeline,
    LoaderInfo,
    Report,
    Run,
    RunMeta,
    Samples,
    SourceLine,
    StepBreakdown,
    Steps,
    SyncSite,
    ThreadInfo,
    TransferSite,
)
from tests.conftest import REPO, FakeClock, run_cli, run_plain

PATHOLOGIES = Path(__file__).parent / "pathologies"
RULES = ("dataloader-bottleneck", "host-device-sync", "host-device-transfer",
         "gpu-underutilization", "slow-python-loop")
PHASES = ["data", "forward", "backward", "optimizer", "transfer", "sync", "other"]


# -- phases --
def test_phase_clock_is_exclusive_and_nests() -> None:
    clock = FakeClock()
    phases = PhaseClock(clock)
    phases.enter(FORWARD)
    clock.now = 1.0
    phases.enter(SYNC)  # pauses forward
    clock.now = 1.5
    phases.exit(SYNC)
    clock.now = 2.0
    phases.exit(FORWARD)
    phases.exit(DATA)  # never entered: ignored
    assert phases.totals[FORWARD] == 1.5 and phases.totals[SYNC] == 0.5
    assert phases.current is None


def test_phase_clock_exit_unwinds_phases_left_open() -> None:
    clock = FakeClock()
    phases = PhaseClock(clock)
    phases.enter(DATA)
    phases.enter(FORWARD)  # e.g. an exception skipped its exit
    clock.now = 1.0
    phases.exit(DATA)
    assert phases.current is None and phases.totals[FORWARD] == 1.0


def test_step_windows_cut_phases_and_sites_into_steps() -> None:
    clock = FakeClock()
    phases = PhaseClock(clock)
    sites = SiteTable(2)
    windows = StepWindows(phases, [sites])
    sites.add(("item", "/t.py", 3, "f"), (0.1,))  # before the first mark: setup, not a step
    windows.mark("optimizer", 0.0)
    for step in range(4):
        phases.enter(DATA)
        clock.now += 0.25
        phases.exit(DATA)
        if step % 2 == 0:
            sites.add(("item", "/t.py", 9, "f"), (0.01,))
        clock.now += 0.75
        windows.mark("optimizer", clock.now)
    sites.add(("item", "/t.py", 9, "f"), (0.01,))  # after the last mark: not a step
    (record,) = windows.records()
    assert record["steps"] == 4 and record["duration_s"] == 4.0
    assert record["phase_s"][DATA] == 1.0
    assert [row[1] for row in record["rows"]] == [1.0] * 4
    (site,) = record["sites"][0]
    assert site[:5] == ["item", "/t.py", 9, "f", 2] and site[5] == 2  # 2 steps, 2 calls
    assert windows.records()[0]["rows"] == []  # rows are streamed once


class FakeModule:
    """Just enough of ``nn.Module`` for the forward timer: ``__call__``, children, hooks."""

    def __init__(self, clock: FakeClock, *children: FakeModule) -> None:
        self.clock, self.children = clock, children
        self.pre_hooks: list[Any] = []
        self.post_hooks: list[Any] = []

    def __call__(self, x: float) -> float:
        for hook in list(self.pre_hooks):
            hook(self, (x,))
        self.clock.now += 1.0  # each module's own work takes one second
        for child in self.children:
            x = child(x)
        for hook in list(self.post_hooks):
            hook(self, (x,), x)
        return x

    def register_forward_pre_hook(self, hook: Any) -> SimpleNamespace:
        self.pre_hooks.append(hook)
        return SimpleNamespace(id=id(hook), remove=lambda: self.pre_hooks.remove(hook))

    def register_forward_hook(self, hook: Any, always_call: bool = False) -> SimpleNamespace:
        self.post_hooks.append(hook)
        return SimpleNamespace(id=id(hook) + 1, remove=lambda: self.post_hooks.remove(hook))


def test_forward_timer_times_the_outermost_call_then_narrows_to_roots(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from dldoctor.collectors.torch_steps import _ForwardTimer

    class Module(FakeModule):
        pass

    monkeypatch.setattr(Module, "__call__", FakeModule.__call__)
    clock = FakeClock()
    owner = SimpleNamespace(phases=PhaseClock(clock), compiling=lambda: False,
                            on_main=lambda: True)
    timer = _ForwardTimer(owner)  # type: ignore[arg-type]

    class Root(Module):
        pass

    class Leaf(Module):
        pass

    leaves = [Leaf(clock) for _ in range(3)]
    model = Root(clock, *leaves)
    timer.install(Module)
    model(0.0)
    assert owner.phases.totals[FORWARD] == 0.0  # installed, not engaged: nothing timed
    assert "__call__" in vars(Module) and Module.__call__ is FakeModule.__call__
    timer.engage()
    model(0.0)
    assert owner.phases.totals[FORWARD] == 4.0  # one root call: 1 s + 3 leaves, once
    assert timer.root_names() == ["Root"] and not timer.narrowed
    timer.on_step()
    timer.on_step()
    # the Module.__call__ wrapper is gone; the root's class has one (leaves pass through it)
    assert timer.narrowed and Module.__call__ is FakeModule.__call__
    assert "__call__" in vars(Root) and "__call__" not in vars(Leaf)
    assert not model.pre_hooks and not model.post_hooks  # nothing on the module objects
    model(0.0)
    assert owner.phases.totals[FORWARD] == 8.0 and owner.phases.current is None
    timer.disengage()  # an untimed step: the root class's wrapper comes out
    assert "__call__" not in vars(Root) and Root.__call__ is Module.__call__
    model(0.0)
    assert owner.phases.totals[FORWARD] == 8.0
    timer.engage()
    assert "__call__" in vars(Root)
    model(0.0)
    assert owner.phases.totals[FORWARD] == 12.0
    Leaf(clock)(0.0)  # not a root: passes through, untimed
    assert owner.phases.totals[FORWARD] == 12.0
    timer.disengage()
    timer.narrowed = False
    timer.engage()  # learning again: Module.__call__ wrapped
    owner.phases.enter(BACKWARD)
    Leaf(clock)(0.0)  # activation checkpointing recomputing a forward inside backward
    owner.phases.exit(BACKWARD)
    assert owner.phases.totals[FORWARD] == 12.0 and owner.phases.totals[BACKWARD] == 1.0
    assert timer.root_names() == ["Root"]  # and the recomputed module is no root


def test_models_copied_saved_or_scripted_in_timed_steps_carry_nothing_of_dldoctor(profile,
                                                                           write_script) -> None:
    # The forward timer used to hook the root module in timed steps: copy.deepcopy(model) (an
    # EMA or best-model copy), pickle, torch.save and torch.jit.script of the model then failed
    # under dldoctor only. Nothing of dldoctor's may be on the user's modules.
    pytest.importorskip("torch")
    script = write_script("copies.py", """
        import copy, io, pickle
        import torch

        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x, y = torch.randn(64, 8), torch.randint(0, 2, (64,))
        hooks = set()
        for step in range(80):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            best = copy.deepcopy(model)
            saved = io.BytesIO()
            torch.save(model, saved)
            saved.seek(0)
            loaded = torch.load(saved, weights_only=False)
            again = pickle.loads(pickle.dumps(model))
            hooks.add(tuple(len(m._forward_pre_hooks) + len(m._forward_hooks)
                            for m in (model, best, loaded, again)))
            if step % 10 == 3:
                scripted, traced = torch.jit.script(model), torch.jit.trace(model, x)
                assert torch.allclose(scripted(x), traced(x))
        print(sorted(hooks))
        """)
    plain = run_plain(script, timeout=120)
    assert plain.returncode == 0, plain.stderr.decode()
    result = profile(script, options=("-q",))
    assert (result.returncode, result.stdout) == (0, plain.stdout), result.stderr.decode()
    assert result.stdout == b"[(0, 0, 0, 0)]\n"
    breakdown = result.report()["run"]["breakdown"]
    assert breakdown["forward_roots"] == ["Sequential"]  # the timer did hook the root


def test_site_table_is_bounded() -> None:
    table = SiteTable(1, cap=2)
    for line in range(5):
        table.add(("item", "/t.py", line, "f"), ())
    assert len(table.cells) == 2 and table.dropped == 3


def test_build_breakdown_merges_streamed_rows_and_adds_other() -> None:
    window = {"source": "optimizer", "steps": 2, "duration_s": 2.0,
              "phase_s": [0.5, 0.5, 0.5, 0.0, 0.0, 0.1], "stride": 1,
              "sites": [[["item", "/t.py", 9, "f", 2, 2, 0.1]],
                        [["h2d", "/t.py", 5, "f", 2, 2, 800, 0.2, 800, 1, 0]]]}
    records = [{"type": "torch-steps", "cuda": True,
                "windows": [{**window, "rows": [[1.0, 1.0, 0.25, 0.25, 0.25, 0, 0, 0.05]]}]},
               {"type": "torch-steps", "cuda": True,
                "windows": [{**window, "rows": [[2.0, 1.0, 0.25, 0.25, 0.25, 0, 0, 0.05]]}],
                "loaders": [{"dataset": "D", "num_workers": 2, "unknown": 1}]}]
    breakdown = build_breakdown({"torch-steps": records}, "optimizer")
    assert breakdown.phases == PHASES and breakdown.cuda
    assert breakdown.totals_s[-1] == pytest.approx(0.4)
    assert [r[-1] for r in breakdown.rows] == [pytest.approx(0.2)] * 2
    assert breakdown.syncs == [SyncSite("item", "/t.py", 9, "f", 2, 2, 0.1)]
    assert breakdown.transfers == [TransferSite("h2d", "/t.py", 5, "f", 2, 2, 800, 0.2, 800, 1, 0)]
    assert breakdown.loaders == [LoaderInfo(dataset="D", num_workers=2)]
    assert not build_breakdown({}, "none").available


# -- hand-built runs --
def _run(cuda: bool = False, n_steps: int = 100, duration: float = 10.0, data: float = 0.0,
         syncs: list[SyncSite] | None = None, transfers: list[TransferSite] | None = None,
         loaders: list[LoaderInfo] | None = None, **changes: Any) -> Run:
    spent = [data, 2.0, 3.0, 1.0, 0.0, 0.0]
    breakdown = StepBreakdown(available=True, source="optimizer", cuda=cuda, phases=PHASES,
                              steps=n_steps, duration_s=duration,
                              totals_s=[*spent, max(0.0, duration - sum(spent))],
                              syncs=syncs or [], transfers=transfers or [], loaders=loaders or [])
    return Run(meta=RunMeta(cwd="/proj", duration_s=duration + 1),
               environment=Environment(cpu_count=8), breakdown=breakdown, **changes)


def test_sync_every_step_on_cpu_is_info_and_points_at_the_line() -> None:
    run = _run(syncs=[SyncSite("item", "/proj/train.py", 21, "train", 100, 100, 0.01)])
    (finding,) = HostDeviceSync().analyze(run)
    assert finding.severity == "info" and finding.location is not None
    assert (finding.location.file, finding.location.line) == ("/proj/train.py", 21)
    assert finding.evidence["calls_per_step"] == 1.0 and not finding.evidence["measured"]


def test_sync_every_step_on_cuda_with_a_measured_stall_warns() -> None:
    syncs = [SyncSite("item", "/proj/train.py", 21, "train", 100, 100, 1.5),
             SyncSite("format", "/proj/train.py", 21, "train", 100, 100, 0.5)]
    (finding,) = HostDeviceSync().analyze(_run(cuda=True, syncs=syncs))
    assert finding.severity == "warning"
    assert finding.evidence["kinds"] == ["format", "item"]
    assert finding.evidence["stall_share"] == pytest.approx(0.2)


@pytest.mark.parametrize("steps_seen", [10, 49])  # logging every 10 steps, or every other step
def test_occasional_syncs_are_clean(steps_seen: int) -> None:
    syncs = [SyncSite("item", "/proj/train.py", 30, "train", steps_seen, steps_seen, 5.0)]
    assert HostDeviceSync().analyze(_run(cuda=True, syncs=syncs)) == []


def test_too_few_steps_give_no_sync_finding() -> None:
    syncs = [SyncSite("item", "/proj/train.py", 30, "train", 3, 3, 0.0)]
    assert HostDeviceSync().analyze(_run(n_steps=3, syncs=syncs)) == []


def test_same_tensor_sent_every_step() -> None:
    cpu = [TransferSite("move", "/proj/t.py", 8, "f", 100, 100, 1600, 0.0, 0, 99)]
    (finding,) = HostDeviceTransfer().analyze(_run(transfers=cpu))
    assert finding.severity == "info" and finding.evidence["same_data_calls"] == 99
    cuda = [TransferSite("h2d", "/proj/t.py", 8, "f", 100, 100, 400 * 2**20, 0.5, 0, 99)]
    (finding,) = HostDeviceTransfer().analyze(_run(cuda=True, transfers=cuda))
    assert finding.severity == "warning" and "once" in finding.advice


def test_reassigning_the_moved_tensor_is_clean_on_cpu() -> None:
    site = TransferSite("move", "/proj/t.py", 8, "f", 100, 100, 1600, 0.0, 0, 99)
    run = _run(transfers=[site], sources=[SourceLine("/proj/t.py", 8, "X = X.to(device)")])
    assert HostDeviceTransfer().analyze(run) == []


def test_pageable_copies_warn_only_when_they_cost() -> None:
    costly = [TransferSite("h2d", "/proj/t.py", 8, "f", 100, 200, 2**30, 1.5, 2**30, 0, 0)]
    (finding,) = HostDeviceTransfer().analyze(_run(cuda=True, transfers=costly))
    assert finding.severity == "warning" and "pin_memory=True" in finding.advice
    cheap = [TransferSite("h2d", "/proj/t.py", 8, "f", 100, 200, 2**20, 0.1, 2**20, 0, 0)]
    assert HostDeviceTransfer().analyze(_run(cuda=True, transfers=cheap)) == []
    pinned = [TransferSite("h2d", "/proj/t.py", 8, "f", 100, 200, 2**30, 1.5, 0, 0, 200)]
    assert HostDeviceTransfer().analyze(_run(cuda=True, transfers=pinned)) == []


def test_fresh_batches_moved_each_step_are_clean() -> None:
    batches = [TransferSite("move", "/proj/t.py", 8, "f", 100, 100, 2**20, 0.0, 0, 0)]
    assert HostDeviceTransfer().analyze(_run(transfers=batches)) == []


def test_dataloader_dominating_steps_warns_with_concrete_advice() -> None:
    loader = LoaderInfo(dataset="Images", dataset_file="/proj/data.py", dataset_line=12,
                        num_workers=0, batch_size=32, file="/proj/train.py", line=40,
                        batches=100, data_s=6.0)
    (finding,) = DataLoaderBottleneck().analyze(_run(data=6.0, loaders=[loader]))
    assert finding.severity == "warning" and finding.evidence["data_share"] == 0.6
    assert "num_workers=7" in finding.advice and finding.location is not None
    assert finding.location.file == "/proj/data.py"  # no samples: the Dataset's __getitem__


def test_dataloader_share_thresholds() -> None:
    assert DataLoaderBottleneck().analyze(_run(data=1.0)) == []
    (finding,) = DataLoaderBottleneck().analyze(_run(data=3.5))
    assert finding.severity == "info"


def _gpu_run(util: list[float], used: bool = True, cuda: bool = True) -> Run:
    samples = [[0.1 * i, u, -1.0, 2e9] for i, u in enumerate(util)]
    frames = [Frame("/proj/train.py", "<module>", 1),
              Frame("/lib/site-packages/torch/utils/data/dataloader.py", "__next__", 600,
                    "library")]
    timeline = [[0.1 * i, 0, 1 if u <= 10 else 0] for i, u in enumerate(util)]
    return _run(cuda=cuda, gpu=GpuTimeline(available=True, devices=[
        GpuDevice(0, "H100", used=used, samples=samples)]),
        steps=Steps("optimizer", 10, [0.0, 0.1 * (len(util) - 1)]),
        samples=Samples(frames=frames, stacks=[[0, 30], [0, 31, 1, 610]],
                        threads=[ThreadInfo(1, "MainThread", True)], timeline=timeline))


def test_idle_gpu_warns_and_says_what_the_host_did() -> None:
    (finding,) = GpuUnderutilization().analyze(_gpu_run([0.0] * 70 + [90.0] * 30))
    assert finding.severity == "warning" and finding.evidence["idle_share"] == 0.7
    assert finding.evidence["host_during_idle"][0] == {"what": "input pipeline", "share": 1.0}


def test_busy_or_unused_gpu_is_clean() -> None:
    assert GpuUnderutilization().analyze(_gpu_run([95.0] * 100)) == []
    assert GpuUnderutilization().analyze(_gpu_run([0.0] * 100, used=False, cuda=False)) == []
    assert GpuUnderutilization().analyze(Run()) == []  # NVML unavailable


def test_host_activity_names_user_lines() -> None:
    run = _gpu_run([0.0] * 10 + [90.0] * 10)
    assert host_activity(run, [1.5], 0.1) == [("/proj/train.py:30", 1.0)]


# -- NVML sampler with a fake NVML --
class FakeNvml:
    """The part of pynvml the sampler uses, for one GPU."""

    def __init__(self, buffered: bool, pids: tuple[int, ...] = (4242,)) -> None:
        self.buffered = buffered
        self.pids = pids
        self.util = 37.0
        self.stamps = [3_000_000, 3_100_000]  # µs wall clock
        self.shut = False

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return f"gpu{index}"

    def nvmlDeviceGetName(self, _handle: str) -> bytes:
        return b"Fake H100"

    def nvmlDeviceGetMemoryInfo(self, _handle: str) -> SimpleNamespace:
        return SimpleNamespace(total=80 * 2**30, used=3 * 2**30)

    def nvmlDeviceGetComputeRunningProcesses(self, _handle: str) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=p) for p in self.pids]

    def nvmlDeviceGetUtilizationRates(self, _handle: str) -> SimpleNamespace:
        return SimpleNamespace(gpu=self.util, memory=12.0)

    def nvmlDeviceGetSamples(self, _handle: str, _kind: int, last: int) -> tuple[int, list[Any]]:
        if not self.buffered:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        return 0, [SimpleNamespace(timeStamp=s, sampleValue=SimpleNamespace(uiVal=50))
                   for s in self.stamps if s > last]

    def nvmlShutdown(self) -> None:
        self.shut = True


def test_gpu_sampler_reads_rates_and_matches_the_target_process() -> None:
    nvml, clock = FakeNvml(buffered=False), FakeClock()
    sampler = GpuSampler(nvml, pid=4242, t0=0.0, clock=clock, wall=lambda: 1000.0)
    for step in range(3):
        clock.now = 0.1 * step
        sampler.sample()
    timeline = sampler.result()
    (device,) = timeline.devices
    assert timeline.available and device.used and device.name == "Fake H100"
    assert [row[:3] for row in device.samples] == [[0.0, 37.0, 12.0], [0.1, 37.0, 12.0],
                                                   [0.2, 37.0, 12.0]]
    assert nvml.shut


def test_gpu_sampler_takes_buffered_samples_once_with_their_timestamps() -> None:
    nvml, clock = FakeNvml(buffered=True, pids=(1,)), FakeClock()
    sampler = GpuSampler(nvml, pid=4242, t0=0.0, clock=clock, wall=lambda: 2.0)
    sampler.sample()
    sampler.sample()  # nothing new in the buffer
    (device,) = sampler.result().devices
    assert [row[:2] for row in device.samples] == [[1.0, 50.0], [1.1, 50.0]]
    assert not device.used


def test_gpu_sampler_unavailable_without_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    sampler, timeline = GpuSampler.create(pid=1, t0=0.0)
    assert sampler is None and not timeline.available
    assert "nvidia-ml-py" in timeline.reason
    assert gpu_module.load_nvml()[0] is None


# -- workers --
def _worker_record(pid: int, worker: int, cpu: float) -> dict[str, Any]:
    return {"type": "worker-samples", "pid": pid, "worker": worker, "cpu_s": cpu, "ticks": 10,
            "interval_s": 0.01,
            "frames": [{"file": "/proj/data.py", "function": "D.__getitem__", "line": 5,
                        "kind": "user"}],
            "stacks": [[0, 7]], "threads": [{"id": 1, "name": "MainThread", "main": True}],
            "counts": [[0, 0, 10, cpu]]}


def test_build_workers_merges_processes_by_worker_id() -> None:
    records = [_worker_record(100, 0, 0.5), _worker_record(101, 1, 0.25),
               _worker_record(102, 0, 0.25)]  # worker 0 re-forked for the next epoch
    workers = build_workers({"worker-samples": records})
    assert workers.processes == 3 and workers.cpu_s == 1.0
    samples = workers.samples
    assert len(samples.frames) == 1 and samples.stacks == [[0, 7]]
    assert [t.name for t in samples.threads] == ["DataLoader worker 0", "DataLoader worker 1"]
    assert sorted((c.thread, c.wall) for c in samples.counts) == [(0, 20), (1, 10)]


# -- end to end: the real scripts --
def _fixtures() -> list[Any]:
    cases = []
    for rule in RULES:
        rule_dir = PATHOLOGIES / rule
        for script in sorted(rule_dir.glob("*.py")):
            cases.append(pytest.param(rule_dir.name, script, id=f"{rule_dir.name}/{script.stem}"))
    return cases


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@pytest.mark.parametrize(("rule", "script"), _fixtures())
def test_pathology_fixture(profile, rule: str, script: Path) -> None:
    result = profile(script)
    assert result.returncode == 0, result.stderr.decode()
    report = result.report()
    findings = report["findings"]
    strong = [f for f in findings if f["severity"] != "info"]
    mine = [f for f in findings if f["rule"] == rule]
    if script.stem.startswith("clean"):
        assert not mine and not strong, findings
        return
    if script.stem.startswith("gpu") and not _cuda():
        assert not mine, findings  # without a GPU there is no device to starve or copy to
        return
    assert mine, [f["rule"] for f in findings]
    location = mine[0]["location"]
    assert location["file"] == str(script) and location["line"] > 0


def test_workers_are_followed_and_their_hot_lines_attributed(profile) -> None:
    script = PATHOLOGIES / "dataloader-bottleneck" / "workers_too_slow.py"
    report = profile(script).report()
    workers = report["run"]["workers"]
    assert workers["processes"] >= 2 and workers["cpu_s"] > 0
    (finding,) = [f for f in report["findings"] if f["rule"] == "dataloader-bottleneck"]
    assert finding["evidence"]["loader"]["num_workers"] == 2
    assert finding["evidence"]["hot_lines"][0]["function"] == "Augmented.__getitem__"
    assert finding["location"]["function"] == "Augmented.__getitem__"


@pytest.mark.parametrize("context", ["spawn", "forkserver"])
def test_a_dataloader_that_spawns_its_workers_runs_as_without_dldoctor(profile, write_script,
                                                                       context) -> None:
    # Such a DataLoader pickles its worker target: dldoctor's wrapped worker loop must pickle
    # (it did not: "Can't pickle local object"), and the workers run unwrapped, unsampled.
    script = write_script("spawned.py", f"""
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        if __name__ == "__main__":
            data = TensorDataset(torch.arange(64.0).reshape(32, 2))
            loader = DataLoader(data, batch_size=8, num_workers=2,
                                multiprocessing_context="{context}")
            print(sum(float(batch.sum()) for (batch,) in loader))
        """)
    plain = run_plain(script, timeout=120)
    assert plain.returncode == 0, plain.stderr.decode()
    result = profile(script, options=("-q",))
    assert (result.returncode, result.stdout) == (0, plain.stdout), result.stderr.decode()
    meta = result.report()["run"]["meta"]
    assert (meta["status"], meta["incomplete"]) == ("ok", False)


def test_the_followed_worker_loop_pickles_as_torchs_own() -> None:
    import pickle

    worker = pytest.importorskip("torch.utils.data._utils.worker")
    followed = follow_worker_loop(worker._worker_loop, lambda: None)
    assert pickle.loads(pickle.dumps(followed)) is worker._worker_loop


def test_sync_after_training_is_not_flagged_and_report_loads(profile) -> None:
    result = profile(PATHOLOGIES / "host-device-sync" / "clean_log_every_n.py")
    report = Report.load(result.out_dir)
    syncs = {(s.line, s.steps) for s in report.run.breakdown.syncs}
    assert syncs and all(steps <= report.run.breakdown.steps // 10 for _line, steps in syncs)
    assert not report.findings


@pytest.mark.parametrize("model", ["torch_mlp", "torch_cnn"])
def test_reference_model_breakdown_adds_up_and_is_clean(tmp_path: Path, model: str) -> None:
    out = tmp_path / "run"
    result = run_cli(["profile", "--out", str(out), "-m", f"reference_models.{model}", "--",
                      "--epochs", "2"], cwd=REPO)
    result.out_dir = out
    assert result.returncode == 0, result.stderr.decode()
    report = result.report()
    assert not [f for f in report["findings"] if f["severity"] != "info"], report["findings"]
    run = report["run"]
    breakdown = run["breakdown"]
    window = run["steps"]["times"][-1] - run["steps"]["times"][0]
    assert breakdown["steps"] == run["steps"]["count"] - 1 > 5
    assert sum(breakdown["totals_s"]) == pytest.approx(window, rel=0.10)
    named = dict(zip(breakdown["phases"], breakdown["totals_s"]))
    assert named["forward"] > 0 and named["backward"] > 0 and named["optimizer"] > 0
    assert breakdown["forward_roots"] == ["Sequential"]


# -- renderers --
def test_html_and_trace_show_the_breakdown_and_gpu() -> None:
    from dldoctor.render.html import HtmlRenderer
    from dldoctor.render.trace import TraceRenderer

    run = _gpu_run([0.0] * 5 + [90.0] * 5)
    breakdown = run.breakdown
    rows = [[1.0, 1.0, 0.5, 0.2, 0.2, 0.05, 0.0, 0.0, 0.05],
            [2.0, 1.0, 0.5, 0.2, 0.2, 0.05, 0.0, 0.0, 0.05]]
    loader = LoaderInfo(dataset="<Evil>", num_workers=0, file="/proj/train.py", line=3)
    syncs = [SyncSite("item", "/proj/train.py", 21, "train", 100, 100, 0.01)]
    run = Run(**{**run.__dict__, "breakdown": StepBreakdown(
        **{**breakdown.__dict__, "rows": rows, "loaders": [loader], "syncs": syncs})})
    html = HtmlRenderer().render(Report(run=run))
    assert "Where step time goes" in html and "&lt;Evil&gt;" in html and "<Evil>" not in html
    assert "train.py:21" in html and '"phases": ["data"' in html
    trace = TraceRenderer().render(Report(run=run))
    assert '"name":"step phases"' in trace and '"GPU 0 utilisation %"' in trace
    assert trace.count('"cat":"phase"') == 10  # 5 phases with time x 2 kept steps
