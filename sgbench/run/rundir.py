"""results/<run>/: claiming the directory (atomically, never reusing one silently), the suite
snapshot, env.json, and the torchrun rendezvous of a run's ranks.

A run directory that already exists is only reused with --resume; otherwise the run gets the
next free suffixed name (`quickstart-2`, `quickstart-3`, ...) and says so. A new directory is
built under a hidden temporary name and renamed into place, so a run directory either does not
exist or holds suite.yaml and env.json, and two runs of one name never share one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
from pathlib import Path
from typing import Optional

from sgbench.config.files import check_output_dir, check_plain_name
from sgbench.config.loader import LoadedSuite
from sgbench.config.typed import first_difference, load_yaml
from sgbench.errors import UserError
from sgbench.rehearse.marker import is_rehearsal, refuse_real_use

# Suite keys that may differ between the workers (or the invocations) of one run: they change
# how fast it runs or how it is reported, never a result.
EXECUTION_KEYS = ("threads", "workers", "report", "description")
CLAIM = ".claim-"  # prefix of a run directory being built


def write_atomic(path: Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _os_error(what: str, path, e: OSError) -> UserError:
    return UserError(f"cannot write {what} {path}: {e.strerror or e}")


def check_run_root(root: Path, name: str) -> None:
    """--out must be (or become) a writable directory outside the package, and the run's name
    must fit a file name there (with a -NNN suffix)."""
    check_plain_name(name, "the run name (--name or suite.name)")
    check_output_dir(root, "--out")
    existing = root
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    try:
        limit = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    overhead = len(f".{CLAIM}{socket.gethostname()}-{2**22}".encode())  # the claim name is the longest
    if len(name.encode("utf-8")) + overhead > limit:
        raise UserError(f"the run name is {len(name.encode('utf-8'))} bytes; run names under {existing} may have "
                        f"at most {limit - overhead}")


def free_name(root: Path, name: str) -> str:
    if not (root / name).exists():
        return name
    k = 2
    while (root / f"{name}-{k}").exists():
        k += 1
    return f"{name}-{k}"


def existing_run(root: Path, name: str, rehearsal: bool = False) -> Path:
    """The run directory --resume continues (checked before anything is written); a rehearsal's
    (sgbench.rehearse) only with --rehearse, a real run's only without."""
    target = root / name
    if not (target / "suite.yaml").is_file():
        raise UserError(f"--resume: no run to resume at {target} (no suite.yaml); drop --resume to start one")
    if not rehearsal:
        refuse_real_use(target, "--resume (add --rehearse to continue a rehearsal)")
    elif not is_rehearsal(target):
        raise UserError(f"--rehearse --resume: {target} is a real run, not a rehearsal; drop --rehearse to resume it")
    if not os.access(target, os.W_OK | os.X_OK):
        raise UserError(f"--resume: the run directory {target} is not writable")
    for f in ("suite.yaml", "env.json", "study.db", "trials.csv"):
        if (target / f).exists() and not os.access(target / f, os.W_OK if f != "suite.yaml" else os.R_OK):
            raise UserError(f"--resume: {target / f} is not writable")
    return target


def read_snapshot(run_dir: Path) -> dict:
    """results/<run>/suite.yaml as data; a corrupt file is a UserError (never rewritten)."""
    path = run_dir / "suite.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read the run's suite snapshot {path}: {e}") from None
    data = load_yaml(text, str(path))
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a suite snapshot (a mapping); it was changed after the run started")
    return data


def read_env(run_dir: Path) -> Optional[dict]:
    path = run_dir / "env.json"
    if not path.is_file():
        return None
    try:
        env = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UserError(f"cannot read {path}: {str(e).splitlines()[0]}; repair or remove it to resume") from None
    if not isinstance(env, dict):
        raise UserError(f"{path} is not a JSON object; repair or remove it to resume")
    return env


def comparable(snapshot: dict) -> dict:
    """What makes two suites the same experiment; a checkpoint sweep may gain checkpoints."""
    from sgbench.run.sweep import without_sweep_entries

    return without_sweep_entries({k: v for k, v in snapshot.items() if k not in EXECUTION_KEYS})


def suite_difference(old: dict, loaded: LoadedSuite) -> Optional[str]:
    from sgbench.run.sweep import kept_entries

    new = loaded.snapshot()
    return kept_entries(old, new) or first_difference(comparable(old), comparable(new), "suite")


def check_same_suite(run_dir: Path, loaded: LoadedSuite, what: str = "--resume") -> None:
    """Continuing a run (--resume, or joining it as another worker) must run the same experiment."""
    diff = suite_difference(read_snapshot(run_dir), loaded)
    if diff:
        raise UserError(f"{what}: the suite differs from the one {run_dir} was started with ({diff})"
                        f"{_overrides_note(run_dir, loaded)}; start a new run instead (drop --resume)")


def _overrides_note(run_dir: Path, loaded: LoadedSuite) -> str:
    """Which --set options the run was started with, when either side has some."""
    from sgbench.config.overrides import options

    try:
        env = read_env(run_dir) or {}
    except UserError:  # refused with its own message right after this check
        env = {}
    started = env.get("overrides") if isinstance(env.get("overrides"), list) else []
    started = [t for t in started if isinstance(t, str)]
    if not started and not loaded.overrides:
        return ""
    return f"; it was started with {options(started) if started else 'no --set'}, this has " \
           f"{options(loaded.overrides) if loaded.overrides else 'no --set'}"


def snapshot_text(loaded: LoadedSuite) -> str:
    import yaml

    from sgbench.config.overrides import options

    header = f"# snapshot of {loaded.source} as loaded by sgbench run (defaults filled in)\n"
    if loaded.overrides:  # one line each: parse() refuses line breaks
        header += f"# with {options(loaded.overrides)}\n"
    return header + yaml.safe_dump(loaded.snapshot(), sort_keys=False, allow_unicode=True)


@contextlib.contextmanager
def _locked(run_dir: Path):
    """Serialise read-modify-write of env.json between the workers of one machine."""
    try:
        import fcntl
    except ImportError:  # not POSIX: one worker per run directory
        yield
        return
    with open(run_dir / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _clean_stale_claims(root: Path) -> None:
    """Remove claim directories of processes of this host that no longer exist (killed while claiming)."""
    host = socket.gethostname()
    for d in root.glob(f".*{CLAIM}*"):
        _, _, tail = d.name.partition(CLAIM)
        h, _, pid = tail.rpartition("-")
        if h == host and pid.isdigit():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(d, ignore_errors=True)
            except PermissionError:
                pass


def log_to_stderr(msg: str) -> None:
    """The default log of the run's parts: `sgbench run` keeps stdout for its outcome lines."""
    import sys

    print(msg, file=sys.stderr, flush=True)


def claim(root: Path, name: str, loaded: LoadedSuite, env: dict, log=log_to_stderr) -> Path:
    """Create root/<name> (or the next free suffixed name) holding suite.yaml and env.json, atomically."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        _clean_stale_claims(root)
        tmp = root / f".{name}{CLAIM}{socket.gethostname()}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            (tmp / "samples").mkdir()
            write_atomic(tmp / "suite.yaml", snapshot_text(loaded))
            write_atomic(tmp / "env.json", json.dumps(env, indent=2) + "\n")
            os.chmod(tmp, 0o777 & ~_umask())
            for _ in range(1000):
                fresh = free_name(root, name)
                try:
                    os.rename(tmp, root / fresh)  # atomic; fails if another run took the name meanwhile
                except OSError:
                    if not (root / fresh).exists():
                        raise
                    continue
                if fresh != name:
                    log(f"{root / name} already exists; writing this run to {root / fresh} "
                        f"(use --resume to continue {name})")
                return root / fresh
            raise UserError(f"could not claim a run directory for {name} under {root}")
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    except OSError as e:
        raise _os_error("the run directory under", root, e) from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def record_resume(run_dir: Path, env: dict) -> None:
    """A resume (or a joining worker) appends its environment to env.json."""
    try:
        with _locked(run_dir):
            old = read_env(run_dir) or {}
            old.setdefault("resumes", []).append(env)
            write_atomic(run_dir / "env.json", json.dumps(old, indent=2) + "\n")
    except OSError as e:
        raise _os_error("", run_dir / "env.json", e) from None


# ---- torchrun ------------------------------------------------------------------------------------

def world() -> tuple[int, int]:
    """(rank, world size) under torchrun; (0, 1) otherwise."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def rendezvous_store(timeout_s: float = 3600.0):
    """The key-value store of this torchrun launch (its agent's, or one rank 0 hosts): per
    launch, in memory, gone when the launch ends, so no state of an earlier run can be joined."""
    from datetime import timedelta

    import torch.distributed as dist

    rank, size = world()
    if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
        raise UserError("WORLD_SIZE > 1 without MASTER_ADDR/MASTER_PORT: start the workers with torchrun")
    try:
        store, _, _ = next(dist.rendezvous("env://", rank=rank, world_size=size, timeout=timedelta(seconds=timeout_s)))
    except Exception as e:
        raise UserError(f"rank {rank}: cannot reach the other ranks' rendezvous "
                        f"({os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}): {str(e).splitlines()[0]}") from None
    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return dist.PrefixStore(f"sgbench/run/{restart}", store)


def publish(store, run_dir: Optional[Path], error: str = "") -> None:
    store.set("run_dir", json.dumps({"path": str(run_dir) if run_dir else None, "error": error}))


def await_run_dir(store, timeout_s: float = 3600.0) -> Path:
    """Rank > 0: the run directory rank 0 published (then tells rank 0 it has it)."""
    from datetime import timedelta

    rank, _ = world()
    try:
        store.wait(["run_dir"], timedelta(seconds=timeout_s))
        info = json.loads(store.get("run_dir").decode())
        store.set(f"joined/{rank}", "1")
    except Exception as e:
        raise UserError(f"rank {rank}: rank 0 did not create the run directory ({str(e).splitlines()[0]})") from None
    if info.get("error") or not info.get("path"):
        raise UserError(f"rank {rank}: rank 0 stopped before the run started: {info.get('error') or 'no run directory'}")
    return Path(info["path"])


def await_joins(store, timeout_s: float = 120.0) -> None:
    """Rank 0, before it exits: when rank 0 hosts the store, the other ranks must have read the
    run directory first (a rank that died before joining is waited for at most `timeout_s`)."""
    from datetime import timedelta

    _, size = world()
    try:
        store.wait([f"joined/{r}" for r in range(1, size)], timedelta(seconds=timeout_s))
    except Exception:
        pass

