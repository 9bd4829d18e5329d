"""trials.csv: a view of the run's Optuna studies, rewritten atomically after every trial.

Each finished trial carries its rows (one per seed) in the user attribute `rows`; the file is
rebuilt from the storage, so resumed runs and several workers never duplicate or lose rows.
Columns follow docs/design.md; metric columns sit between `seed` and `gflops`.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from optuna.trial import TrialState

from sgbench.metrics import registry
from sgbench.search.study import ERROR, ORDER, ROWS, TRIAL_ID, Studies, counted_trials

LEAD = ["trial_id", "role", "method", "gamma_strong", "gamma_weak", "omega", "schedule", "n_samples", "seed"]
TAIL = [registry.GFLOPS.key, registry.GFLOPS_ATTN.key, registry.IMAGES_PER_S.key, "status"]  # gflops: the paper's count; _attn: + attention scores
# after the design's columns; readers may ignore them. `error`: first line of a failed trial's
# error (the full traceback is in results/<run>/errors/<trial_id>.txt)
EXTRA = ["label", "interval", "duration_s", "error"]
# checkpoint sweeps (sgbench.run.sweep): after `seed`, in runs whose rows carry them
SWEEP = ["step", "checkpoint", "weak_step", "weak_checkpoint"]
SWEEP_ATTR = "sweep_columns"  # user attr: a sweep trial's SWEEP columns (for the row of a failure)

STATUS = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}


def collect_rows(studies: Studies) -> list[dict]:
    """All rows of finished trials: baselines first (in queue order), then search trials."""
    rows = []
    for role, study in studies.all():
        # the order of the work (suite methods, grid points, first ask), not of completion, so a
        # resumed or multi-worker run writes the same file as an uninterrupted one
        for t in sorted(counted_trials(study), key=lambda t: (t.user_attrs.get(ORDER, t.number), t.number)):
            status = STATUS.get(t.state)
            if status is None:  # still running in some worker
                continue
            trial_rows = t.user_attrs.get(ROWS) or [_failed_row(t)]
            for r in trial_rows:
                row = {**r, "role": role, "status": status}
                if status == "failed" and t.user_attrs.get(ERROR):
                    row["error"] = t.user_attrs[ERROR]
                rows.append(row)
    return rows


def _failed_row(t) -> dict:
    s = t.user_attrs.get("setting") or {k: v for k, v in t.params.items() if k in LEAD}
    return {**s, **t.user_attrs.get(SWEEP_ATTR, {}), "trial_id": t.user_attrs.get(TRIAL_ID, f"t{t.number}"),
            "seed": "", "n_samples": 0}


def columns(rows: list[dict]) -> list[str]:
    known = set(LEAD) | set(TAIL) | set(EXTRA) | set(SWEEP) | {"role", "status"}
    metrics = []
    for r in rows:
        for k in r:
            if k not in known and k not in metrics:
                metrics.append(k)
    sweep = [c for c in SWEEP if any(c in r for r in rows)]
    return LEAD + sweep + metrics + TAIL + EXTRA


def _cell(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.8g}"
    if isinstance(v, (list, tuple)):
        return ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v)
    return v


def write_trials_csv(path, rows: list[dict]) -> Path:
    """Write atomically (temporary file in the same directory, then os.replace)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    cols = columns(rows)
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: _cell(r.get(c)) for c in cols})
    os.replace(tmp, path)
    return path


def read_trials_csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
