"""Registry of training tasks: what `task:` in a training config names.

A task turns the task-specific config sections (`data`, `model`, `objective`) into a dataset, a
model and a loss, and writes the final weights. The generic loop (`sgbench.train.loop`) does
everything else: optimiser, EMA, precision, DDP, checkpoints, resume, progress.

A new task is one module that subclasses `TrainTask` and decorates it with `@register_task`;
list the module in `_TASK_MODULES` (or name it in the config as `package.module:task`) so it
is imported on demand.
"""

from __future__ import annotations

import importlib
from typing import ClassVar, Optional

import torch
import torch.nn as nn

from sgbench.errors import UserError

TASKS: dict[str, type["TrainTask"]] = {}

# task name -> module that registers it (imported lazily so heavy deps load only when used)
_TASK_MODULES = {
    "class_image": "sgbench.train.class_image",
    "classifier": "sgbench.train.classifier_task",
    "t2i": "sgbench.train.t2i_task",
}


class TrainTask:
    """Interface of a training task (see docs/training.md, "Adding a training task").

    Class attributes:
      name                 registry key (`task:` in the YAML)
      model_config         dataclass validating the `model:` section
      objective_config     dataclass validating the `objective:` section
    The constructor receives the validated TrainConfig and both section objects.
    """

    name: ClassVar[str] = ""
    model_config: ClassVar[type]
    objective_config: ClassVar[type]

    def __init__(self, cfg, model_cfg, objective_cfg):
        self.cfg, self.model_cfg, self.objective_cfg = cfg, model_cfg, objective_cfg

    def build_data(self):
        """-> sgbench.data.DataSplits (train split indexed by the loop; held-out for evaluate)."""
        raise NotImplementedError

    def build_model(self, data) -> nn.Module:
        raise NotImplementedError

    def loss(self, model: nn.Module, batch, step: int) -> tuple[torch.Tensor, dict]:
        """Scalar loss for one local batch (a tuple from `data.train.get`) and floats to log."""
        raise NotImplementedError

    def export(self, model: nn.Module, path, info: dict) -> None:
        """Write the final (EMA) weights to `path`; `info` has step, wall time, etc."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, data) -> dict:
        """Optional held-out metrics at the end of training (rank 0)."""
        return {}

    def model_metadata(self) -> Optional[dict]:
        """Optional JSON stored with every checkpoint so loaders need nothing else."""
        return None


def register_task(cls):
    """Class decorator: make `cls` available as `task: <cls.name>`."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    TASKS[cls.name] = cls
    return cls


def get_task(name: str) -> type[TrainTask]:
    if name not in TASKS:
        module = _TASK_MODULES.get(name)
        if module is None and ":" in name:
            module = name.split(":", 1)[0]
        if module is not None:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as e:
                if e.name != module:
                    raise
        key = name.split(":", 1)[1] if (name not in TASKS and ":" in name) else name
        if key in TASKS:
            return TASKS[key]
    if name not in TASKS:
        known = sorted(set(TASKS) | set(_TASK_MODULES))
        raise UserError(f"config.task: unknown task {name!r} (known: {', '.join(known)})")
    return TASKS[name]
