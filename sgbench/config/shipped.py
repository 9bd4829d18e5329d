"""The suites and training configs that ship inside the package (sgbench/suites/, a link to the
repository's suites/ folder in a checkout), named as commands take them: `sgbench:suites/<file>`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sgbench.config.files import PACKAGE_PREFIX, package_dir
from sgbench.config.kinds import is_training_config
from sgbench.config.typed import load_yaml, read_text_file

SUITES_DIR = "suites"


@dataclass(frozen=True)
class ShippedConfig:
    name: str  # sgbench:suites/quickstart.yaml
    path: Path
    command: str  # "run" (a benchmark suite) or "train" (a training config)
    description: str  # the file's `description:`


def shipped_configs() -> list[ShippedConfig]:
    """Every shipped YAML file, by file name."""
    out = []
    for path in sorted((package_dir() / SUITES_DIR).glob("*.yaml")):
        name = f"{PACKAGE_PREFIX}{SUITES_DIR}/{path.name}"
        data = load_yaml(read_text_file(path, "shipped suite"), name)
        command = "train" if is_training_config(data) else "run"
        description = str(data.get("description") or "") if isinstance(data, dict) else ""
        out.append(ShippedConfig(name, path, command, " ".join(description.split())))
    return out
