"""Torch step breakdown, host-device syncs and transfers, DataLoader facts (collector
``torch-steps``).

Installed when the target imports torch (never imported here). Cheap hooks only:

- data: the DataLoader iterator's ``__next__`` (the user's Dataset/collate code runs inside it
  when ``num_workers=0``; with workers it is the wait for them);
- forward: the *outermost* module call. ``nn.Module.__call__`` is wrapped only until the root
  modules are known (the second step, or 64 root calls); then forward hooks on the roots
  replace it (torch's global forward hooks would put every module call on its ~3 µs slow path
  and make ``torch.compile`` warn);
- backward: ``torch.autograd.backward``/``grad``; optimizer: the global optimizer step hooks;
- syncs: ``Tensor.item/cpu/numpy/tolist/__float__/__int__/__bool__/__format__/__repr__/
  __array__``, ``.to("cpu")`` of a device tensor and ``torch.cuda.synchronize``, counted per user
  call site. With CUDA only calls on CUDA tensors count (their wall time is the stall); on
  CPU-only torch every such call from user code inside a step counts (it would stall a GPU);
- transfers: ``Tensor.to(device)``/``.cuda()`` per user call site: bytes, time, pageable bytes,
  and whether the very same tensor was sent again.

Only the main thread is timed; nothing is recorded before the first step mark or in forked
children. Calls made directly by torch's own code (optimizers, AMP) are not the user's and are
skipped.

Duty cycle: the first ``WARM_STEPS`` steps are all timed, then about one step in k (gaps drawn
at random, so that work done every n-th step is neither always nor never seen), with k such
that timed steps cost at most ``COST_SHARE`` of the run. The step hooks (everything above but
the DataLoader's ``__init__`` and the worker loop) are *in place only during timed steps*
(``patches.Patch``): an untimed step runs no wrapper of ours, only the step mark. Even a
pass-through wrapper costs a few microseconds per call between torch kernels (cold caches),
~40 us per step for ten of them: 1.5 % of a 3 ms step."""

from __future__ import annotations

import functools
import math
import os
import random
import sys
import threading
import weakref
from collections.abc import Callable
from types import FrameType, MethodType, ModuleType
from typing import Any

from dldoctor.collectors.bounded import Decimator
from dldoctor.collectors.callas import as_caller, calling
from dldoctor.collectors.dataloader import describe_loader, hook_loader, remember_loader
from dldoctor.collectors.frames import classify
from dldoctor.collectors.imports import when_imported
from dldoctor.collectors.patches import Patch
from dldoctor.collectors.phases import (
    BACKWARD,
    DATA,
    FORWARD,
    OPTIMIZER,
    PHASES,
    ROW_CAP,
    SYNC,
    TRANSFER,
    PhaseClock,
    SiteTable,
    StepWindows,
)
from dldoctor.collectors.steps import OPTIMIZER as OPTIMIZER_SOURCE
from dldoctor.collectors.workers import WorkerFollower, follow_worker_loop
from dldoctor.run import USER, LoaderInfo, Run, StepBreakdown, SyncSite, TransferSite
from dldoctor.runner.channel import ChannelWriter
from dldoctor.stats import input_pipeline_lines

SYNC_METHODS = {"item": "item", "cpu": "cpu", "numpy": "numpy", "tolist": "tolist",
                "__float__": "float", "__int__": "int", "__bool__": "bool",
                "__format__": "format", "__repr__": "repr", "__array__": "array"}
ROOT_LEARN_CALLS = 64
# Duty cycle (see the module docstring): HOOK_COST_S is what one timed step costs the target
# (putting the hooks in and taking them out, their calls, the step's bookkeeping): ~250 us,
# measured as the slowdown of the torch-mlp reference model (1.45 ms steps on 2 cores) per
# timed step, far more than the hooks' own run time (caches). Timed steps then cost at most
# COST_SHARE of the run.
WARM_STEPS, HOOK_COST_S, COST_SHARE, MAX_STRIDE = 50, 250e-6, 0.003, 100
Site = tuple[str, int, str]


class TorchSteps:
    """The ``torch-steps`` child collector (see the module docstring)."""

    name = "torch-steps"

    def __init__(self, agent: Any) -> None:
        self._config = agent.config
        self.enabled = agent.config.options.get("torch", "on") != "off"
        self.follow_workers = agent.config.options.get("workers", "on") != "off"
        self._clock: Callable[[], float] = agent._clock
        self._recorder = agent.steps
        self.phases = PhaseClock(self._clock)
        self.syncs = SiteTable(2)  # calls, seconds
        # calls, bytes, seconds, pageable bytes, same data, non-blocking
        self.transfers = SiteTable(6)
        self.windows = StepWindows(self.phases, [self.syncs, self.transfers], agent.config.t0)
        self.loaders: list[dict[str, Any]] = []
        self.armed = False  # inside the training loop (a step mark was seen), main thread only
        self.measuring = True  # this step is timed (see the duty cycle above)
        self.engaged = False  # the step hooks are in place
        self._patches: list[Patch] = []  # in place during timed steps only
        self._lasting: list[Patch] = []  # in place from the first step mark on
        self._pre_hook: Any = None  # the optimizer step pre-hook's handle while engaged
        self._marks = 0  # marks seen by the full path (not the untimed fast path)
        self._gap = 0  # > 1: marks to count before the mark that starts the next timed step
        self._span = 1  # marks from the previous full-path mark to the next one
        self._rng = random.Random(0)
        self._last_mark: float | None = None
        self._step_s = 0.0  # moving average of step time
        self.busy = False  # inside an observed call: nested ones pass through
        self.cuda = False
        self._main: int | None = threading.main_thread().ident
        self._torch: ModuleType | None = None
        self._torch_dir = "\0"
        self._last_sent: dict[Site, tuple[int, int, int]] = {}
        self.forward = _ForwardTimer(self)
        # torch.compile traces hooks and Tensor methods: under tracing they must do nothing
        # (dynamo folds is_compiling() to True), or they would break the graph.
        self.compiling: Callable[[], bool] = lambda: False

    # -- ChildCollector -------------------------------------------------------------------
    def start(self) -> None:
        """Hook torch, and listen to step marks, once the target imports it (a target without
        torch pays nothing per step: its steps may be a few hundred microseconds)."""
        if not self.enabled:
            return
        os.register_at_fork(after_in_child=self._disable)
        when_imported("torch", self._install)

    def drain(self) -> list[dict[str, Any]]:
        """Return one ``torch-steps`` record once torch is hooked (cumulative, rows streamed)."""
        if not self.enabled:
            return [{"type": "torch-steps", "disabled": True}]
        if self._torch is None:
            return []
        return [{"type": "torch-steps", "cuda": self.cuda, "phases": list(PHASES),
                 "windows": self.windows.records(), "loaders": [dict(x) for x in self.loaders],
                 "forward_roots": self.forward.root_names(),
                 "dropped_sites": self.syncs.dropped + self.transfers.dropped}]

    def finish(self) -> None:
        """Stop recording (the target is exiting)."""
        self.armed = False

    # -- state ----------------------------------------------------------------------------
    def _disable(self) -> None:
        self.armed = False
        self._main = None

    def on_main(self) -> bool:
        """Return True on the thread being timed, during a timed step."""
        return self.measuring and threading.get_ident() == self._main

    def _on_mark(self, source: str, now: float) -> None:
        gap = self._gap
        if gap > 1:  # an untimed step ended and another begins: count it, nothing else
            self._gap = gap - 1
            return
        self._full_mark(source, now)

    def _full_mark(self, source: str, now: float) -> None:
        try:
            if threading.get_ident() != self._main or self._torch is None:
                return
            if source == OPTIMIZER_SOURCE:  # the optimizer's step ends with its mark
                self.phases.exit(OPTIMIZER)
            if not self.armed:
                self.cuda = _cuda_available(self._torch)
                self.armed = True
            was_timed = self.measuring
            self.measuring = self._next_is_timed(now)
            if was_timed or self.measuring:  # untimed to untimed: nothing was recorded
                self.windows.mark(source, now, timed=was_timed)
                self.forward.on_step()
            if self.measuring:
                if not self.engaged:
                    self.phases.reset(now)
                    self._engage()
            elif self.engaged:
                self._disengage()
                self.phases.reset(now)
                self.windows.forget()  # the next timed step starts a new baseline
        except Exception:  # never break the target's optimizer step
            pass

    def _next_is_timed(self, now: float) -> bool:
        """Return whether the step starting now is timed (its hooks in place and recording);
        after a timed step, draw how many steps go by before the next one."""
        if self._last_mark is not None:
            step = (now - self._last_mark) / self._span
            self._step_s = step if not self._step_s else 0.9 * self._step_s + 0.1 * step
        self._last_mark = now
        self._marks += 1
        self._span = 1
        if self._marks < WARM_STEPS or not self.measuring:  # warm-up, or the gap has run out
            return True
        stride = 1
        if self._step_s > 0:
            stride = min(MAX_STRIDE, max(1, math.ceil(HOOK_COST_S / (COST_SHARE * self._step_s))))
        gap = self._rng.randint(1, 2 * stride - 1)  # steps from this one to the next timed: mean
        if gap == 1:  # stride; random, so that work done every n-th step is not always missed
            return True
        self._gap = self._span = gap - 1  # untimed steps now; the fast path counts them down
        return False

    def _engage(self) -> None:
        """Put the step hooks in place (for a timed step)."""
        for patch in self._patches + self._lasting:
            patch.apply()
        optimizer = sys.modules.get("torch.optim.optimizer")
        register = getattr(optimizer, "register_optimizer_step_pre_hook", None)
        if register is not None and self._pre_hook is None:
            self._pre_hook = register(self._optimizer_starts)
        self.forward.engage()
        self.engaged = True

    def _disengage(self) -> None:
        """Take the step hooks out (untimed steps run none of our code but the mark). Called
        at a step mark, from inside the optimizer's post-hooks: only the pre-hooks' dict may
        change here."""
        for patch in self._patches:
            patch.remove()  # one someone wrapped again stays, passing calls through
        if self._pre_hook is not None:
            self._pre_hook.remove()
            self._pre_hook = None
        self.forward.disengage()
        self.engaged = False

    def _optimizer_starts(self, *_args: Any) -> None:
        if self.on_main():
            self.phases.enter(OPTIMIZER)

    def make_follower(self) -> WorkerFollower:
        """Return a sampler for a forked DataLoader worker, writing to the same channel."""
        return WorkerFollower(ChannelWriter(self._config.channel).write, self._config.interval_s,
                              self._clock, self._config.t0, os.getpid())

    def _install(self, torch: ModuleType) -> None:
        """Prepare the step hooks; they go in at the first step mark (timed steps only), on
        top of whatever other collectors wrapped when torch was imported."""
        self._torch = torch
        self._torch_dir = os.path.dirname(str(torch.__file__)) + os.sep
        self.compiling = getattr(getattr(torch, "compiler", None), "is_compiling",
                                 self.compiling)
        self._patches, self._lasting = install_hooks(torch, self)
        self._recorder.listen(self._on_mark)

    # -- observed calls -------------------------------------------------------------------
    def user_site(self, frame: FrameType | None) -> Site | None:
        """Return the innermost user frame from ``frame`` outwards, or None when ``frame`` is
        torch's own code (torch syncs knowingly) or no user frame calls it."""
        if frame is None or frame.f_code.co_filename.startswith(self._torch_dir):
            return None
        return innermost_user(frame)

    def sync_call(self, call: Callable[..., Any], kind: str, tensor: Any, args: tuple[Any, ...],
                  kwargs: dict[str, Any], depth: int = 2) -> Any:
        """Run ``call``; count it as a sync at the user's call site when it is one."""
        if not self.on_main() or self.phases.current == DATA or (
                self.cuda and tensor is not None and not getattr(tensor, "is_cuda", False)):
            return call(*args, **kwargs)
        site = self.user_site(sys._getframe(depth))
        if site is None:
            return call(*args, **kwargs)
        result, seconds = self._timed(call, SYNC, args, kwargs)
        self.syncs.add((kind, *site), (seconds,))
        return result

    def transfer_call(self, call: Callable[..., Any], tensor: Any, target: str | None,
                      args: tuple[Any, ...], kwargs: dict[str, Any], non_blocking: bool) -> Any:
        """Run ``call`` (a ``.to``/``.cuda``); record it when it moves data to a device."""
        if target is None or not self.on_main():
            return call(*args, **kwargs)
        if not tensor.is_cpu:
            if target == "cpu":  # device to host: a sync
                return self.sync_call(call, "to-cpu", tensor, args, kwargs, depth=3)
            return call(*args, **kwargs)
        if target == "cpu":  # a no-op here; on CPU-only torch, the device move of GPU code
            if not self.cuda and self.phases.current != DATA:
                self._record_copy("move", tensor, sys._getframe(2), 0.0, non_blocking)
            return call(*args, **kwargs)
        frame = sys._getframe(2)
        result, seconds = self._timed(call, TRANSFER, args, kwargs)
        self._record_copy("h2d", tensor, frame, seconds, non_blocking)
        return result

    def _record_copy(self, kind: str, tensor: Any, frame: FrameType, seconds: float,
                     non_blocking: bool) -> None:
        """Count a host-to-device copy (or CPU-only move) of ``tensor`` at the user's line."""
        site = self.user_site(frame)
        if site is None:
            return
        nbytes = tensor.element_size() * tensor.nelement()
        pageable = nbytes if kind == "h2d" and not _pinned(tensor) else 0
        signature = (tensor.data_ptr(), tensor._version, nbytes)
        same = self._last_sent.get(site) == signature
        if len(self._last_sent) < 4 * self.transfers.cap:
            self._last_sent[site] = signature
        self.transfers.add((kind, *site), (nbytes, seconds, pageable, int(same), int(non_blocking)))

    def _timed(self, call: Callable[..., Any], phase: int, args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> tuple[Any, float]:
        self.busy = True
        self.phases.enter(phase)
        start = self._clock()
        try:
            result = call(*args, **kwargs)
        finally:
            seconds = self._clock() - start
            self.phases.exit(phase)
            self.busy = False
        return result, seconds

    def loader_started(self, iterator: Any, loader: Any, frame: FrameType | None) -> None:
        """Remember a DataLoader's settings the first time one of its iterators is made."""
        remember_loader(self.loaders, iterator, describe_loader(loader, innermost_user(frame)))


def innermost_user(frame: FrameType | None) -> Site | None:
    """Return (file, line, function) of the innermost user frame from ``frame`` outwards."""
    while frame is not None:
        code = frame.f_code
        if classify(code.co_filename) == USER:
            return code.co_filename, frame.f_lineno or code.co_firstlineno, code.co_qualname
        frame = frame.f_back
    return None


class _ForwardTimer:
    """Times the outermost module call while engaged (timed steps).

    Learning phase: ``nn.Module.__call__`` is wrapped (one Python call per module call; torch's
    global forward hooks would cost ~3 µs per call and make ``torch.compile`` warn). Once the
    root modules are known (two timed steps, or ``ROOT_LEARN_CALLS`` root calls) the class
    attribute is restored and only the roots' own classes get a ``__call__`` wrapper (it passes
    other instances straight through), taken out again whenever the step hooks are. Nothing
    is ever put on the user's module objects: forward hooks on them would be seen by
    ``copy.deepcopy``, ``pickle``/``torch.save`` (which failed: the hooks are bound to
    dldoctor's objects) and ``torch.jit.script`` (which failed on the hook's signature)."""

    def __init__(self, owner: TorchSteps) -> None:
        self._owner = owner
        self._depth = 0
        self._roots: list[weakref.ReferenceType[Any]] = []
        self._names: list[str] = []
        self._root_calls = 0
        self._steps = 0
        self._call: Patch | None = None
        self._class_calls: dict[type, Patch] = {}  # per root class: its ``__call__`` wrapper
        self._applied: list[Patch] = []
        self._live: dict[int, weakref.ReferenceType[Any]] = {}  # id -> root, while engaged
        self.engaged = False
        self.narrowed = False

    def install(self, module_cls: Any) -> None:
        """Prepare the learning-phase wrapper of ``module_cls.__call__`` (``torch.nn.Module``);
        ``engage()`` puts it in place."""
        self._call = Patch(module_cls, "__call__", self._learning_call)

    def _learning_call(self, original: Callable[..., Any]) -> Callable[..., Any]:
        owner = self._owner

        @functools.wraps(original)
        def __call__(module: Any, *args: Any, **kwargs: Any) -> Any:
            if owner.compiling():  # torch.compile traces this: nothing of ours in its way
                return original(module, *args, **kwargs)
            if not owner.on_main():
                return as_caller(sys._getframe(1))(original, module, *args, **kwargs)
            return self._time(sys._getframe(1), original, module, args, kwargs)

        return __call__

    def _time(self, caller: FrameType, original: Callable[..., Any], module: Any,
              args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call ``original(module, ...)`` as ``caller`` (warnings with a stacklevel name the
        user's line), timed as a module call."""
        call = as_caller(caller)
        self.pre(module, args)
        try:
            return call(original, module, *args, **kwargs)
        finally:
            self.post(module, args, None)

    def _root_call(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """``__call__`` of a root module's class once narrowed: times the roots' calls; other
        instances' calls (and every call while torch.compile traces) just go through."""
        owner, live = self._owner, self._live

        @functools.wraps(original)
        def __call__(module: Any, *args: Any, **kwargs: Any) -> Any:
            if owner.compiling():
                return original(module, *args, **kwargs)
            ref = live.get(id(module))
            if ref is None or ref() is not module or not owner.on_main():
                return as_caller(sys._getframe(1))(original, module, *args, **kwargs)
            return self._time(sys._getframe(1), original, module, args, kwargs)

        return __call__

    def engage(self) -> None:
        """Start timing: the learning wrapper, or the roots' classes' wrappers once narrowed."""
        if self.engaged:
            return
        self.engaged = True
        self._depth = 0
        if not self.narrowed:
            if self._call is not None:
                self._call.apply()
            return
        for ref in self._roots:
            module = ref()
            if module is None:
                continue
            self._live[id(module)] = ref
            cls = type(module)
            patch = self._class_calls.get(cls)
            if patch is None:
                patch = self._class_calls[cls] = Patch(cls, "__call__", self._root_call)
            if not patch.applied:
                patch.apply()
                self._applied.append(patch)

    def disengage(self) -> None:
        """Stop timing (an untimed step follows): take the wrapper or the hooks out."""
        if not self.engaged:
            return
        self.engaged = False
        self._depth = 0
        if not self.narrowed and self._call is not None:
            self._call.remove()
        for patch in reversed(self._applied):
            patch.remove()
        self._applied = []
        self._live.clear()  # in place: the wrappers hold this dict

    def pre(self, module: Any, _args: Any) -> None:
        """Entering the outermost module starts the forward phase."""
        owner = self._owner
        if owner.compiling() or not owner.on_main():
            return
        if self._depth == 0 and owner.phases.current != BACKWARD:
            owner.phases.enter(FORWARD)
            if not self.narrowed and self._learn(module) and self._root_calls >= ROOT_LEARN_CALLS:
                self.narrow()
        # (inside backward, activation checkpointing recomputes a submodule's forward: that
        # is backward time, and the submodule is no root; ``post`` then exits no phase)
        self._depth += 1

    def post(self, _module: Any, _args: Any, _output: Any) -> None:
        """Leaving the outermost module ends the forward phase."""
        if self._owner.compiling() or not self._owner.on_main() or self._depth == 0:
            return
        self._depth -= 1
        if self._depth == 0:
            self._owner.phases.exit(FORWARD)

    def _learn(self, module: Any) -> bool:
        """Remember a root module; return True if it is (now) a known root."""
        self._root_calls += 1
        if any(r() is module for r in self._roots):
            return True
        if len(self._roots) < 16:
            self._roots.append(weakref.ref(module))
            self._names.append(type(module).__name__)
            return True
        return False

    def on_step(self) -> None:
        """A step ended with the timer engaged: after two, the roots are known."""
        if not self.engaged:
            return
        self._steps += 1
        if self._steps >= 2 and not self.narrowed and self._depth == 0:
            self.narrow()

    def narrow(self) -> None:
        """Take the ``Module.__call__`` wrapper out and wrap the root modules' classes
        instead (if another tool wrapped ``Module.__call__`` over ours, ours stays and keeps
        timing every outermost call)."""
        if self._call is not None and not self._call.remove():
            return
        self.narrowed = True
        if self.engaged:
            self.engaged = False
            self.engage()  # the roots' classes' wrappers

    def root_names(self) -> list[str]:
        """Return the class names of the root modules timed."""
        return list(self._names)


def _pinned(tensor: Any) -> bool:
    try:
        return bool(tensor.is_pinned())
    except Exception:
        return False


def _cuda_available(torch: ModuleType) -> bool:
    try:
        return bool(torch.cuda.is_available())
    except Exception:
        return False


def install_hooks(torch: ModuleType, owner: TorchSteps) -> tuple[list[Patch], list[Patch]]:
    """Hook torch for ``owner``: the DataLoader's ``__init__`` and the worker loop now; return
    the step hooks for ``owner`` to put in place at step marks: those to take out again for
    untimed steps (DataLoader ``__next__``, backward, ``cuda.synchronize``) and those to leave
    in (``Tensor``'s methods: each change to a class makes the interpreter drop what it learnt
    about attribute lookups on its instances, and tensors are everywhere in a training step;
    their wrappers return at once in untimed steps). The forward timer and the optimizer
    pre-hook come and go with the first list (``TorchSteps._engage``)."""
    patches = [hook_loader(torch, owner)]
    owner.forward.install(torch.nn.Module)
    for name in ("backward", "grad"):
        patches.append(Patch(torch.autograd, name,
                             lambda function: _phase_wrapper(function, BACKWARD, owner)))
    if hasattr(torch, "cuda") and hasattr(torch.cuda, "synchronize"):
        patches.append(Patch(torch.cuda, "synchronize", functools.partial(
            _sync_wrapper, kind="synchronize", owner=owner)))
    tensor = torch.Tensor
    lasting = [Patch(tensor, method, functools.partial(_sync_method, kind=kind, owner=owner))
               for method, kind in SYNC_METHODS.items() if hasattr(tensor, method)]
    lasting.append(Patch(tensor, "to", lambda function: _to_method(function, torch, owner)))
    lasting.append(Patch(tensor, "cuda", lambda function: _cuda_method(function, owner)))
    worker: Any = sys.modules.get("torch.utils.data._utils.worker")
    if worker is not None and owner.follow_workers:
        loop = follow_worker_loop(worker._worker_loop, owner.make_follower)
        worker._worker_loop = loop  # torch looks it up when it starts a worker
    return patches, lasting


def _phase_wrapper(function: Callable[..., Any], phase: int,
                   owner: TorchSteps) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        call = as_caller(sys._getframe(1))
        if not owner.on_main():
            return call(function, *args, **kwargs)
        owner.phases.enter(phase)
        try:
            return call(function, *args, **kwargs)
        finally:
            owner.phases.exit(phase)

    return wrapper


def _sync_wrapper(function: Callable[..., Any], kind: str, owner: TorchSteps) -> Callable[..., Any]:
    """A module function that syncs (``torch.cuda.synchronize``), in place in timed steps."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if owner.compiling():
            return function(*args, **kwargs)
        call = calling(function, sys._getframe(1))
        if not owner.measuring or not owner.armed or owner.busy:
            return call(*args, **kwargs)
        return owner.sync_call(call, kind, None, args, kwargs)

    return wrapper


class TensorMethod:
    """A ``Tensor`` method as a descriptor: outside the calls it times it hands out torch's
    own bound method, so the call runs with no frame of dldoctor's between the caller and
    torch (warnings raised inside name the caller's line, as without dldoctor; no extra call
    on the hot path). Timed calls go through ``timed`` (the tensor first), which calls torch
    through ``as_caller``."""

    def __init__(self, function: Any, timed: Callable[..., Any], owner: TorchSteps) -> None:
        self.function, self.timed, self.owner = function, timed, owner
        self.__wrapped__ = function
        self.__name__ = getattr(function, "__name__", "")
        self.__qualname__ = getattr(function, "__qualname__", self.__name__)
        self.__doc__ = getattr(function, "__doc__", None)

    def __get__(self, tensor: Any, cls: type | None = None) -> Any:
        owner = self.owner
        if tensor is None or not owner.measuring or not owner.armed or owner.busy \
                or owner.compiling():
            return self.function.__get__(tensor, cls)
        return MethodType(self.timed, tensor)


def _sync_method(function: Any, kind: str, owner: TorchSteps) -> TensorMethod:
    def timed(tensor: Any, *args: Any, **kwargs: Any) -> Any:
        call = calling(function, sys._getframe(1))
        return owner.sync_call(call, kind, tensor, (tensor, *args), kwargs)

    return TensorMethod(function, timed, owner)


def target_device(torch: ModuleType, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """Return the device type a ``Tensor.to(*args, **kwargs)`` call moves to (None: a dtype
    change only)."""
    device = kwargs.get("device")
    if device is None and args:
        first = args[0]
        if isinstance(first, (str, int, torch.device)) and not isinstance(first, bool):
            device = first
        elif isinstance(first, torch.Tensor):
            device = first.device
    if device is None:
        return None
    if isinstance(device, int):
        return "cuda"
    if isinstance(device, str):
        return device.split(":", 1)[0]
    return str(getattr(device, "type", device))


def _to_method(function: Any, torch: ModuleType, owner: TorchSteps) -> TensorMethod:
    def timed(tensor: Any, *args: Any, **kwargs: Any) -> Any:
        call = calling(function, sys._getframe(1))
        return owner.transfer_call(call, tensor, target_device(torch, args, kwargs),
                                   (tensor, *args), kwargs, bool(kwargs.get("non_blocking")))

    return TensorMethod(function, timed, owner)


def _cuda_method(function: Any, owner: TorchSteps) -> TensorMethod:
    def timed(tensor: Any, *args: Any, **kwargs: Any) -> Any:
        call = calling(function, sys._getframe(1))
        non_blocking = bool(kwargs.get("non_blocking")) or (len(args) > 1 and args[1] is True)
        return owner.transfer_call(call, tensor, "cuda", (tensor, *args), kwargs, non_blocking)

    return TensorMethod(function, timed, owner)


# -- supervisor side --------------------------------------------------------------------------
def build_breakdown(extra: dict[str, list[dict[str, Any]]], source: str) -> StepBreakdown:
    """Return the step breakdown of the steps of ``source`` (the Run's step source) from the
    agent's ``torch-steps`` records."""
    records = extra.get("torch-steps", [])
    if not records:
        return StepBreakdown(reason="the target did not import torch")
    last = records[-1]
    if last.get("disabled"):
        return StepBreakdown(reason="the torch hooks were turned off (--torch off)")
    rows: Decimator[list[float]] = Decimator(ROW_CAP)
    window: dict[str, Any] = {}
    for record in records:
        for candidate in record.get("windows", []):
            if candidate.get("source") == source:
                rows.extend(candidate.get("rows", []), int(candidate.get("stride", 1)))
                window = candidate
    phases = [*last.get("phases", PHASES), "other"]
    duration = float(window.get("duration_s", 0.0))
    spent = [float(v) for v in window.get("phase_s", [0.0] * (len(phases) - 1))]
    syncs, transfers = (window.get("sites") or [[], []])[:2] if window else ([], [])
    return StepBreakdown(
        available=True, source=source if window else "none", cuda=bool(last.get("cuda")),
        phases=phases, steps=int(window.get("steps", 0)), duration_s=round(duration, 6),
        totals_s=[round(v, 6) for v in [*spent, max(0.0, duration - sum(spent))]],
        rows=[[*row, round(max(0.0, row[1] - sum(row[2:])), 6)] for row in rows.items],
        stride=rows.stride,
        syncs=[SyncSite(k, f, int(ln), fn, int(st), int(c[0]), c[1])
               for k, f, ln, fn, st, *c in syncs],
        transfers=[TransferSite(k, f, int(ln), fn, int(st), int(c[0]), int(c[1]), c[2], int(c[3]),
                                int(c[4]), int(c[5])) for k, f, ln, fn, st, *c in transfers],
        loaders=[LoaderInfo(**{k: v for k, v in x.items() if k in LoaderInfo.__dataclass_fields__})
                 for x in last.get("loaders", [])],
        forward_roots=list(last.get("forward_roots", [])),
    )


def bottleneck_locations(run: Run, limit: int = 50) -> list[tuple[str, int]]:
    """Return the user lines the bottleneck rules quote, whose source facts the Run should
    carry: sync and transfer sites, and the hottest input-pipeline lines of the workers."""
    breakdown = run.breakdown
    sites = [(s.file, s.line) for s in breakdown.syncs]
    sites += [(t.file, t.line) for t in breakdown.transfers]
    sites += [(s.file, s.line) for s in input_pipeline_lines(run, workers=True)[:limit]]
    return list(dict.fromkeys(sites))[:limit]
