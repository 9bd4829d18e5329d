"""Seeds -> one summary per setting (mean, std, standard error); failed trials as records.
Pure functions."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from sgbench.guidance.vocabulary import is_unguided, method_display_name
from sgbench.report.metrics import COST_COLUMNS, GFLOPS, SE_SUFFIX, higher_is_better, is_metric
from sgbench.report.significance import seed_mean_se


@dataclass(frozen=True)
class Setting:
    """A trial's settings without its seed: the key several seeds share and `check` matches on."""

    method: str
    gamma_strong: object  # float, or a schedule string
    gamma_weak: object
    omega: float | None
    schedule: str
    n_samples: object

    @property
    def method_name(self) -> str:
        return method_display_name(self.method)

    @property
    def numeric_gammas(self) -> bool:
        return isinstance(self.gamma_strong, float) and isinstance(self.gamma_weak, float)

    def sparsity(self) -> str:
        """'0.5 / 0.9' (γ_strong / γ_weak), '–' for a dense setting."""
        def fmt(g):
            return "–" if g is None else (f"{g:g}" if isinstance(g, float) else str(g))

        if self.gamma_strong in (None, 0.0) and self.gamma_weak in (None, 0.0):
            text = "–"
        else:
            text = f"{fmt(self.gamma_strong)} / {fmt(self.gamma_weak)}"
        return f"{text} ({self.schedule})" if self.schedule else text

    def describe(self) -> str:
        """One line for logs: method=sg γs=0.5 γw=0.9 ω=3 schedule=- n=1000."""
        def g(v):
            return "-" if v is None else f"{v:g}" if isinstance(v, float) else str(v)

        return (f"method={self.method} γs={g(self.gamma_strong)} γw={g(self.gamma_weak)} "
                f"ω={g(self.omega)} schedule={self.schedule or '-'} n={g(self.n_samples)}")

    def sort_key(self):
        def k(v):
            return (0, v, "") if isinstance(v, (int, float)) else (1, 0.0, "" if v is None else str(v))

        return (self.method, k(self.omega), k(self.gamma_strong), k(self.gamma_weak),
                self.schedule, k(self.n_samples))


@dataclass(frozen=True)
class Stat:
    mean: float
    std: float  # over seeds (ddof=1); nan with one seed
    n: int
    se: float  # standard error of the mean over seeds and samples (report.significance); nan if unknown

    def __bool__(self) -> bool:
        return self.n > 0 and not math.isnan(self.mean)


@dataclass
class Summary:
    setting: Setting
    role: str
    seeds: tuple
    trial_ids: tuple
    stats: dict = field(default_factory=dict)  # column -> Stat
    per_seed: dict = field(default_factory=dict)  # column -> {seed: value}
    status: str = "complete"  # or "pruned": measured at setting.n_samples (its fidelity) only

    def mean(self, column: str) -> float:
        s = self.stats.get(column)
        return s.mean if s else math.nan

    def se(self, column: str) -> float:
        s = self.stats.get(column)
        return s.se if s else math.nan

    @property
    def pruned(self) -> bool:
        return self.status == "pruned"


@dataclass(frozen=True)
class FailedTrial:
    """A failed trial of trials.csv: its setting, first error line and traceback file (if kept)."""

    trial_id: str
    setting: Setting
    role: str
    error: str
    traceback: str  # "errors/<trial_id>.txt" relative to the run directory, or ""


def setting_of(row) -> Setting:
    return Setting(row["method"], row["gamma_strong"], row["gamma_weak"], row["omega"],
                   row["schedule"], row["n_samples"])


def stat_of(values, ses=None) -> Stat:
    """Mean, std and standard error of per-seed values; `ses` are their `<metric>_se` values."""
    return Stat(*seed_mean_se(list(values), ses))


def summarise(trials: pd.DataFrame, status: str = "complete") -> list[Summary]:
    """One Summary per setting over the rows of one status (complete, or pruned: then the
    setting's n_samples is the fidelity it reached), in order of first appearance."""
    done = trials[trials["status"] == status]
    columns = [c for c in done.columns if is_metric(c) or c in COST_COLUMNS]
    groups: dict[Setting, list[int]] = {}
    for i, row in done.iterrows():
        groups.setdefault(setting_of(row), []).append(i)
    out = []
    for setting, idx in groups.items():
        rows = done.loc[idx]
        summary = Summary(setting, "baseline" if (rows["role"] == "baseline").any() else "search",
                          tuple(rows["seed"]), tuple(rows["trial_id"]), status=status)
        for col in columns:
            ses = list(rows[col + SE_SUFFIX]) if col + SE_SUFFIX in rows.columns else None
            stat = stat_of(list(rows[col]), ses)
            if stat:
                summary.stats[col] = stat
                summary.per_seed[col] = {s: float(v) for s, v in zip(rows["seed"], rows[col])
                                         if not math.isnan(v)}
        out.append(summary)
    return out


def failed_trials(trials: pd.DataFrame, run_dir=None) -> list[FailedTrial]:
    """One record per failed trial id (a failed trial has one row; several seeds share it)."""
    from pathlib import Path

    bad = trials[trials["status"] == "failed"]
    out: dict[str, FailedTrial] = {}
    for _, row in bad.iterrows():
        tid = row["trial_id"]
        if tid in out:
            continue
        tb = f"errors/{tid}.txt" if run_dir is not None and (Path(run_dir) / "errors" / f"{tid}.txt").is_file() else ""
        out[tid] = FailedTrial(tid, setting_of(row), row["role"], str(row.get("error", "") or ""), tb)
    return list(out.values())


def better(column: str, a: float, b: float) -> bool:
    """True when a is strictly better than b for this column."""
    if math.isnan(a):
        return False
    if math.isnan(b):
        return True
    return a > b if higher_is_better(column) else a < b


def best(summaries: list[Summary], column: str) -> Summary | None:
    pick = None
    for s in summaries:
        if column in s.stats and (pick is None or better(column, s.mean(column), pick.mean(column))):
            pick = s
    return pick


def unguided_reference(summaries: list[Summary]) -> Summary | None:
    """The unguided setting ΔGFLOPs is measured against: the unguided method, dense if present."""
    nones = [s for s in summaries if is_unguided(s.setting.method) and GFLOPS in s.stats]
    dense = [s for s in nones if s.setting.gamma_strong in (None, 0.0)]
    pool = dense or nones
    if not pool:
        return None
    return max(pool, key=lambda s: s.mean(GFLOPS))


def pareto_front(points: list[tuple[float, float]], higher: bool) -> list[int]:
    """Indices of non-dominated (cost, quality) points, sorted by cost (lower cost better)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1] if higher else points[i][1]))
    front, best_q = [], None
    for i in order:
        q = points[i][1]
        if math.isnan(q) or math.isnan(points[i][0]):
            continue
        if best_q is None or (q > best_q if higher else q < best_q):
            front.append(i)
            best_q = q
    return front
