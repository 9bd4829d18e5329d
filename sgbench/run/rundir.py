"""results/<run>/: choosing the directory (never silently reusing one), suite snapshot, env.json.

A run directory that already exists is only reused with --resume; otherwise the run gets the
next free suffixed name (`quickstart-2`, `quickstart-3`, ...) and says so.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from sgbench.config.loader import LoadedSuite
from sgbench.errors import UserError
from sgbench.rehearse.marker import refuse_real_use


def write_atomic(path: Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def free_name(root: Path, name: str) -> str:
    if not (root / name).exists():
        return name
    k = 2
    while (root / f"{name}-{k}").exists():
        k += 1
    return f"{name}-{k}"


def choose_run_dir(root: Path, name: str, resume: bool, log=print) -> Path:
    """results/<name>, or with --resume the existing one, or a fresh suffixed name."""
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise UserError(f"--name must be a plain directory name, got {name!r}")
    target = root / name
    if resume:
        if not (target / "suite.yaml").is_file():
            raise UserError(f"--resume: no run to resume at {target} (no suite.yaml); drop --resume to start one")
        refuse_real_use(target, "--resume (add --rehearse to continue a rehearsal)")
        return target
    fresh = free_name(root, name)
    if fresh != name:
        log(f"{target} already exists; writing this run to {root / fresh} (use --resume to continue {name})")
    return root / fresh


def rendezvous(root: Path, choose, prepare) -> Path:
    """Under torchrun, rank 0 chooses and prepares the run directory; the other ranks join it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        path = choose()
        prepare(path)
        return path
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "none")
    marker = root / f".rendezvous-{run_id}"
    if int(os.environ.get("RANK", "0")) == 0:
        path = choose()
        prepare(path)
        write_atomic(marker, str(path))
        return path
    deadline = time.time() + 600
    while time.time() < deadline:
        if marker.is_file():
            return Path(marker.read_text().strip())
        time.sleep(0.5)
    raise UserError(f"rank {os.environ.get('RANK')}: rank 0 did not create the run directory (waited for {marker})")


def snapshot_text(loaded: LoadedSuite) -> str:
    import yaml

    header = f"# snapshot of {loaded.source} as loaded by sgbench run (defaults filled in)\n"
    return header + yaml.safe_dump(loaded.snapshot(), sort_keys=False, allow_unicode=True)


def check_same_suite(run_dir: Path, loaded: LoadedSuite) -> None:
    """--resume must continue the same experiment: the snapshots must agree."""
    import yaml

    old = yaml.safe_load((run_dir / "suite.yaml").read_text(encoding="utf-8"))
    new = loaded.snapshot()
    diff = _first_difference(old, new, "suite")
    if diff:
        raise UserError(f"--resume: the suite differs from the one {run_dir} was started with ({diff}); "
                        "start a new run instead (drop --resume)")


def _first_difference(a, b, path: str):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return f"{path}.{k}"
            d = _first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path} (length)"
        for i, (x, y) in enumerate(zip(a, b)):
            d = _first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else path


def prepare(run_dir: Path, loaded: LoadedSuite, resume: bool, device: str, argv: list[str]) -> None:
    """Create the directory, write suite.yaml and env.json (a resume appends to env.json)."""
    from sgbench.run.env import environment

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "samples").mkdir(exist_ok=True)
    env_path = run_dir / "env.json"
    now = environment(device, argv)
    if (run_dir / "suite.yaml").is_file() and resume:
        check_same_suite(run_dir, loaded)
        env = json.loads(env_path.read_text(encoding="utf-8")) if env_path.is_file() else dict(now)
        env.setdefault("resumes", []).append(now)
    else:
        if not (run_dir / "suite.yaml").is_file():
            write_atomic(run_dir / "suite.yaml", snapshot_text(loaded))
        env = now
    write_atomic(env_path, json.dumps(env, indent=2, sort_keys=False) + "\n")
