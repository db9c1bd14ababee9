"""Dataclass <-> JSON-ready dict conversion, lenient on load.

Unknown keys are ignored and missing keys take the field's default, so a report written by an older
(or newer) dldoctor still loads. Only the shapes the Run model uses are supported: dataclasses,
lists/tuples, ``dict[str, X]``, ``X | None`` and plain JSON scalars."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def to_dict(obj: Any) -> Any:
    """Return ``obj`` as plain JSON-ready data (dataclasses become dicts, tuples lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(item) for item in obj]
    if isinstance(obj, dict):
        return {str(key): to_dict(value) for key, value in obj.items()}
    return obj


def from_dict(cls: type[T], data: Any) -> T:
    """Build ``cls`` (a dataclass) from ``data``; raise ``ValueError`` if the shape is wrong."""
    return typing.cast(T, _convert(cls, data))


def _convert(tp: Any, data: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if data is None:
            return None
        options = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        return _convert(options[0], data)
    if dataclasses.is_dataclass(tp):
        return _dataclass(tp, data)
    if origin in (list, tuple):
        if not isinstance(data, list):
            raise ValueError(f"expected a list, got {type(data).__name__}")
        args = typing.get_args(tp)
        item = args[0] if args else Any
        values = [_convert(item, value) for value in data]
        return values if origin is list else tuple(values)
    if origin is dict:
        if not isinstance(data, dict):
            raise ValueError(f"expected an object, got {type(data).__name__}")
        value_type = typing.get_args(tp)[1]
        return {str(key): _convert(value_type, value) for key, value in data.items()}
    if tp is float and isinstance(data, int):
        return float(data)
    return data


def _dataclass(cls: Any, data: Any) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"expected an object for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name in data and field.init:
            kwargs[field.name] = _convert(hints[field.name], data[field.name])
    return cls(**kwargs)
