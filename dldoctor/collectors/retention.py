"""What holds memory: a census of the user's variables, and the source lines that grow them.

In the target (``census``): walk the namespaces the user's code can name — globals of the user's
modules, locals of the user's frames on every thread's stack, attributes of the objects they
hold (two levels), mutable default arguments, class attributes, ``functools.lru_cache``s — and
report the containers, large arrays/tensors and autograd graphs found there with their size. No
``gc.get_objects()``: the cost is O(user variables), bounded by ``Budget``. Nothing is kept
between censuses but ids and numbers, so the census never keeps the target's objects alive.

The lines that grow each root are found afterwards, in the supervisor (``collectors/sites.py``)."""

from __future__ import annotations

import collections
import dis
import functools
import inspect
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import (
    BuiltinFunctionType,
    CodeType,
    FrameType,
    FunctionType,
    MethodType,
    ModuleType,
)
from typing import Any

from dldoctor.collectors.callas import is_call_shim
from dldoctor.collectors.frames import classify
from dldoctor.collectors.imports import until_imports
from dldoctor.run import USER

MIN_LENGTH = 16  # containers shorter than this are not reported
MIN_BYTES = 1 << 20  # ... unless they hold at least this much
BIG_ARRAY = 8 << 20  # a single array/tensor at least this big is reported
MIN_GRAPH = 64  # a tensor whose autograd graph has at least this many nodes is reported
SAMPLE = 16  # items sampled (half from each end) to estimate a container's bytes
MAX_DEPTH = 2  # attribute levels below a named variable
MAX_ROOTS = 64
CLOCK_EVERY = 64  # objects between two reads of the census's CPU clock
_LRU = type(functools.lru_cache(maxsize=None)(lambda: None))
_CONTAINERS: dict[type, str] = {list: "list", dict: "dict", collections.OrderedDict: "dict",
               collections.defaultdict: "dict", collections.deque: "deque", set: "set"}
_OPAQUE = (type, FunctionType, MethodType, BuiltinFunctionType, ModuleType, property)
_LEN: dict[type, Callable[[Any], int]] = {
    list: list.__len__, dict: dict.__len__, collections.OrderedDict: dict.__len__,
    collections.defaultdict: dict.__len__, collections.deque: collections.deque.__len__,
    set: set.__len__}


@dataclass
class Budget:
    """Bounds on one census: objects looked at, autograd nodes walked, CPU seconds spent by
    the census thread (CPU, not wall time: waiting for the GIL costs the target nothing)."""

    objects: int = 20_000
    graph_nodes: int = 20_000
    seconds: float = 0.05
    started: float = field(default_factory=time.thread_time)
    truncated: bool = False

    _until_clock: int = 0

    def spend(self, n: int = 1) -> bool:
        """Count ``n`` objects; return False (and remember it) once the budget is gone. The CPU
        clock (a system call) is read every ``CLOCK_EVERY`` objects."""
        self.objects -= n
        self._until_clock -= n
        if self.objects < 0:
            self.truncated = True
        elif self._until_clock <= 0:
            self._until_clock = CLOCK_EVERY
            if time.thread_time() - self.started > self.seconds:
                self.truncated = True
        return not self.truncated


@dataclass(frozen=True)
class Root:
    """One root seen in a census: how it is named and what it weighs now."""

    key: int  # id() of the object: stable while it lives
    path: str
    scope: str
    kind: str
    file: str
    function: str
    line: int
    item: str = ""
    grad: bool = False
    length: int = 0
    bytes: int = 0
    device_bytes: int = 0
    graph_nodes: int = 0  # autograd nodes created since its graph's oldest node


@dataclass(frozen=True)
class GradLocal:
    """A local variable holding a tensor with ``grad_fn`` (for ``no-grad-inference``)."""

    file: str
    line: int
    function: str
    def_line: int
    variable: str
    grad_fn: str


@dataclass
class _Where:
    scope: str
    file: str
    function: str
    line: int


class Census:
    """One pass over the user's namespaces. ``run()`` fills ``roots`` and ``grad_locals``."""

    def __init__(self, frames: dict[int, FrameType], budget: Budget | None = None,
                 oldest: dict[str, int] | None = None) -> None:
        self._frames = frames
        self.budget = budget or Budget()
        self.oldest = oldest if oldest is not None else {}  # path -> oldest graph node seen
        self._tensor = _torch_tensor_types()
        self._ndarray = _ndarray_type()
        self._seen: set[int] = set()
        self.roots: list[Root] = []
        self.grad_locals: list[GradLocal] = []

    def run(self) -> Census:
        """Scan module globals first (stable names), then each thread's user frames."""
        for module in _user_modules():
            where = _Where("global", module.__dict__.get("__file__") or "", "<module>", 0)
            self._namespace(list(module.__dict__.items()), where, "")
        for frame in self._user_frames():
            code = frame.f_code
            if not code.co_flags & inspect.CO_OPTIMIZED:  # module code: its names are globals
                self._grad_locals(list(frame.f_globals.items()), frame)
                continue
            where = _Where("local", code.co_filename, getattr(code, "co_qualname", code.co_name),
                           code.co_firstlineno)
            items = _frame_locals(frame)
            self._grad_locals(items, frame)
            self._namespace(items, where, "")
        self.roots.sort(key=lambda r: -(r.bytes + r.device_bytes + r.graph_nodes))
        del self.roots[MAX_ROOTS:]
        self._frames = {}
        return self

    def _user_frames(self) -> Iterator[FrameType]:
        """User function frames and running module bodies, outermost first on each thread."""
        for top in self._frames.values():
            chain = []
            frame: FrameType | None = top
            while frame is not None:
                code = frame.f_code
                if (code.co_flags & inspect.CO_OPTIMIZED or code.co_name == "<module>") \
                        and classify(code.co_filename) == USER and not is_call_shim(code):
                    chain.append(frame)
                frame = frame.f_back
            yield from reversed(chain)

    def _namespace(self, items: list[tuple[str, Any]], where: _Where, prefix: str,
                   depth: int = 0) -> None:
        for name, value in items:
            if not isinstance(name, str) or name.startswith("__") or not self.budget.spend():
                continue
            if id(value) in self._seen:
                continue
            self._seen.add(id(value))
            self._value(prefix + name, value, where, depth)

    def _value(self, path: str, value: Any, where: _Where, depth: int) -> None:
        kind = type(value)
        if kind in _CONTAINERS:
            self._container(path, value, where)
        elif self._tensor and kind in self._tensor:
            self._tensor_root(path, value, where)
        elif kind is self._ndarray:
            nbytes = _array_bytes(value)
            if nbytes >= BIG_ARRAY:
                self._add(path, value, where, "ndarray", item=_describe(value), bytes=nbytes)
        elif kind is _LRU:
            self._lru(path, value, where)
        elif issubclass(kind, FunctionType):  # by type: isinstance reads a proxy's __class__
            self._defaults(path, value)
            self._closure(path, value)
        elif issubclass(kind, type):
            if depth == 0 and classify(getattr(sys.modules.get(value.__module__), "__file__",
                                               "") or "") == USER:
                in_class = _Where("class", where.file, where.function, where.line)
                self._namespace(list(vars(value).items()), in_class, path + ".", MAX_DEPTH)
        elif depth < MAX_DEPTH and not issubclass(kind, ModuleType):
            attrs = _instance_dict(value)
            if attrs is not None:
                scope = where if where.scope == "attribute" else _Where(
                    "attribute", where.file, where.function, where.line)
                self._namespace(attrs, scope, path + ".", depth + 1)

    def _add(self, path: str, value: Any, where: _Where, kind: str, **figures: Any) -> None:
        self.roots.append(Root(key=id(value), path=path, scope=where.scope, kind=kind,
                               file=where.file, function=where.function, line=where.line,
                               **figures))

    def _container(self, path: str, value: Any, where: _Where) -> None:
        length = _LEN[type(value)](value)
        if isinstance(value, dict) and length <= 64:
            self._named_entries(path, value, where)
        items = _sample(value)
        host, device, grad = 0, 0, 0
        for item in items:
            h, d, g = self._item_bytes(item)
            host, device, grad = host + h, device + d, grad + g
        scale = length / len(items) if items else 0.0
        host_total = sys.getsizeof(value) + int(host * scale)
        device_total = int(device * scale)
        if length < MIN_LENGTH and host_total + device_total < MIN_BYTES:
            return
        first = items[-1] if items else None
        self._add(path, value, where, _CONTAINERS[type(value)],
                  item=_describe(first, self._tensor) if items else "", grad=grad > 0,
                  length=length, bytes=host_total, device_bytes=device_total)

    def _named_entries(self, path: str, value: dict[Any, Any], where: _Where) -> None:
        """Containers stored under string keys (``logs["loss"]``) are followed on their own."""
        try:
            entries = [(k, v) for k, v in list(value.items()) if isinstance(k, str)
                       and type(v) in _CONTAINERS and id(v) not in self._seen]
        except RuntimeError:
            return
        for key, entry in entries:
            if self.budget.spend():
                self._seen.add(id(entry))
                self._container(f"{path}[{key!r}]", entry, where)

    def _item_bytes(self, item: Any, depth: int = 0) -> tuple[int, int, int]:
        """Return (host bytes, device bytes, tensors with grad_fn) of one item, one level deep."""
        kind = type(item)
        if self._tensor and kind in self._tensor:
            nbytes, on_device = _tensor_bytes(item)
            grad = 1 if _grad_fn(item) is not None else 0
            return (0, nbytes, grad) if on_device else (nbytes, 0, grad)
        if kind is self._ndarray:
            return _array_bytes(item), 0, 0
        if depth == 0 and kind in (tuple, list, dict):
            values = list(item.values()) if kind is dict else list(item)
            total = [0, 0, 0]
            for sub in values[:8]:
                parts = self._item_bytes(sub, 1)
                total = [a + b for a, b in zip(total, parts)]
            scale = len(values) / min(len(values), 8) if values else 0.0
            return (sys.getsizeof(item) + int(total[0] * scale), int(total[1] * scale),
                    total[2])
        try:
            return _shallow_size(item), 0, 0
        except TypeError:
            return 0, 0, 0

    def _tensor_root(self, path: str, value: Any, where: _Where) -> None:
        nbytes, on_device = _tensor_bytes(value)
        grad_fn = _grad_fn(value)
        nodes = 0
        if grad_fn is not None:
            nodes, self.oldest[path] = _graph_span(grad_fn, self.budget, self.oldest.get(path))
        if nodes < MIN_GRAPH and nbytes < BIG_ARRAY:
            return
        self._add(path, value, where, "tensor", item=_describe(value, self._tensor),
                  grad=grad_fn is not None, length=1, bytes=0 if on_device else nbytes,
                  device_bytes=nbytes if on_device else 0, graph_nodes=nodes)

    def _lru(self, path: str, value: Any, where: _Where) -> None:
        wrapped = getattr(value, "__wrapped__", None)
        code = getattr(wrapped, "__code__", None)
        if code is None or classify(code.co_filename) != USER:
            return
        info = value.cache_info()
        if info.maxsize is not None and info.maxsize <= 4096 or info.currsize < MIN_LENGTH:
            return
        self._add(path, value, _Where("cache", code.co_filename, code.co_name,
                                      code.co_firstlineno), "lru_cache",
                  item=f"maxsize={info.maxsize}", length=info.currsize)

    def _defaults(self, path: str, function: FunctionType) -> None:
        code = function.__code__
        if classify(code.co_filename) != USER:
            return
        names = code.co_varnames[:code.co_argcount]
        defaults = function.__defaults__ or ()
        pairs = list(zip(names[len(names) - len(defaults):], defaults))
        pairs += list((function.__kwdefaults__ or {}).items())
        where = _Where("default", code.co_filename, code.co_name, code.co_firstlineno)
        self._namespace([(f"{path}({name}=)", value) for name, value in pairs], where, "",
                        MAX_DEPTH)

    def _closure(self, path: str, function: FunctionType) -> None:
        """Variables a user function captured from the function that made it."""
        code = function.__code__
        cells = function.__closure__ or ()
        if not cells or classify(code.co_filename) != USER:
            return
        pairs = []
        for name, cell in zip(code.co_freevars, cells):
            try:
                pairs.append((f"{path}.<{name}>", cell.cell_contents))
            except ValueError:  # an empty cell
                continue
        where = _Where("closure", code.co_filename, code.co_name, code.co_firstlineno)
        self._namespace(pairs, where, "", MAX_DEPTH)

    def _grad_locals(self, items: list[tuple[str, Any]], frame: FrameType) -> None:
        if not self._tensor:
            return
        code = frame.f_code
        for name, value in items:
            if type(value) in self._tensor:
                grad_fn = _grad_fn(value)
                if grad_fn is not None:
                    self.grad_locals.append(GradLocal(
                        code.co_filename, frame.f_lineno or code.co_firstlineno,
                        getattr(code, "co_qualname", code.co_name), code.co_firstlineno, name,
                        type(grad_fn).__name__))


@until_imports
def _user_module_names() -> list[str]:
    """Names of the loaded modules whose file is the user's (found again only when modules
    were loaded: a torch target has ~2,000, and classifying them all cost each census more
    than the rest of it)."""
    names = []
    for name, module in list(sys.modules.items()):
        if not isinstance(module, ModuleType):
            continue
        path = module.__dict__.get("__file__")
        if isinstance(path, str) and classify(path) == USER:
            names.append(name)
    return names


def _user_modules() -> list[ModuleType]:
    """``__main__`` and every imported module whose file is the user's."""
    found = [m for m in map(sys.modules.get, _user_module_names()) if isinstance(m, ModuleType)]
    return sorted(found, key=lambda m: m.__name__ != "__main__")


# Python < 3.13 keeps one snapshot dict of a function frame's locals, which ``locals()``,
# ``vars()`` and ``frame.f_locals`` all return, each refreshing it first.
_SNAPSHOT = sys.version_info < (3, 13)
_TAKES_LOCALS = frozenset({"locals", "vars", "f_locals"})
_ONLY_FRAME_AND_US = 3  # sys.getrefcount(snapshot): the frame, our name, getrefcount's argument


def _frame_locals(frame: FrameType) -> list[tuple[str, Any]]:
    """Return a frame's locals, or nothing when reading them could change what the program
    sees.

    On Python < 3.13 reading ``f_locals`` of a function frame refreshes the frame's snapshot
    dict, the one ``locals()`` returned to the program: a function that calls ``locals()`` or
    ``vars()`` or reads ``f_locals`` is not read (``config = locals()`` at the top of ``train()``
    would gain the later locals). The snapshot would keep the values alive after the function
    drops them, so it is emptied at once (the next read refreshes it), unless something else
    holds it (a debugger's view of the frame): emptying that dict emptied the program's."""
    if _SNAPSHOT and _takes_own_locals(frame.f_code):
        return []
    try:
        namespace = frame.f_locals
        items = list(namespace.items())
    except Exception:
        return []
    if _SNAPSHOT and isinstance(namespace, dict) and \
            sys.getrefcount(namespace) <= _ONLY_FRAME_AND_US:
        namespace.clear()
    return items


@functools.lru_cache(maxsize=4096)
def _takes_own_locals(code: CodeType) -> bool:
    """True if the code calls ``locals()``/``vars()`` or reads a frame's ``f_locals`` (not
    pytest's rewritten asserts, whose ``@py_builtins.locals()`` is an attribute)."""
    if _TAKES_LOCALS.isdisjoint(code.co_names):
        return False
    for instruction in dis.get_instructions(code):
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME") and \
                instruction.argval in ("locals", "vars"):
            return True
        if instruction.opname in ("LOAD_ATTR", "LOAD_METHOD") and \
                instruction.argval == "f_locals":
            return True
    return False


def _instance_dict(value: Any) -> list[tuple[str, Any]] | None:
    if issubclass(type(value), _OPAQUE):
        return None
    try:
        attrs = object.__getattribute__(value, "__dict__")
    except (AttributeError, TypeError):
        return None
    return list(attrs.items()) if type(attrs) is dict else None


def _sample(container: Any) -> list[Any]:
    """Up to ``SAMPLE`` items (dict values), taken from both ends without iterating it all."""
    half = SAMPLE // 2
    try:
        if type(container) in (list, collections.deque):
            n = len(container)
            if n <= SAMPLE:
                return list(container)
            return [container[i] for i in range(half)] + [container[i] for i in range(n - half, n)]
        values = container.values() if isinstance(container, dict) else container
        if isinstance(container, dict) and len(container) > SAMPLE:
            head = [v for v, _ in zip(values, range(half))]
            tail = [v for v, _ in zip(reversed(values), range(half))]
            return head + tail
        return [v for v, _ in zip(values, range(SAMPLE))]
    except (RuntimeError, IndexError):  # changed size while we looked
        return []


def _torch_tensor_types() -> tuple[type, ...]:
    torch = sys.modules.get("torch")
    tensor = getattr(torch, "Tensor", None) if torch is not None else None
    if tensor is None:
        return ()
    parameter = getattr(getattr(torch, "nn", None), "Parameter", None)
    return (tensor, parameter) if parameter is not None else (tensor,)


def _ndarray_type() -> type | None:
    numpy = sys.modules.get("numpy")
    return getattr(numpy, "ndarray", None) if numpy is not None else None


def _array_bytes(array: Any) -> int:
    base = array.base
    target = base if base is not None and type(base) is type(array) else array
    return int(target.nbytes)


def _tensor_bytes(tensor: Any) -> tuple[int, bool]:
    """Return (bytes of the tensor's storage, whether it lives on an accelerator)."""
    try:
        nbytes = int(tensor.untyped_storage().nbytes())
    except Exception:
        try:
            nbytes = int(tensor.element_size() * tensor.nelement())
        except Exception:
            return 0, False
    return nbytes, tensor.device.type not in ("cpu", "meta")


def _grad_fn(tensor: Any) -> Any:
    try:
        return tensor.grad_fn
    except Exception:
        return None


def _graph_span(grad_fn: Any, budget: Budget, oldest: int | None = None) -> tuple[int, int]:
    """Return (span, oldest sequence number reached) of the autograd graph behind ``grad_fn``.

    Nodes are numbered in creation order (``Node._sequence_nr``; leaves' AccumulateGrad has the
    largest number). Going down from the root, always to the input with the smallest number,
    reaches the graph's oldest node in one hop per chained step: for ``total += loss`` the span
    (root number minus oldest) grows by the number of nodes each step adds, while a normal
    per-step graph spans one step. ``oldest`` (from the previous census of the same variable)
    stops the descent early once the old graph is reached: each census walks only the steps
    added since the last one."""
    try:
        top = current = int(grad_fn._sequence_nr())
    except Exception:
        return _graph_size(grad_fn, budget), 0
    node, hops = grad_fn, 0
    while node is not None and hops < budget.graph_nodes:
        if oldest is not None and current <= oldest:
            current = oldest
            break
        best, best_nr = None, current
        try:
            for child, _index in node.next_functions:
                if child is not None:
                    number = int(child._sequence_nr())
                    if number < best_nr:
                        best, best_nr = child, number
        except Exception:
            break
        node, current, hops = best, best_nr, hops + 1
    budget.graph_nodes -= hops
    return max(0, top - current), current


def _graph_size(grad_fn: Any, budget: Budget, cap: int = 2_000) -> int:
    """Count the autograd nodes reachable from ``grad_fn`` (at most ``cap``, within budget)."""
    cap = max(0, min(cap, budget.graph_nodes))
    seen: dict[int, Any] = {}  # keeps each node's Python wrapper alive so ids stay unique
    stack = [grad_fn]
    while stack and len(seen) < cap:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen[id(node)] = node
        try:
            stack.extend(edge[0] for edge in node.next_functions)
        except Exception:
            continue
    budget.graph_nodes -= len(seen)
    return len(seen)


def _shallow_size(value: Any) -> int:
    """``sys.getsizeof``, unless the type's ``__sizeof__`` is Python code: user code must not
    run in the census thread, and some is slow (pandas' ``DataFrame.__sizeof__`` measures every
    string of its object columns while holding the GIL). Then the object's own C size."""
    if type(type(value).__sizeof__) is FunctionType:
        return object.__sizeof__(value)
    return sys.getsizeof(value)


def _describe(value: Any, tensor_types: tuple[type, ...] = ()) -> str:
    """A short description of one value: type, dtype, shape, autograd node."""
    kind = type(value)
    if tensor_types and kind in tensor_types:
        grad_fn = _grad_fn(value)
        text = f"Tensor {str(value.dtype).replace('torch.', '')} {tuple(value.shape)}"
        text += f" on {value.device.type}" if value.device.type != "cpu" else ""
        return text + (f" grad_fn={type(grad_fn).__name__}" if grad_fn is not None else "")
    # the module first: ``hasattr`` would run a user class's ``__getattr__`` in this thread
    if kind.__module__ == "numpy" and hasattr(value, "dtype") and hasattr(value, "shape"):
        return f"ndarray {value.dtype} {tuple(value.shape)}"
    if kind in (tuple, list, dict):
        return f"{kind.__name__} of {len(value)}"
    return kind.__name__
