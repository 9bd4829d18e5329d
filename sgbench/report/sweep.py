"""Checkpoint sweeps in reports and in `sgbench check` (docs/sweeps.md).

A sweep run's trials.csv rows carry `step` (the main network's training iteration),
`checkpoint` and, for methods with a weak network, `weak_step` and `weak_checkpoint`
(`sgbench.run.sweep`). The report's ordinary tables and heatmaps, and the gate, compare
settings; across checkpoints the same setting means another experiment, so they read one
*checkpoint view* of such a run: the rows of one main checkpoint (and of one auxiliary
checkpoint, for ag/ag+sg). The sweep's own summaries (Fig. 5, Fig. 7 right, the sweep table)
read every checkpoint. Pure functions over the loaded run; figures: `report/sweep_figures.py`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import pandas as pd

from sgbench.errors import UserError
from sgbench.guidance.vocabulary import METHODS, is_unguided, method_order
from sgbench.report.aggregate import Summary, best, summarise
from sgbench.report.runs import Run
from sgbench.search.store import SWEEP

STEP, CHECKPOINT, WEAK_STEP, WEAK_CHECKPOINT = SWEEP
AUTOGUIDED = tuple(m for m, spec in METHODS.items() if spec.needs_weak_network)  # ag, ag+sg (paper Fig. 7)


def normalise_columns(raw: pd.DataFrame, out: pd.DataFrame) -> None:
    """Copy the sweep columns of a raw trials table into the normalised one (`report.runs`):
    steps as int or None, checkpoint paths as strings."""
    for col in (STEP, WEAK_STEP):
        if col in raw.columns:
            values = pd.to_numeric(raw[col], errors="coerce")
            out[col] = pd.Series([None if math.isnan(v) else int(v) for v in values], index=raw.index, dtype=object)
    for col in (CHECKPOINT, WEAK_CHECKPOINT):
        if col in raw.columns:
            out[col] = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip()
                        for v in raw[col]]


def _steps(run: Run, column: str) -> list[int]:
    if column not in run.trials.columns:
        return []
    return sorted({int(v) for v in run.trials[column] if v is not None and not pd.isna(v)})


def _model(run: Run) -> dict:
    suite = run.suite if isinstance(run.suite, dict) else {}
    model = suite.get("model")
    return model if isinstance(model, dict) else {}


def main_steps(run: Run) -> list[int]:
    """The swept main checkpoints' iterations ([] unless the main network is swept)."""
    steps = _steps(run, STEP)
    return steps if (_model(run).get("sweep") or len(steps) > 1) else []


def weak_steps(run: Run) -> list[int]:
    """The swept auxiliary checkpoints' iterations ([] unless the weak network is swept)."""
    steps = _steps(run, WEAK_STEP)
    return steps if (_model(run).get("weak_sweep") or len(steps) > 1) else []


def is_sweep(run: Run) -> bool:
    return bool(main_steps(run) or weak_steps(run))


def view(run: Run, step: Optional[int] = None, weak_step: Optional[int] = None) -> Run:
    """The rows of one main checkpoint (`step`, when the main network is swept) and one auxiliary
    checkpoint (`weak_step`, when it is swept; rows without a weak network are kept), as a Run
    named `<run>@step<N>` (and `-weak<M>`)."""
    t = run.trials
    keep = pd.Series(True, index=t.index)
    name = run.name
    if step is not None:
        keep &= pd.Series([v == step for v in t[STEP]], index=t.index)
        name += f"@step{step}"
    if weak_step is not None:
        keep &= pd.Series([v is None or pd.isna(v) or v == weak_step for v in t[WEAK_STEP]], index=t.index)
        name += f"{'-' if step is not None else '@'}weak{weak_step}"
    rows = t[keep].reset_index(drop=True)
    problem = run.problem
    if problem is None and rows[rows["status"] == "complete"].empty:
        problem = "no trial of this checkpoint completed"
    return dataclasses.replace(run, name=name, trials=rows, problem=problem)


def newest_view(run: Run) -> Run:
    """What the ordinary tables and figures show of a sweep: its newest main checkpoint with its
    newest auxiliary checkpoint (the run itself outside sweeps). Keeps the run's name."""
    if not is_sweep(run):
        return run
    mains, weaks = main_steps(run), weak_steps(run)
    v = view(run, mains[-1] if mains else None, weaks[-1] if weaks else None)
    return dataclasses.replace(v, name=run.name)


def newest_and_previous(run: Run) -> tuple[Run, Run]:
    """`sgbench check --previous-checkpoint`: the views of the newest and of the previous main
    checkpoint (each with the newest auxiliary checkpoint when that is swept too)."""
    mains = main_steps(run)
    if len(mains) < 2:
        what = "one main checkpoint" if mains else "no checkpoint sweep of the main network (model.sweep)"
        raise UserError(f"--previous-checkpoint: {run.name} has {what}; it needs a sweep of at least two "
                        "checkpoints (or compare two runs with --baseline)")
    weaks = weak_steps(run)
    weak = weaks[-1] if weaks else None
    return view(run, mains[-1], weak), view(run, mains[-2], weak)


# ---- the sweep's summaries ---------------------------------------------------------------------
@dataclass(frozen=True)
class Point:
    """One method's best setting at one checkpoint (by `column`)."""

    method: str
    step: Optional[int]  # main iteration (None: not swept)
    weak_step: Optional[int]  # auxiliary iteration (None: no weak network or not swept)
    summary: Summary

    def value(self, column: str) -> float:
        return self.summary.mean(column)

    def se(self, column: str) -> float:
        s = self.summary.stats.get(column)
        return s.se if s else math.nan


def cell_summaries(run: Run) -> list[tuple[Optional[int], Optional[int], Summary]]:
    """(step, weak_step, summary) per setting and checkpoint pair: seeds of one setting at one
    checkpoint pair are summarised together, never across checkpoints."""
    t = run.trials
    if run.problem is not None and t[t["status"] == "complete"].empty:
        return []

    def ints(column):  # plain lists: pandas would turn a column of ints and None into floats and NaN
        if column not in t.columns:
            return [None] * len(t)
        return [None if v is None or pd.isna(v) else int(v) for v in t[column]]

    pairs = list(zip(ints(STEP), ints(WEAK_STEP)))
    out = []
    for pair in dict.fromkeys(pairs):
        rows = t[[p == pair for p in pairs]]
        out += [(pair[0], pair[1], s) for s in summarise(rows)]
    return out


def _ordered(methods) -> list[str]:
    return sorted(methods, key=lambda m: (method_order(m), m))


def training_curve(run: Run, column: str) -> dict[str, list[Point]]:
    """Paper Fig. 5: per method, per main checkpoint in order of step, its best setting by
    `column` over ω, γ and (for ag, ag+sg) the auxiliary checkpoints."""
    cells = cell_summaries(run)
    out: dict[str, list[Point]] = {}
    for method in _ordered({s.setting.method for _, _, s in cells}):
        points = []
        for step in main_steps(run):
            group = [(w, s) for st, w, s in cells if st == step and s.setting.method == method]
            top = best([s for _, s in group], column)
            if top is not None:
                points.append(Point(method, step, next(w for w, s in group if s is top), top))
        if points:
            out[method] = points
    return out


def auxiliary_curve(run: Run, column: str) -> dict[str, list[Point]]:
    """Paper Fig. 7 right: for ag and ag+sg, per auxiliary checkpoint in order of step, the best
    setting by `column` (at the newest main checkpoint when that is swept too); the point's
    summary holds the (γ_strong, γ_weak, ω) that reaches it."""
    mains = main_steps(run)
    step = mains[-1] if mains else None
    cells = [(st, w, s) for st, w, s in cell_summaries(run) if (step is None or st == step) and w is not None]
    out: dict[str, list[Point]] = {}
    for method in _ordered(m for m in AUTOGUIDED if any(s.setting.method == m for _, _, s in cells)):
        points = []
        for w in weak_steps(run):
            top = best([s for _, ws, s in cells if ws == w and s.setting.method == method], column)
            if top is not None:
                points.append(Point(method, step, w, top))
        if points:
            out[method] = points
    return out


def lpips_points(summaries: list[Summary], column: str, lpips: str) -> list[Summary]:
    """Paper Fig. 7 left: per guided method its best setting by `column`, when it recorded
    `lpips` (the unguided dense setting is the conditional prediction itself: distance 0)."""
    out = []
    for method in _ordered({s.setting.method for s in summaries}):
        group = [s for s in summaries if s.setting.method == method and lpips in s.stats
                 and not (is_unguided(method) and s.setting.gamma_strong in (None, 0.0))]
        top = best(group, column) or (group[0] if group else None)
        if top is not None:
            out.append(top)
    return out
