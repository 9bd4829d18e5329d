"""User files a suite points to: resolve their paths and list every missing one at once.

Paths in a suite are relative to the suite file's directory; `~` and `${VAR}` expand, and a
`sgbench:` prefix names a file inside the installed package (`sgbench:assets/quickstart/...`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sgbench.errors import UserError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def resolve_path(text: str, base_dir: Path) -> Path:
    """Expand ${VAR} / ${VAR:-default}, ~ and the sgbench: prefix; relative -> base_dir."""

    def sub(m: re.Match) -> str:
        value = os.environ.get(m.group(1))
        if value is None:
            if m.group(2) is None:
                raise UserError(f"environment variable {m.group(1)} is not set (used in path {text!r})")
            value = m.group(2)
        return value

    expanded = _VAR.sub(sub, text)
    if expanded.startswith("sgbench:"):
        import sgbench

        return Path(sgbench.__file__).parent / expanded[len("sgbench:"):]
    p = Path(expanded).expanduser()
    return Path(os.path.normpath(p if p.is_absolute() else (base_dir / p)))


@dataclass(frozen=True)
class FileRef:
    key: str  # key path in the suite, e.g. suite.model.checkpoint
    path: Path
    kind: str  # 'file' | 'dir' | 'any'
    how: str  # how to supply it

    def exists(self) -> bool:
        if self.kind == "file":
            return self.path.is_file()
        if self.kind == "dir":
            return self.path.is_dir()
        return self.path.exists()


def require_all(refs: list[FileRef]) -> None:
    """Raise one UserError that names every missing file and how to supply it."""
    missing = [r for r in refs if not r.exists()]
    if not missing:
        return
    items = "; ".join(f"[{i}] {r.key} = {r.path} -- {r.how}" for i, r in enumerate(missing, 1))
    noun = "file is" if len(missing) == 1 else "files are"
    raise UserError(f"{len(missing)} {noun} missing: {items}")
