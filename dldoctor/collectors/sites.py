"""Where a variable grows, read from the source (supervisor side, when the run has ended).

``growth_sites`` finds the lines that append to, insert into or re-bind a variable
(``x.append(...)``, ``cache[k] = v``, ``total += loss``, ``x = torch.cat([x, y])``,
``logs["k"].append(...)``, ``self.x.append(...)``), loops first, so a ``memory-leak`` finding can
point at the line to change; ``assignment_sites`` the assignment that produced a value."""

from __future__ import annotations

import ast
from typing import Any

from dldoctor.collectors.source import _chain, _parse
from dldoctor.run import HeapSite

MUTATORS = {"append", "extend", "insert", "add", "update", "setdefault", "appendleft",
            "extendleft", "put", "put_nowait", "__setitem__", "push"}
FUNCTION_MUTATORS = {"heappush", "insort", "insort_left", "insort_right"}


def growth_sites(file: str, name: str, def_line: int = 0, attribute: bool = False,
                 limit: int = 5, key: Any = None) -> list[HeapSite]:
    """Return the lines of ``file`` that grow ``name`` (inside the function starting at
    ``def_line`` when given; anywhere in the file for globals and attributes), lines inside a
    loop first. ``attribute``: match ``<anything>.name`` rather than the bare name; ``key``:
    match only the entry ``name[key]``."""
    tree, lines = _parse(file)
    if tree is None:
        return []
    scope = _function_at(tree, def_line) if def_line else tree
    if scope is None:
        return []
    found = [node for node in ast.walk(scope) if _grows(node, name, attribute, key)]
    return _sites(file, tree, lines, found, limit)


def assignment_sites(file: str, name: str, def_line: int, near_line: int,
                     limit: int = 3) -> list[HeapSite]:
    """Return the assignments to ``name`` in the function at ``def_line``, the last one before
    ``near_line`` first (the one that produced the value seen there)."""
    tree, lines = _parse(file)
    if tree is None:
        return []
    scope = _function_at(tree, def_line) if def_line > 1 else tree  # 0/1: module code
    if scope is None:
        return []
    found = [node for node in ast.walk(scope) if isinstance(node, (ast.Assign, ast.AugAssign,
                                                                   ast.AnnAssign))
             and any(_names_root(t, name, False) for t in _targets(node))]
    before = sorted((n for n in found if n.lineno <= near_line), key=lambda n: -n.lineno)
    after = sorted((n for n in found if n.lineno > near_line), key=lambda n: n.lineno)
    return _sites(file, tree, lines, [*before, *after], limit, loops_first=False)


def _function_at(tree: ast.AST, def_line: int) -> ast.AST | None:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if first <= def_line <= node.lineno:
                return node
    return None


def _targets(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Assign):
        return list(node.targets)
    if isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        return [node.target]
    return []


def _names_root(node: ast.AST, name: str, attribute: bool, key: Any = None) -> bool:
    if key is not None:
        if not (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
                and node.slice.value == key):
            return False
        node = node.value
    while isinstance(node, ast.Subscript):  # logs["loss"].append(...) grows logs
        node = node.value
    if attribute:
        return isinstance(node, ast.Attribute) and node.attr == name
    return isinstance(node, ast.Name) and node.id == name


def _grows(node: ast.AST, name: str, attribute: bool, key: Any = None) -> bool:
    """True for ``X.append(..)``, ``X[k] = v``, ``X += v``, ``X = f(X, ..)``, ``heappush(X,..)``."""
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in MUTATORS:
            return _names_root(func.value, name, attribute, key)
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return called in FUNCTION_MUTATORS and bool(node.args) and _names_root(
            node.args[0], name, attribute, key)
    targets = _targets(node)
    if not targets:
        return False
    if any(isinstance(t, ast.Subscript) and _names_root(t.value, name, attribute, key)
           for t in targets):
        return True
    if any(_names_root(t, name, attribute, key) for t in targets):
        if isinstance(node, ast.AugAssign):
            return True
        value = getattr(node, "value", None)
        return value is not None and any(_names_root(n, name, attribute, key)
                                         for n in ast.walk(value))
    return False


def _sites(file: str, tree: ast.AST, lines: tuple[str, ...], nodes: list[ast.AST], limit: int,
           loops_first: bool = True) -> list[HeapSite]:
    ranked = []
    for order, node in enumerate(nodes):
        line = getattr(node, "lineno", 0)
        chain = _chain(tree, line)
        in_loop = any(isinstance(n, (ast.For, ast.AsyncFor, ast.While)) for n in chain)
        function = _enclosing_function(tree, line)
        text = lines[line - 1].strip()[:200] if 0 < line <= len(lines) else ""
        key = (0 if in_loop or not loops_first else 1, order if not loops_first else line)
        ranked.append((key, HeapSite(file=file, line=line, function=function, text=text)))
    unique: dict[int, HeapSite] = {}
    for _key, site in sorted(ranked, key=lambda pair: pair[0]):
        unique.setdefault(site.line, site)
    return list(unique.values())[:limit]


def _enclosing_function(tree: ast.AST, line: int) -> str:
    best, best_start = "<module>", 0
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            end = getattr(node, "end_lineno", node.lineno) or node.lineno
            if node.lineno <= line <= end and node.lineno >= best_start:
                best, best_start = node.name, node.lineno
    return best
