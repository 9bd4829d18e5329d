"""Plain YAML data -> typed dataclasses, checked once with the key path in every error.

Supported field types: bool, int, float (accepts ints), str, Any, Optional[X], X | Y unions of
scalars, list[X], tuple[X, ...], tuple[X, Y] (fixed length), dict[str, X], bare list/tuple/dict,
Literal[...] and nested dataclasses. Lists given for a tuple field become tuples. Errors read
`suite.search.space.omega[2]: expected a number, got 'high'`. Used by the suite schema and by the
training config (`sgbench.train.config`).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

from sgbench.errors import FieldError, UserError


MAX_TEXT_BYTES = 4 << 20  # a suite or training config is a few kB; a bigger file is not one


def _strict_loader():
    """yaml.SafeLoader that refuses aliases (`*name`: a few lines of them expand exponentially,
    "alias bombs") and duplicate keys (YAML keeps the last one silently)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(None, None, f"aliases (*{event.anchor}) are not allowed; "
                                                  "write the value out", event.start_mark)
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            seen = {}
            if isinstance(node, yaml.MappingNode):
                for key_node, _ in node.value:
                    key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                    if key is not None and key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark)
                    if key is not None:
                        seen[key] = key_node.start_mark.line
            return super().construct_mapping(node, deep)

    StrictLoader.add_constructor("tag:yaml.org,2002:map", StrictLoader.construct_yaml_map)
    return StrictLoader


def load_yaml(text: str, source: str) -> Any:
    """YAML text -> plain data; a syntax error, an alias or a duplicate key is one UserError
    naming the line and column."""
    import yaml

    try:
        return yaml.load(text, Loader=_strict_loader())  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"{source}: invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise UserError(f"{source}: invalid YAML: nested too deeply") from None


def read_text_file(path, what: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """A text file's content; a missing, unreadable or oversized file is one UserError
    (`{what} not found: ...`)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"{what} not found: {p}")
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise UserError(f"{what} {p} is {size} bytes; the limit is {max_bytes} (is it the right file?)")
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {what} {p}: {e}") from None


def read_yaml_file(path, what: str) -> Any:
    """Read and parse a YAML file; a missing or unreadable file is one UserError."""
    p = Path(path).expanduser()
    return load_yaml(read_text_file(p, what), str(p))


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
    if origin in (list, tuple) or tp in (list, tuple):
        return "a list"
    if origin is dict or tp is dict or dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    return getattr(tp, "__name__", str(tp))


def _same_shape(tp: Any, value: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin in (list, tuple) or tp in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict or tp is dict or dataclasses.is_dataclass(tp):
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
    if value is None and dataclasses.is_dataclass(tp) and hasattr(tp, "coerce"):
        value = tp.coerce(value)  # a section may stand for its defaults when left empty
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
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            fail(path, f"expected a list, got {_describe(value)}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                fail(path, f"expected a list of {len(args)} values, got {len(value)}")
            item_tps = args
        else:
            item_tps = [args[0] if args else Any] * len(value)
        items = [convert(t, v, f"{path}[{i}]") for i, (t, v) in enumerate(zip(item_tps, value))]
        return tuple(items) if tuple in (origin, tp) else items
    if tp is dict:  # bare dict: any mapping, checked later by whoever reads it
        if not isinstance(value, dict):
            fail(path, f"expected a mapping, got {_describe(value)}")
        return dict(value)
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
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            fail(f"{path}.{key}", f"unknown key{hint} (known: {', '.join(fields)})")
    kwargs = {}
    for name, f in fields.items():
        sub = f"{path}.{name}"
        if name in data:
            kwargs[name] = convert(hints[name], data[name], sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            fail(sub, f"required key missing ({_type_name(hints[name])})")
    try:
        obj = cls(**kwargs)
    except FieldError as e:  # a __post_init__ check about one field: name its key path
        raise UserError(f"{path}.{e.key}: {e.message}") from None
    except UserError as e:  # a __post_init__ check: make sure the message names the section
        msg = str(e)
        raise UserError(msg if msg.startswith(path) else f"{path}: {msg}") from None
    if hasattr(obj, "completed"):  # values one section decides for another, filled in before the check
        obj = obj.completed()
    if hasattr(obj, "check"):
        obj.check(path)
    return obj


def empty_section(data: Any) -> Any:
    """A `coerce` hook for sections: left empty (None) in the YAML, the section reads as `{}` (all
    defaults, or an error naming the first required key)."""
    return {} if data is None else data


def to_dict(obj: Any) -> Any:
    """Dataclasses -> plain data (for the suite snapshot); inverse of `from_dict`."""
    if dataclasses.is_dataclass(obj):
        omit = getattr(obj, "SNAPSHOT_OMITS_DEFAULTS", False)  # a section written as the fields set
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if f.init and not (omit and getattr(obj, f.name) == f.default)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def first_difference(a: Any, b: Any, path: str) -> Any:
    """The key path of the first difference between two plain-data trees, or None if equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return f"{path}.{k}"
            d = first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path} (length)"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else path
