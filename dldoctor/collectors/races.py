"""Shared writes in thread code, read from source: read-modify-writes (``n += 1``,
``self.total = self.total + x``, ``w -= lr * g``, ``counts[k] += 1``) of state that several
threads reach, not lexically inside a ``with lock:`` (or an ``acquire()``/``release()`` pair).

Input is the thread targets the collector saw start, with which parameters got the same object
in every thread. A write is to shared state when its root is a ``global``/``nonlocal`` name, a
module-level object, or a parameter (``self`` included) that was given one object in several
threads. Writes to locals, per-thread arguments, ``threading.local()`` objects, and element
writes indexed by a per-thread argument (a partition) are not. Calls to the same file's
functions and methods are followed a few levels, carrying guards and argument sharing."""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from dldoctor.run import SharedWrite, ThreadTarget

MAX_DEPTH = 3
LOCKISH = re.compile(r"(lock|mutex|mtx|cond|cv|sem|guard)", re.IGNORECASE)
LOCK_TYPES = {"Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore"}
PER_THREAD_CALLS = {"get_ident", "current_thread", "get_native_id"}
_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)


@lru_cache(maxsize=64)
def _module(path: str) -> tuple[ast.Module | None, tuple[str, ...]]:
    try:
        with open(path, "rb") as handle:
            source = handle.read()
        return ast.parse(source, filename=path), tuple(source.decode(errors="replace").splitlines())
    except (OSError, SyntaxError, ValueError):
        return None, ()


@dataclass
class _Module:
    """Facts about one source file: its functions, lock-valued and thread-local names."""

    path: str
    tree: ast.Module
    lines: tuple[str, ...]
    parents: dict[ast.AST, ast.AST] = field(default_factory=dict)
    locks: set[str] = field(default_factory=set)
    thread_locals: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path: str) -> _Module | None:
        tree, lines = _module(path)
        if tree is None:
            return None
        facts = cls(path, tree, lines)
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                facts.parents[child] = node
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                called = _last_name(node.value.func)
                names = {_last_name(t) for t in node.targets} - {""}
                if called in LOCK_TYPES:
                    facts.locks |= names
                elif called == "local":
                    facts.thread_locals |= names
        return facts

    def function_at(self, line: int) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        for node in ast.walk(self.tree):
            if isinstance(node, _FUNCS):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if line in (first, node.lineno):
                    return node
        return None

    def qualname(self, node: ast.AST) -> str:
        parts = []
        current: ast.AST | None = node
        while current is not None:
            if isinstance(current, (*_FUNCS, ast.ClassDef)):
                parts.append(current.name)
            current = self.parents.get(current)
        return ".".join(reversed(parts))

    def enclosing(self, node: ast.AST, kinds: tuple[type, ...]) -> ast.AST | None:
        current = self.parents.get(node)
        while current is not None and not isinstance(current, kinds):
            current = self.parents.get(current)
        return current


@dataclass(frozen=True)
class _Context:
    """How the parameters of one analysed function relate to the threads running it."""

    shared: frozenset[str]  # parameters holding one object in several threads
    private: frozenset[str]  # parameters holding a different object in each thread
    objects: tuple[tuple[str, object], ...] = ()  # parameter -> object id, for grouping
    guarded: bool = False


@dataclass(frozen=True)
class _Write:
    node: ast.stmt
    target: ast.expr
    function: str
    scope: str
    key: tuple[object, ...]


class _FunctionScan:
    """Collects the unguarded shared read-modify-writes of one function (and its callees)."""

    def __init__(self, module: _Module, depth: int = 0, seen: set[int] | None = None) -> None:
        self.module = module
        self.depth = depth
        self.seen = seen if seen is not None else set()
        self.writes: list[_Write] = []

    def scan(self, fn: ast.FunctionDef | ast.AsyncFunctionDef, ctx: _Context) -> list[_Write]:
        if id(fn) in self.seen:
            return self.writes
        self.seen.add(id(fn))
        self.fn, self.ctx = fn, ctx
        self.params = _params(fn)
        self.declared_global, self.declared_nonlocal = _declarations(fn)
        self.locals = _bound_names(fn) - self.declared_global - self.declared_nonlocal
        self.aliases = _loop_aliases(fn)
        self.partitions = self._partition_names()
        self._block(fn.body, ctx.guarded)
        return self.writes

    # statements ---------------------------------------------------------------------------
    def _block(self, body: list[ast.stmt], guarded: bool) -> None:
        held: set[str] = set()
        for stmt in body:
            call = _lock_call(stmt)
            if call is not None:
                name, method = call
                if method == "acquire":
                    held.add(name)
                else:
                    held.discard(name)
            self._statement(stmt, guarded or bool(held))

    def _statement(self, stmt: ast.stmt, guarded: bool) -> None:
        if isinstance(stmt, (*_FUNCS, ast.ClassDef)):
            return
        if isinstance(stmt, (ast.With, ast.AsyncWith)):
            locked = any(self._is_lock(item.context_expr) for item in stmt.items)
            self._block(stmt.body, guarded or locked)
            return
        if isinstance(stmt, ast.If) and _lock_call(ast.Expr(stmt.test)) is not None:
            self._block(stmt.body, True)
            self._block(stmt.orelse, guarded)
            return
        for name in ("body", "orelse", "finalbody"):
            self._block(getattr(stmt, name, []) or [], guarded)
        for handler in getattr(stmt, "handlers", []) or []:
            self._block(handler.body, guarded)
        if not guarded:
            self._rmw(stmt)
        if self.depth < MAX_DEPTH:
            self._follow_calls(stmt, guarded)

    def _is_lock(self, expr: ast.expr) -> bool:
        if isinstance(expr, ast.Call):
            return False
        name = _last_name(expr)
        return bool(name) and (name in self.module.locks or bool(LOCKISH.search(name)))

    # writes --------------------------------------------------------------------------------
    def _rmw(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.AugAssign):
            self._consider(stmt, stmt.target)
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
            if isinstance(target, (ast.Name, ast.Attribute, ast.Subscript)) and \
                    _reads_itself(target, stmt.value):
                self._consider(stmt, target)

    def _consider(self, stmt: ast.stmt, target: ast.expr) -> None:
        root = _root(target)
        if root is None or self._partitioned(target):
            return
        if isinstance(target, ast.Name) and root in self.aliases:
            root = self.aliases[root]
        elif isinstance(target, ast.Name) and root not in self.declared_global | \
                self.declared_nonlocal:
            return
        scope, key = self._classify(root)
        if scope:
            self.writes.append(_Write(stmt, target, self.module.qualname(self.fn), scope,
                                      (*key, _path(target))))

    def _classify(self, root: str) -> tuple[str, tuple[object, ...]]:
        """Return (scope, object key) for a write rooted at ``root``, or ("", ()) if private."""
        objects = dict(self.ctx.objects)
        if root in self.declared_nonlocal:
            return "closure", ("name", self.module.path, root)
        if root in self.declared_global:
            return "global", ("name", self.module.path, root)
        if root in self.params:
            if root in self.ctx.shared:
                scope = "attribute" if root == self.params[0] else "argument"
                return scope, ("object", objects.get(root, root))
            return "", ()
        if root in self.locals or root in self.module.thread_locals:
            return "", ()
        scope = "closure" if self.module.enclosing(self.fn, _FUNCS) is not None else "global"
        return scope, ("name", self.module.path, root)

    def _partition_names(self) -> set[str]:
        """Names that differ per thread: per-thread parameters and loops over ranges of them."""
        private = {p for p in self.params if p not in self.ctx.shared}
        names = set(private)
        for node in ast.walk(self.fn):
            if isinstance(node, ast.For) and isinstance(node.target, ast.Name) and \
                    isinstance(node.iter, ast.Call) and _last_name(node.iter.func) in \
                    ("range", "arange", "enumerate") and \
                    set(_names(node.iter)) & private:
                names.add(node.target.id)
        return names

    def _partitioned(self, target: ast.expr) -> bool:
        while isinstance(target, ast.Attribute):
            target = target.value
        if not isinstance(target, ast.Subscript):
            return False
        index = target.slice
        if set(_names(index)) & self.partitions:
            return True
        return any(isinstance(n, ast.Call) and _last_name(n.func) in PER_THREAD_CALLS
                   for n in ast.walk(index))

    # calls ---------------------------------------------------------------------------------
    def _follow_calls(self, stmt: ast.stmt, guarded: bool) -> None:
        for call in _own_calls(stmt):
            callee, bound = self._resolve(call.func)
            if callee is None:
                continue
            ctx = self._callee_context(callee, call, bound, guarded)
            scan = _FunctionScan(self.module, self.depth + 1, self.seen)
            self.writes.extend(scan.scan(callee, ctx))

    def _resolve(self, func: ast.expr) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef | None,
                                                  str | None]:
        if isinstance(func, ast.Name):
            for node in self.module.tree.body:
                if isinstance(node, _FUNCS) and node.name == func.id:
                    return node, None
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and \
                self.params and func.value.id == self.params[0]:
            owner = self.module.enclosing(self.fn, (ast.ClassDef,))
            for node in getattr(owner, "body", []):
                if isinstance(node, _FUNCS) and node.name == func.attr:
                    return node, func.value.id
        return None, None

    def _callee_context(self, callee: ast.FunctionDef | ast.AsyncFunctionDef, call: ast.Call,
                        bound: str | None, guarded: bool) -> _Context:
        params = _params(callee)
        passed: list[tuple[str, ast.expr]] = []
        offset = 0
        if bound is not None and params:
            passed.append((params[0], ast.Name(id=bound, ctx=ast.Load())))
            offset = 1
        passed += [(params[i + offset], arg) for i, arg in enumerate(call.args)
                   if i + offset < len(params) and not isinstance(arg, ast.Starred)]
        passed += [(kw.arg, kw.value) for kw in call.keywords if kw.arg in params]
        shared: set[str] = set()
        private: set[str] = set()
        objects: list[tuple[str, object]] = []
        for name, arg in passed:
            root = _root(arg)
            if root is None or (root in self.locals and root not in self.aliases
                                and root not in self.params):
                private.add(name)
                continue
            scope, key = self._classify(self.aliases.get(root, root))
            (shared if scope else private).add(name)
            if scope and key and key[0] == "object":
                objects.append((name, key[1]))
        return _Context(frozenset(shared), frozenset(private), tuple(objects), guarded)


# -- helpers on AST nodes ------------------------------------------------------------------------
def _last_name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _names(node: ast.AST) -> list[str]:
    return [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]


def _root(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _path(node: ast.expr) -> str:
    parts = []
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        parts.append(f".{node.attr}" if isinstance(node, ast.Attribute) else "[]")
        node = node.value
    return "".join(reversed(parts))


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    args = fn.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return names


def _own_nodes(fn: ast.AST) -> list[ast.AST]:
    """Nodes of ``fn``'s body, not those of nested functions, lambdas or classes."""
    found, todo = [], list(ast.iter_child_nodes(fn))
    while todo:
        node = todo.pop()
        found.append(node)
        if not isinstance(node, (*_FUNCS, ast.Lambda, ast.ClassDef)):
            todo.extend(ast.iter_child_nodes(node))
    return found


def _declarations(fn: ast.AST) -> tuple[set[str], set[str]]:
    declared_global: set[str] = set()
    declared_nonlocal: set[str] = set()
    for node in _own_nodes(fn):
        if isinstance(node, ast.Global):
            declared_global.update(node.names)
        elif isinstance(node, ast.Nonlocal):
            declared_nonlocal.update(node.names)
    return declared_global, declared_nonlocal


def _bound_names(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    names = set(_params(fn))
    for node in _own_nodes(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (*_FUNCS, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _loop_aliases(fn: ast.AST) -> dict[str, str]:
    """Map loop variables that stand for elements of a container to the container's root:
    ``for p, g in zip(self.params, grads)`` makes ``p`` an alias of ``self``."""
    aliases: dict[str, str] = {}
    for node in _own_nodes(fn):
        if not isinstance(node, ast.For):
            continue
        sources = node.iter.args if isinstance(node.iter, ast.Call) and \
            _last_name(node.iter.func) in ("zip", "enumerate") else [node.iter]
        targets = node.target.elts if isinstance(node.target, ast.Tuple) else [node.target]
        if _last_name(node.iter.func if isinstance(node.iter, ast.Call) else node.iter) == \
                "enumerate":
            targets = targets[1:]
        for target, source in zip(targets, sources):
            root = _root(source)
            if isinstance(target, ast.Name) and root is not None and \
                    not isinstance(source, ast.Call):
                aliases[target.id] = root
    return aliases


def _reads_itself(target: ast.expr, value: ast.expr) -> bool:
    """True if ``value`` reads ``target`` (``x.n = x.n + 1``, ``d[k] = d.get(k, 0) + 1``)."""
    wanted = ast.unparse(target)
    container = ast.unparse(target.value) if isinstance(target, ast.Subscript) else None
    for node in ast.walk(value):
        if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)) and \
                ast.unparse(node) == wanted:
            return True
        if container is not None and isinstance(node, ast.Call) and \
                isinstance(node.func, ast.Attribute) and node.func.attr == "get" and \
                ast.unparse(node.func.value) == container:
            return True
    return False


def _lock_call(stmt: ast.stmt) -> tuple[str, str] | None:
    """Return (lock expression, "acquire"|"release") for ``x.acquire(...)``-like statements."""
    value = getattr(stmt, "value", None) if isinstance(stmt, ast.Expr) else None
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and \
            value.func.attr in ("acquire", "release"):
        return ast.unparse(value.func.value), value.func.attr
    return None


def _own_calls(stmt: ast.stmt) -> list[ast.Call]:
    """Calls made by the statement itself (not by statements nested in its body)."""
    if isinstance(stmt, (ast.For, ast.AsyncFor)):
        roots: list[ast.AST] = [stmt.iter]
    elif isinstance(stmt, (ast.While, ast.If)):
        roots = [stmt.test]
    elif isinstance(stmt, (ast.With, ast.AsyncWith)):
        roots = [item.context_expr for item in stmt.items]
    elif isinstance(stmt, (*_FUNCS, ast.ClassDef, ast.Try)):
        roots = []
    else:
        roots = [stmt]
    return [n for root in roots for n in ast.walk(root) if isinstance(n, ast.Call)]


# -- entry point ---------------------------------------------------------------------------------
def _shared_labels(target: ThreadTarget, id_uses: Counter[int]) -> frozenset[str]:
    """Parameters holding one object in several threads of this target, or the same object
    as a parameter of another target."""
    shared = set(target.shared)
    shared.update(label for label, ident in target.objects.items()
                  if id_uses[ident] > 1 and label not in target.private)
    return frozenset(shared)


def _shared_write(write: _Write, module: _Module, threads: int, starts: int) -> SharedWrite:
    line = write.node.lineno
    return SharedWrite(
        file=module.path, line=line, function=write.function, target=ast.unparse(write.target),
        scope=write.scope,
        text=module.lines[line - 1].strip()[:200] if line <= len(module.lines) else "",
        threads=threads, starts=starts,
        evidence="runtime" if write.scope in ("attribute", "argument") else "static")


def shared_writes(targets: list[ThreadTarget]) -> list[SharedWrite]:
    """Return the unguarded shared read-modify-writes in the code the ``targets`` run, each
    with the number of threads that could run it at once (kept when two or more threads
    ran it, overlapping or not)."""
    id_uses: Counter[int] = Counter()
    for target in targets:
        id_uses.update({ident for label, ident in target.objects.items()
                        if label not in target.private})
    grouped: dict[tuple[object, ...], list[tuple[_Write, _Module, ThreadTarget]]] = {}
    for target in targets:
        module = _Module.load(target.file)
        fn = module.function_at(target.line) if module is not None else None
        if module is None or fn is None:
            continue
        ctx = _Context(_shared_labels(target, id_uses), frozenset(target.private),
                       tuple(target.objects.items()))
        for write in _FunctionScan(module).scan(fn, ctx):
            grouped.setdefault(write.key, []).append((write, module, target))
    results: list[SharedWrite] = []
    for entries in grouped.values():
        targets = list({id(t): t for _w, _m, t in entries}.values())
        threads = sum(max(1, t.concurrency) for t in targets)
        starts = sum(t.starts for t in targets)
        if starts < 2:
            continue
        sites = {(m.path, w.node.lineno): (w, m) for w, m, _t in reversed(entries)}
        results.extend(_shared_write(w, m, threads, starts) for w, m in sites.values())
    return sorted(results, key=lambda w: (w.file, w.line))
