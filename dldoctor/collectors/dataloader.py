"""torch DataLoader facts for the step breakdown: time in the iterator's ``__next__`` and each
loader's settings (dataset, ``num_workers``, ``pin_memory``, where the user's Dataset/collate
code lives and where the loop iterates it). torch is never imported here."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

from dldoctor.collectors.callas import as_caller
from dldoctor.collectors.patches import Patch
from dldoctor.collectors.phases import DATA

LOADER_CAP = 32


def remember_loader(loaders: list[dict[str, Any]], iterator: Any, info: dict[str, Any]) -> None:
    """Attach ``info`` (or the same loader's entry seen before) to ``iterator``; keep at most
    ``LOADER_CAP`` loaders."""
    for known in loaders:
        if all(known[k] == info[k] for k in info if k not in ("batches", "data_s")):
            iterator._dldoctor_loader = known
            return
    if len(loaders) < LOADER_CAP:
        loaders.append(info)
        iterator._dldoctor_loader = info


def hook_loader(torch: ModuleType, owner: Any) -> Patch:
    """Remember each loader's settings when its iterator is made (a permanent patch: once per
    epoch), and return the patch that times the iterator's ``__next__`` (phase ``data``), for
    ``owner`` (the ``TorchSteps`` collector) to apply during the steps it times."""
    base = torch.utils.data.dataloader._BaseDataLoaderIter
    init = base.__init__

    def __init__(self: Any, loader: Any, *args: Any, **kwargs: Any) -> None:
        as_caller(sys._getframe(1))(init, self, loader, *args, **kwargs)  # warnings: theirs
        if owner.on_main():
            try:
                owner.loader_started(self, loader, sys._getframe(1))
            except Exception:
                pass

    base.__init__ = __init__
    return Patch(base, "__next__", lambda next_: _timed_next(next_, owner))


def _timed_next(next_: Any, owner: Any) -> Any:
    def __next__(self: Any) -> Any:
        call = as_caller(sys._getframe(1))  # torch's warnings name the caller's line
        if not owner.on_main():
            return call(next_, self)
        owner.phases.enter(DATA)
        start = owner._clock()
        fetched = False
        try:
            batch = call(next_, self)
            fetched = True
            return batch
        finally:
            owner.phases.exit(DATA)
            info = getattr(self, "_dldoctor_loader", None)
            if info is not None:
                info["data_s"] += owner._clock() - start
                info["batches"] += int(fetched)

    return __next__


def _code_of(obj: Any) -> tuple[str, str, int]:
    """Return (qualified name, file, first line) of a function or callable object."""
    function = getattr(obj, "__func__", obj)
    code = getattr(function, "__code__", None) or getattr(
        type(obj).__dict__.get("__call__"), "__code__", None)
    name = getattr(function, "__qualname__", type(obj).__qualname__)
    if code is None:
        return name, "", 0
    return name, code.co_filename, code.co_firstlineno


def describe_loader(loader: Any, site: tuple[str, int, str] | None) -> dict[str, Any]:
    """Return a DataLoader's settings and where its Dataset/collate code lives."""
    dataset = loader.dataset
    getitem = getattr(type(dataset), "__getitem__", None)
    _name, ds_file, ds_line = _code_of(getitem) if getitem is not None else ("", "", 0)
    collate, c_file, c_line = _code_of(loader.collate_fn) if loader.collate_fn else ("", "", 0)
    context = getattr(loader, "multiprocessing_context", None)
    method = getattr(context, "get_start_method", lambda: "")() if context else ""
    if not method and loader.num_workers:
        import multiprocessing
        method = multiprocessing.get_start_method(allow_none=True) or "fork"
    file, line, function = site or ("", 0, "")
    return {"dataset": type(dataset).__qualname__, "dataset_file": ds_file, "dataset_line": ds_line,
            "collate": collate, "collate_file": c_file, "collate_line": c_line,
            "num_workers": int(loader.num_workers), "pin_memory": bool(loader.pin_memory),
            "batch_size": loader.batch_size, "persistent_workers": bool(loader.persistent_workers),
            "start_method": method, "file": file, "line": line, "function": function,
            "batches": 0, "data_s": 0.0}
