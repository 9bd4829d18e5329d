"""Which command a YAML file is for: a benchmark suite (`sgbench run`) or a training config
(`sgbench train`). Both live in suites/; given to the other command, each gets a one-line error
that names the right command instead of a list of unknown keys."""

from __future__ import annotations

from sgbench.errors import UserError


def is_training_config(data) -> bool:
    """A training config has a top-level `task:` (sgbench.train.config.TrainConfig requires it;
    a suite has no such key)."""
    return isinstance(data, dict) and "task" in data


def is_suite(data) -> bool:
    """A suite has a top-level `name:` (sgbench.config.schema.Suite requires it) and no `task:`."""
    return isinstance(data, dict) and "name" in data and "task" not in data


def refuse_training_config(data, shown: str) -> None:
    if is_training_config(data):
        raise UserError(f"{shown} is a training config (top-level `task:`), not a benchmark suite: "
                        f"train with `sgbench train {shown}`")


def refuse_suite(data, shown: str) -> None:
    if is_suite(data):
        raise UserError(f"{shown} is a benchmark suite (top-level `name:`), not a training config: "
                        f"run it with `sgbench run {shown}`")
