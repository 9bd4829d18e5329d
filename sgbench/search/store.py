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

from sgbench.search.study import Studies, counted_trials

LEAD = ["trial_id", "role", "method", "gamma_strong", "gamma_weak", "omega", "schedule", "n_samples", "seed"]
TAIL = ["gflops", "gflops_attn", "images_per_s", "status"]  # gflops: the paper's count; _attn: + attention scores
EXTRA = ["label", "interval", "duration_s"]  # after the design's columns; readers may ignore them

STATUS = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}


def collect_rows(studies: Studies) -> list[dict]:
    """All rows of finished trials: baselines first (in queue order), then search trials."""
    rows = []
    for role, study in studies.all():
        for t in sorted(counted_trials(study), key=lambda t: t.number):
            status = STATUS.get(t.state)
            if status is None:  # still running in some worker
                continue
            trial_rows = t.user_attrs.get("rows") or [_failed_row(t)]
            for r in trial_rows:
                rows.append({**r, "role": role, "status": status})
    return rows


def _failed_row(t) -> dict:
    s = t.user_attrs.get("setting", {})
    return {**s, "trial_id": t.user_attrs.get("trial_id", f"t{t.number}"), "seed": "", "n_samples": 0}


def columns(rows: list[dict]) -> list[str]:
    known = set(LEAD) | set(TAIL) | set(EXTRA) | {"role", "status"}
    metrics = []
    for r in rows:
        for k in r:
            if k not in known and k not in metrics:
                metrics.append(k)
    return LEAD + metrics + TAIL + EXTRA


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
