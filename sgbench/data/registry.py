"""Dataset registry: name -> (options dataclass, builder).

A builder takes its validated options and returns a `DataSplits` (train and an optional held-out
split). `build_dataset({"name": ..., **options}, path)` validates the options with the same
one-line errors as the rest of the training config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from sgbench.config import typed
from sgbench.data.arrays import ArrayDataset
from sgbench.errors import UserError


@dataclass
class DataSplits:
    train: ArrayDataset
    heldout: Optional[ArrayDataset] = None


@dataclass(frozen=True)
class DatasetEntry:
    options: type
    build: Callable[[object], DataSplits]
    doc: str = ""


DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(name: str, options: type, doc: str = ""):
    """Decorator: register `build(options) -> DataSplits` under `name`."""

    def deco(fn):
        DATASETS[name] = DatasetEntry(options, fn, doc)
        return fn

    return deco


def build_dataset(section: dict, path: str = "config.data") -> DataSplits:
    if not isinstance(section, dict) or "name" not in section:
        raise UserError(f"{path}.name: required key is missing (known datasets: {', '.join(sorted(DATASETS))})")
    name = section["name"]
    if name not in DATASETS:
        raise UserError(f"{path}.name: unknown dataset {name!r} (known: {', '.join(sorted(DATASETS))})")
    entry = DATASETS[name]
    opts = typed.from_dict(entry.options, {k: v for k, v in section.items() if k != "name"}, path)
    return entry.build(opts)
