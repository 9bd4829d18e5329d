"""Training: `sgbench train CONFIG.yaml` (flow matching with TREAD/MaskDiT, the quickstart classifier).

Public API: `train(cfg, raw)`, `load_train_config(path)`, the task registry (`TrainTask`,
`register_task`, `get_task`, `TASKS`).
"""

from sgbench.train.config import LoopConfig, OutputConfig, TrainConfig, load_train_config, parse_train_config
from sgbench.train.tasks import TASKS, TrainTask, get_task, register_task


def train(cfg, raw=None, progress: bool = True, trust_checkpoint: bool = False, force: bool = False):
    from sgbench.train.loop import train as _train

    return _train(cfg, raw if raw is not None else {}, progress, trust_checkpoint=trust_checkpoint, force=force)


__all__ = [
    "LoopConfig",
    "OutputConfig",
    "TASKS",
    "TrainConfig",
    "TrainTask",
    "get_task",
    "load_train_config",
    "parse_train_config",
    "register_task",
    "train",
]
