"""User files a suite points to: resolve their paths and list every missing one at once.

Paths in a suite are relative to the suite file's directory; `~` and `${VAR}` expand, and a
`sgbench:` prefix names a file inside the installed package (`sgbench:assets/quickstart/...`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sgbench.errors import UserError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_vars(text: str, what: str = "path") -> str:
    """Expand ${VAR} and ${VAR:-default}; an unset variable without a default is a UserError."""

    def sub(m: re.Match) -> str:
        value = os.environ.get(m.group(1))
        if value is None:
            if m.group(2) is None:
                raise UserError(f"environment variable {m.group(1)} is not set (used in {what} {text!r})")
            value = m.group(2)
        return value

    return _VAR.sub(sub, text)


PACKAGE_PREFIX = "sgbench:"  # names a file inside the installed package (its assets/ and suites/)


def _in_package(text: str) -> Path:
    return package_dir() / text[len(PACKAGE_PREFIX):]


def resolve_path(text: str, base_dir: Path) -> Path:
    """Expand ${VAR} / ${VAR:-default}, ~ and the sgbench: prefix; relative -> base_dir."""
    expanded = expand_vars(text)
    if expanded.startswith(PACKAGE_PREFIX):
        return _in_package(expanded)
    p = Path(expanded).expanduser()
    return Path(os.path.normpath(p if p.is_absolute() else (base_dir / p)))


def command_line_file(text) -> Path:
    """A suite or training config named on the command line: a path (~ expands), or a shipped one,
    `sgbench:suites/quickstart.yaml`, which must exist (`sgbench suites` lists them)."""
    text = str(text)
    if not text.startswith(PACKAGE_PREFIX):
        return Path(text).expanduser()
    path = _in_package(text)
    if not path.is_file():
        raise UserError(f"{text}: no such file shipped with sgbench ({path}); `sgbench suites` lists the shipped suites")
    return path


@dataclass(frozen=True)
class FileRef:
    key: str  # key path in the suite, e.g. suite.model.checkpoint
    path: Path
    kind: str  # 'file' | 'dir' | 'any'
    how: str  # how to supply it
    slot: str = ""  # its field of sgbench.config.loader.SuiteFiles (sweep entries: the tuple's field)
    index: Optional[int] = None  # a sweep entry's position

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


def check_plain_name(name: str, what: str) -> None:
    """A run or method name becomes a file name (results/<run>/, samples/b-<method>.png): one path
    component of printable characters, not starting with '.', short enough for any file system."""
    from sgbench.config.limits import MAX_NAME_BYTES

    bad = next((c for c in name if c in "/\\\0" or not c.isprintable()), None)
    if not name.strip() or bad is not None or name.startswith(".") or name != name.strip():
        shown = f" (contains {bad!r})" if bad is not None else ""
        raise UserError(f"{what}: must be a plain name (no '/', '\\', leading '.', control characters or "
                        f"surrounding spaces), got {name!r}{shown}")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise UserError(f"{what}: at most {MAX_NAME_BYTES} bytes, got {len(name.encode('utf-8'))}")


def package_dir() -> Path:
    import sgbench

    return Path(sgbench.__file__).resolve().parent


def _outside_package(p: Path, what: str) -> None:
    real, pkg = p.resolve(), package_dir()
    if real == pkg or pkg in real.parents:
        raise UserError(f"{what} {p} lies inside the installed sgbench package ({pkg}); sgbench never writes "
                        "there: choose a path outside it")


def check_output_dir(path, what: str) -> Path:
    """A directory sgbench will create or write into: outside the installed package (its shipped
    assets), and its nearest existing ancestor a writable directory. Returns the absolute path."""
    p = Path(os.path.abspath(Path(path).expanduser()))
    _outside_package(p, what)
    existing = p
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{what} {p}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{what} {p}: {existing} is not writable")
    return p


def check_output_file(path, what: str, force: bool = False) -> Path:
    """A file sgbench will write: never replaces an existing file unless `force`, never inside the
    installed package, in a directory that can be created and written. Returns the absolute path."""
    p = Path(os.path.abspath(Path(path).expanduser()))
    _outside_package(p, what)
    if p.is_dir():
        raise UserError(f"{what} {p} is a directory")
    if p.exists() and not force:
        raise UserError(f"{what} {p} already exists; remove it, choose another path or pass --force")
    check_output_dir(p.parent, what)
    return p
