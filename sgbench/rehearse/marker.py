"""How a rehearsal's run directory is marked, and the refusals that keep it apart from real runs.

A rehearsal directory holds a `REHEARSAL` file (written before anything else, so even a
half-built one is marked) and env.json carries `"rehearsal": {...}`. Either marks it. Real
runs refuse to resume one, `--rehearse --resume` refuses a real run, and `sgbench check`
refuses a rehearsal as the new run or the baseline. Imports nothing above `sgbench.errors`,
so the run directory code, the report and the gate can all use it.
"""

from __future__ import annotations

import json
from pathlib import Path

from sgbench.errors import UserError

MARKER = "REHEARSAL"
ENV_KEY = "rehearsal"
SUFFIX = "-rehearsal"  # run directory name: <suite or --name>-rehearsal[-k]
NOTICE = ("Rehearsal (sgbench run --rehearse): tiny sample counts and steps, stand-in files where the "
          "suite's were missing; it proves the suite runs end to end, its numbers mean nothing.")


def is_rehearsal(run_dir) -> bool:
    p = Path(run_dir)
    if (p / MARKER).is_file():
        return True
    try:
        env = json.loads((p / "env.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(env, dict) and bool(env.get(ENV_KEY))


def write_marker(run_dir, lines: list[str]) -> None:
    p = Path(run_dir)
    p.mkdir(parents=True, exist_ok=True)
    (p / MARKER).write_text("\n".join([NOTICE, *lines]) + "\n", encoding="utf-8")


def rehearsal_name(name: str) -> str:
    return name if name.endswith(SUFFIX) else name + SUFFIX


def refuse_real_use(run_dir, what: str) -> None:
    """A real run (`--resume`) or the gate (`check`) must not take a rehearsal directory."""
    if is_rehearsal(run_dir):
        raise UserError(f"{what}: {run_dir} is a rehearsal (sgbench run --rehearse: stand-in files, tiny sizes); "
                        "its numbers mean nothing, use a real run")

