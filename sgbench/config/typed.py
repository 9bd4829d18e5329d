"""Plain YAML data -> typed dataclasses, checked once with the key path in every error.

Supported field types: bool, int, float (accepts ints), str, Any, Optional[X], X | Y unions of
scalars, list[X], dict[str, X], Literal[...] and nested dataclasses. Errors read
`suite.search.space.omega[2]: expected a number, got 'high'`.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal, Union

from sgbench.errors import UserError


def fail(path: str, message: str) -> "typing.NoReturn":
    raise UserError(f"{path}: {message}")


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is float:
        return "a number"
    if tp is int:
        return "an integer"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return "a list"
    if origin is dict or (dataclasses.is_dataclass(tp)):
        return "a mapping"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    return getattr(tp, "__name__", str(tp))


def _same_shape(tp: Any, value: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict or dataclasses.is_dataclass(tp):
        return isinstance(value, dict)
    if tp is str or origin is Literal:
        return isinstance(value, str)
    if tp in (int, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return tp is bool and isinstance(value, bool)


def convert(tp: Any, value: Any, path: str) -> Any:
    """Check `value` against type `tp` and convert it (nested dataclasses built recursively)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            fail(path, f"required, expected {_type_name(tp)}")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(arg, value, path)
            except UserError as e:
                errors.append(str(e))
        # the candidate of the value's own shape has the most precise message
        non_none = [a for a in args if a is not type(None)]
        shaped = [e for a, e in zip(non_none, errors) if _same_shape(a, value)]
        if len(shaped) == 1:
            raise UserError(shaped[0])
        fail(path, f"expected {_type_name(tp)}, got {_describe(value)}")
    if value is None:
        fail(path, f"required, expected {_type_name(tp)}")
    if tp is bool:
        if not isinstance(value, bool):
            fail(path, f"expected true or false, got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail(path, f"expected an integer, got {_describe(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(path, f"expected a number, got {_describe(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            fail(path, f"expected a string, got {_describe(value)}")
        return value
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices or isinstance(value, bool) != any(isinstance(c, bool) for c in choices):
            hint = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            fail(path, f"must be one of {', '.join(repr(c) for c in choices)}, got {_describe(value)}{extra}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            fail(path, f"expected a list, got {_describe(value)}")
        (item_tp,) = typing.get_args(tp)[:1] or (Any,)
        return [convert(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            fail(path, f"expected a mapping, got {_describe(value)}")
        _, val_tp = typing.get_args(tp) or (str, Any)
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                fail(path, f"keys must be strings, got {_describe(k)}")
            out[k] = convert(val_tp, v, f"{path}.{k}")
        return out
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    raise TypeError(f"unsupported config type {tp!r} at {path}")  # programming error, not user input


def from_dict(cls: type, data: Any, path: str) -> Any:
    """Build dataclass `cls` from a mapping; unknown keys, missing keys and wrong types are errors."""
    if hasattr(cls, "coerce"):  # a class may accept a shorthand (e.g. a bare path string)
        data = cls.coerce(data)
    if not isinstance(data, dict):
        fail(path, f"expected a mapping, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            extra = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(fields)})"
            fail(f"{path}.{key}", f"unknown key{extra}")
    kwargs = {}
    for name, f in fields.items():
        sub = f"{path}.{name}"
        if name in data:
            kwargs[name] = convert(hints[name], data[name], sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            fail(sub, f"required key missing ({_type_name(hints[name])})")
    obj = cls(**kwargs)
    if hasattr(obj, "check"):
        obj.check(path)
    return obj


def to_dict(obj: Any) -> Any:
    """Dataclasses -> plain data (for the suite snapshot); inverse of `from_dict`."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
