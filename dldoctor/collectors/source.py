"""Source facts for hot user lines: the line's text, the loops around it, and what it does
(element-wise indexing by a loop variable, arithmetic, matrix products, calls).

Read once when the run ends, so analyzers stay pure functions of the Run."""

from __future__ import annotations

import ast
from functools import lru_cache

from dldoctor.run import LoopInfo, SourceLine

ARITH_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


@lru_cache(maxsize=256)
def _parse(path: str) -> tuple[ast.Module | None, tuple[str, ...]]:
    try:
        with open(path, "rb") as handle:
            source = handle.read()
        tree = ast.parse(source, filename=path)
    except (OSError, SyntaxError, ValueError):
        return None, ()
    return tree, tuple(source.decode("utf-8", errors="replace").splitlines())


def describe_lines(locations: list[tuple[str, int]]) -> list[SourceLine]:
    """Return facts for each (file, line); lines whose file cannot be read are left out."""
    facts = []
    for path, line in locations:
        tree, lines = _parse(path)
        if tree is None or not 0 < line <= len(lines):
            continue
        chain = _chain(tree, line)
        loops = [_loop_info(node, chain[:i]) for i, node in enumerate(chain)
                 if isinstance(node, (*_LOOPS, *_COMPREHENSIONS))]
        statement = next((n for n in reversed(chain) if isinstance(n, ast.stmt)), None)
        features = _features(statement, chain, line) if statement is not None else []
        facts.append(SourceLine(file=path, line=line, text=lines[line - 1].strip()[:200],
                                loops=loops, features=features))
    return facts


def _chain(tree: ast.AST, line: int) -> list[ast.AST]:
    """Return the nodes enclosing ``line``, outermost first, cut at the innermost function."""
    chain: list[ast.AST] = []
    node: ast.AST | None = tree
    while node is not None:
        child = None
        for candidate in ast.iter_child_nodes(node):
            start = getattr(candidate, "lineno", None)
            end = getattr(candidate, "end_lineno", None)
            if start is not None and end is not None and start <= line <= end:
                child = candidate
                if isinstance(candidate, (ast.stmt, *_COMPREHENSIONS)):
                    break
        if child is None:
            break
        if isinstance(child, _SCOPES):
            chain = []
        chain.append(child)
        node = child
    return chain


def _loop_info(node: ast.AST, outer: list[ast.AST]) -> LoopInfo:
    start, end = getattr(node, "lineno", 0), getattr(node, "end_lineno", 0)
    nodes = _scope_nodes(node)
    features = sorted(_tags(nodes, _loop_vars([*outer, *nodes])))
    if isinstance(node, (ast.For, ast.AsyncFor)):
        return LoopInfo(start, end, "for", _names(node.target), features)
    if isinstance(node, ast.While):
        return LoopInfo(start, end, "while", [], features)
    targets = [n for gen in getattr(node, "generators", []) for n in _names(gen.target)]
    return LoopInfo(start, end, "comprehension", targets, features)


def _scope_nodes(root: ast.AST) -> list[ast.AST]:
    """All nodes under ``root`` except those inside nested functions, lambdas and classes."""
    found, todo = [], [root]
    while todo:
        node = todo.pop()
        found.append(node)
        todo.extend(c for c in ast.iter_child_nodes(node) if not isinstance(c, _SCOPES))
    return found


def _names(node: ast.AST) -> list[str]:
    return [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]


def _loop_vars(chain: list[ast.AST]) -> set[str]:
    names: set[str] = set()
    for node in chain:
        if isinstance(node, (ast.For, ast.AsyncFor)):
            names.update(_names(node.target))
        elif isinstance(node, _COMPREHENSIONS):
            for gen in node.generators:
                names.update(_names(gen.target))
    return names


def _features(statement: ast.stmt, chain: list[ast.AST], line: int) -> list[str]:
    """Return tags describing what ``statement`` does (see module docstring)."""
    tags = _tags(_own_nodes(statement), _loop_vars(chain))
    if isinstance(statement, _LOOPS) and statement.lineno == line:
        tags.add("loop-header")
    return sorted(tags)


def _tags(nodes: list[ast.AST], loop_vars: set[str]) -> set[str]:
    tags: set[str] = set()
    for node in nodes:
        if isinstance(node, (ast.BinOp, ast.AugAssign)):
            if isinstance(node.op, ast.MatMult):
                tags.add("matmul")
            elif isinstance(node.op, ARITH_OPS):
                tags.add("arith")
                operands = [node.target, node.value] if isinstance(node, ast.AugAssign) \
                    else [node.left, node.right]
                if any(isinstance(o, ast.Name) and o.id in loop_vars for o in operands):
                    tags.add("loopvar-arith")
        elif isinstance(node, ast.Compare):
            tags.add("compare")
        elif isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Slice):
            index_names = set(_names(node.slice))
            if index_names & loop_vars and not any(isinstance(n, ast.Slice)
                                                   for n in ast.walk(node.slice)):
                tags.add("subscript-loopvar")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name:
                tags.add(f"call:{name}")
    return tags


def _own_nodes(statement: ast.stmt) -> list[ast.AST]:
    """Nodes of the statement itself, not of the statements nested in its body."""
    if isinstance(statement, (ast.For, ast.AsyncFor)):
        roots: list[ast.AST] = [statement.target, statement.iter]
    elif isinstance(statement, (ast.While, ast.If)):
        roots = [statement.test]
    elif isinstance(statement, (*_SCOPES, ast.With, ast.Try)):
        roots = []
    else:
        roots = [statement]
    return [n for root in roots for n in ast.walk(root)]


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return "." + ".".join(reversed(parts)) if parts else ""
