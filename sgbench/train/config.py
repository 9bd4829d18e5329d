"""Typed training configuration, checked once when the YAML is loaded.

`from_dict(cls, data, path)` turns a mapping into dataclass `cls`, raising a one-line UserError
that names the key path for unknown keys, wrong types and bad values. Task-specific sections
(`model`, `objective`, `data`) are validated by the task and dataset registries with the same
function, so every section of every task reports errors the same way.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sgbench.errors import UserError


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(tp, value, path: str):
    """Check (and lightly convert: int -> float, list -> tuple) `value` against annotation `tp`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, path)
            except UserError as e:
                errors.append(str(e))
        raise UserError(errors[0] if errors else f"{path}: invalid value {value!r}")
    if origin is Literal:
        if value not in args:
            raise UserError(f"{path}: must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin in (tuple, list) or tp in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{path}: expected a list, got {type(value).__name__} {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise UserError(f"{path}: expected a list of {len(args)} values, got {len(value)}")
            items = [_coerce(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value))]
        else:
            elem = args[0] if args else Any
            items = [_coerce(elem, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise UserError(f"{path}: expected a mapping, got {type(value).__name__}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise UserError(f"{path}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise UserError(f"{path}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise UserError(f"{path}: expected {_type_name(tp)}, got {value!r}")
    return value


def from_dict(cls, data, path: str = "config"):
    """Build dataclass `cls` from a mapping; unknown keys, wrong types, missing keys -> UserError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in known:
            raise UserError(f"{path}.{key}: unknown key (known: {', '.join(known)})")
    kwargs = {k: _coerce(hints[k], v, f"{path}.{k}") for k, v in data.items()}
    for name, f in known.items():
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UserError(f"{path}.{name}: required key is missing")
    try:
        obj = cls(**kwargs)
    except UserError as e:
        msg = str(e)
        raise UserError(msg if msg.startswith(path) else f"{path}: {msg}") from None
    if hasattr(obj, "check"):
        obj.check(path)
    return obj


def to_dict(obj) -> dict:
    """Dataclass -> plain JSON/YAML-able dict (tuples become lists)."""

    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(obj)


def _check(cond: bool, path: str, msg: str) -> None:
    if not cond:
        raise UserError(f"{path}: {msg}")


@dataclass
class LoopConfig:
    """`train:` section — optimisation and bookkeeping shared by every task.

    Defaults are the paper's (appendix A: AdamW, lr 1e-4, betas (0.9, 0.999), no weight decay).
    """

    steps: int = 10000
    batch_size: int = 256  # global batch, split evenly over DDP ranks
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    warmup_steps: int = 0  # linear warm-up, then constant
    grad_clip: float = 0.0  # max global grad norm; 0 = off
    ema_decay: float = 0.9999  # 0 = no EMA (export the raw weights)
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on GPU, fp32 on CPU
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0
    threads: int = 0  # torch intra-op threads; 0 = leave torch's default
    log_every: int = 50
    ckpt_every: int = 1000  # overwrite <dir>/checkpoints/latest.pt
    keep_every: int = 5000  # also keep <dir>/checkpoints/step_XXXXXXX.pt for ever (autoguidance)
    keep_steps: tuple[int, ...] = ()  # extra steps to keep (e.g. early checkpoints)

    def check(self, path: str) -> None:
        _check(self.steps > 0, f"{path}.steps", "must be > 0")
        _check(self.batch_size > 0, f"{path}.batch_size", "must be > 0")
        _check(self.lr > 0, f"{path}.lr", "must be > 0")
        _check(all(0 <= b < 1 for b in self.betas), f"{path}.betas", "must lie in [0, 1)")
        _check(self.weight_decay >= 0, f"{path}.weight_decay", "must be >= 0")
        _check(self.warmup_steps >= 0, f"{path}.warmup_steps", "must be >= 0")
        _check(self.grad_clip >= 0, f"{path}.grad_clip", "must be >= 0 (0 = off)")
        _check(0 <= self.ema_decay < 1, f"{path}.ema_decay", "must lie in [0, 1)")
        _check(self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"), f"{path}.device",
               f"must be auto, cpu or cuda, got {self.device!r}")
        _check(self.threads >= 0, f"{path}.threads", "must be >= 0")
        for k in ("log_every", "ckpt_every", "keep_every"):
            _check(getattr(self, k) > 0, f"{path}.{k}", "must be > 0")
        _check(all(s > 0 for s in self.keep_steps), f"{path}.keep_steps", "steps must be > 0")


@dataclass
class OutputConfig:
    """`output:` section."""

    dir: str  # run directory: checkpoints/, log.jsonl, summary.json
    export: str = ""  # final weights file (.safetensors) written at the end; '' = none
    resume: bool = True  # continue from <dir>/checkpoints/latest.pt when it exists


@dataclass
class TrainConfig:
    """A whole `sgbench train` YAML file. `data`, `model`, `objective` belong to the task."""

    task: str
    output: OutputConfig
    data: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    objective: dict = field(default_factory=dict)
    train: LoopConfig = field(default_factory=LoopConfig)


def load_train_config(path) -> tuple[TrainConfig, dict]:
    """Read and validate a YAML file -> (TrainConfig, the raw mapping for checkpoints)."""
    import yaml

    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"training config not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else "syntax error"
        raise UserError(f"{p}: invalid YAML ({first})") from None
    return parse_train_config(raw), raw


def parse_train_config(raw) -> TrainConfig:
    cfg = from_dict(TrainConfig, raw, "config")
    if cfg.train.batch_size <= 0:
        raise UserError("config.train.batch_size: must be > 0")
    return cfg
