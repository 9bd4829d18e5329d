"""Typed training configuration, checked once when the YAML is loaded.

`from_dict(cls, data, path)` turns a mapping into dataclass `cls` with the suite schema's converter
(`sgbench.config.typed`), raising a one-line UserError that names the key path for unknown keys,
wrong types and bad values. Task-specific sections (`model`, `objective`, `data`) are validated by
the task and dataset registries with the same function, so every section of every task (and every
suite) reports errors the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sgbench.config import typed
from sgbench.config.files import command_line_file
from sgbench.config.kinds import refuse_suite
from sgbench.config.typed import empty_section, read_yaml_file
from sgbench.errors import UserError


def from_dict(cls, data, path: str = "config"):
    """Build dataclass `cls` from a mapping with `sgbench.config.typed`; an empty section (None)
    stands for all defaults. Unknown keys, wrong types, missing keys -> one-line UserError."""
    return typed.from_dict(cls, {} if data is None else data, path)


def _check(cond: bool, path: str, msg: str) -> None:
    if not cond:
        raise UserError(f"{path}: {msg}")


def check_rates(section, path: str, *names: str) -> None:
    """Each named field of `section` is a rate in [0, 1) (dropout, decay, ...): else a UserError naming it."""
    for name in names:
        value = getattr(section, name)
        _check(0.0 <= value < 1.0, f"{path}.{name}", f"must lie in [0, 1), got {value}")


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

    coerce = staticmethod(empty_section)

    def check(self, path: str) -> None:
        _check(self.steps > 0, f"{path}.steps", "must be > 0")
        _check(self.batch_size > 0, f"{path}.batch_size", "must be > 0")
        _check(self.lr > 0, f"{path}.lr", "must be > 0")
        _check(all(0 <= b < 1 for b in self.betas), f"{path}.betas", "must lie in [0, 1)")
        _check(self.weight_decay >= 0, f"{path}.weight_decay", "must be >= 0")
        _check(self.warmup_steps >= 0, f"{path}.warmup_steps", "must be >= 0")
        _check(self.grad_clip >= 0, f"{path}.grad_clip", "must be >= 0 (0 = off)")
        check_rates(self, path, "ema_decay")
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

    coerce = staticmethod(empty_section)


@dataclass
class TrainConfig:
    """A whole `sgbench train` YAML file. `data`, `model`, `objective` belong to the task."""

    task: str
    output: OutputConfig
    description: str = ""  # one line for `sgbench suites`
    data: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    objective: dict = field(default_factory=dict)
    train: LoopConfig = field(default_factory=LoopConfig)


def load_train_config(path) -> tuple[TrainConfig, dict]:
    """Read and validate a YAML file -> (TrainConfig, the raw mapping for checkpoints)."""
    raw = read_yaml_file(command_line_file(path), "training config")  # or sgbench:suites/train_*.yaml
    refuse_suite(raw, str(path))
    return parse_train_config(raw), raw


def parse_train_config(raw) -> TrainConfig:
    cfg = from_dict(TrainConfig, raw, "config")
    if cfg.train.batch_size <= 0:
        raise UserError("config.train.batch_size: must be > 0")
    return cfg
