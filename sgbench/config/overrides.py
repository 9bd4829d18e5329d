"""`sgbench run SUITE --set KEY=VALUE`: change a suite for one run without copying its file.

KEY is a dotted path into the suite's YAML mapping with optional list indices
(`sampler.steps`, `methods[1].omega`, `search.space.omega`); VALUE is YAML, read by the suite
file's own strict loader (`20` an integer, `[1.5, 2.0]` a list, `{n: 100}` a mapping, `null`
null). The overrides change the file's parsed data before the typed check, so they are checked
exactly like the file; a key the file leaves out is added (its section too), so anything the
schema accepts can be set. An error an override causes names it:
`--set sampler.steps=abc: suite.sampler.steps: expected an integer, got 'abc'`.
"""

from __future__ import annotations

import copy
import re
import shlex
from dataclasses import dataclass
from typing import Any, Sequence, Union

from sgbench.config.typed import MAX_TEXT_BYTES, load_yaml
from sgbench.errors import UserError

ROOT = "suite"
_PART = re.compile(r"([^.\[\]]+)((?:\[[0-9]+\])*)")  # one dotted component: name, then [i][j]...
_INDEX = re.compile(r"\[([0-9]+)\]")
_KEY_PATH = re.compile(r"\bsuite(?:\.[^\s.:\[\]()=,;']+|\[[0-9]+\])*")  # a key path in an error message
EXAMPLE = "e.g. --set sampler.steps=20 or --set 'methods[1].omega=2.5'"

Step = Union[str, int]


@dataclass(frozen=True)
class Override:
    text: str  # KEY=VALUE as given
    steps: tuple[Step, ...]  # ('methods', 1, 'omega')
    value: Any

    @property
    def key(self) -> str:
        """The key path as error messages write it: `suite.methods[1].omega`."""
        return ROOT + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in self.steps)

    def error(self, message: str) -> UserError:
        return UserError(f"--set {_shown(self.text)}: {message}")


def _shown(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def parse(text: str) -> Override:
    """One `KEY=VALUE`; a malformed one is a UserError naming it."""
    if not isinstance(text, str) or "=" not in text:
        raise UserError(f"--set {_shown(str(text))}: expected KEY=VALUE ({EXAMPLE})")
    if len(text.encode("utf-8", "replace")) > MAX_TEXT_BYTES:
        raise UserError(f"--set {_shown(text)}: longer than a suite file may be ({MAX_TEXT_BYTES} bytes)")
    if not text.replace("\t", " ").isprintable():  # one line: it is quoted in a YAML comment and a hint
        raise UserError(f"--set {_shown(text)!r}: control characters (line breaks) are not allowed; "
                        "write the value on one line (YAML flow style: [1, 2], {a: 1})")
    raw_key, _, raw_value = text.partition("=")
    key = raw_key.strip()
    if not key:
        raise UserError(f"--set {_shown(text)}: empty key before '=' ({EXAMPLE})")
    steps: list[Step] = []
    for part in key.split("."):
        m = _PART.fullmatch(part)
        if m is None or m.group(1) != m.group(1).strip():
            raise UserError(f"--set {_shown(text)}: {key!r} is not a key path: dotted names with optional "
                            f"list indices [0], [1], ... ({EXAMPLE})")
        steps.append(m.group(1))
        steps.extend(int(i) for i in _INDEX.findall(m.group(2)))
    value = load_yaml(raw_value, f"--set {_shown(text)}")  # the suite file's loader: no tags, aliases
    return Override(text=text, steps=tuple(steps), value=value)


def parse_all(texts: Sequence[str]) -> tuple[Override, ...]:
    """Every `--set`, in order; one key given twice with different values is a contradiction."""
    out = tuple(parse(t) for t in texts)
    seen: dict[tuple, Override] = {}
    for o in out:
        first = seen.setdefault(o.steps, o)
        if first is not o and first.value != o.value:
            raise UserError(f"--set {o.key[len(ROOT) + 1:]} is given twice ({_shown(first.text)} and "
                            f"{_shown(o.text)}); give it once")
    return out


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def apply(data: dict, overrides: Sequence[Override]) -> dict:
    """The suite's YAML data with every override applied in order (`data` itself is not changed)."""
    data = copy.deepcopy(data)
    for o in overrides:
        _apply_one(data, o)
    return data


def _apply_one(data: dict, o: Override) -> None:
    node: Any = data
    where = ROOT
    for i, step in enumerate(o.steps):
        if isinstance(step, int):
            if not isinstance(node, list):
                raise o.error(f"{where} is {_kind(node)} in the suite, not a list: [{step}] indexes nothing")
            if step >= len(node):
                raise o.error(f"{where}[{step}] is out of range: the list has {len(node)} entr"
                              f"{'y' if len(node) == 1 else 'ies'} (set the whole list to add one)")
        elif not isinstance(node, dict):
            raise o.error(f"{where} is {_kind(node)} in the suite, not a mapping: it has no key {step!r}")
        if i == len(o.steps) - 1:
            node[step] = o.value
            return
        child = node[step] if isinstance(step, int) else node.get(step)
        sub = f"{where}[{step}]" if isinstance(step, int) else f"{where}.{step}"
        if child is None:  # a section the file leaves out (or empty): it starts with its defaults
            if isinstance(o.steps[i + 1], int):
                raise o.error(f"{sub} is not in the suite, so [{o.steps[i + 1]}] indexes nothing; "
                              f"set the whole list (--set '{sub[len(ROOT) + 1:]}=[...]')")
            child = node[step] = {}
        node, where = child, sub


def _components(path: str) -> list[str]:
    return re.findall(r"\[[0-9]+\]|[^.\[\]]+", path)


def _related(error_path: str, o: Override) -> bool:
    """The error is about the override's key, a key inside it, or a section holding it."""
    err, own = _components(error_path), _components(o.key)
    if len(err) < 2:  # the whole suite: says nothing about which key
        return False
    n = min(len(err), len(own))
    return err[:n] == own[:n]


def culprits(message: str, overrides: Sequence[Override]) -> list[Override]:
    """The overrides whose key path is related to a key path the message names."""
    paths = _KEY_PATH.findall(message)
    return [o for o in overrides if any(_related(p, o) for p in paths)]


def blame(error: UserError, overrides: Sequence[Override]) -> UserError:
    """`error` led by the override(s) it is about (`--set KEY=VALUE: message`)."""
    shown = " ".join(f"--set {_shown(o.text)}" for o in overrides)
    return UserError(f"{shown}: {error}")


def options(texts: Sequence[str]) -> str:
    """The `--set` options of a run, quoted for a shell (the resume hint, the snapshot's header;
    '' without any)."""
    return " ".join(f"--set {shlex.quote(t)}" for t in texts)
