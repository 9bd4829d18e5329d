"""The checkpoint-sweep part of a report: paper Fig. 5 (quality over training iterations, each
method at its best setting), Fig. 7 right (AG and AG+SG: best quality per auxiliary checkpoint,
with the γ that reaches it), Fig. 7 left (LPIPS to the conditional prediction per method) and
the sweep table. `SweepReport.of(runs)` is the one hook `report.build` calls: it hands the
ordinary tables and figures each sweep's newest checkpoint view and adds these parts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from sgbench.guidance.vocabulary import method_display_name
from sgbench.metrics.registry import LPIPS_COND
from sgbench.report.figures import _color, _label, _marker, _plt, _save, slug
from sgbench.report.metrics import display_name, number_format, primary_metric
from sgbench.report.runs import Run
from sgbench.report.sweep import (STEP, Point, auxiliary_curve, is_sweep, lpips_points, main_steps, newest_view,
                                  training_curve)
from sgbench.report.tables import Cell, RunSummaries, Table, header_cell


def _fmt_g(v) -> str:
    return "–" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))


def _setting_text(p: Point) -> str:
    s = p.summary.setting
    parts = []
    if s.gamma_strong not in (None, 0.0) or s.gamma_weak not in (None, 0.0):
        parts.append(f"γ=({_fmt_g(s.gamma_strong)}, {_fmt_g(s.gamma_weak)})")
    if s.omega is not None:
        parts.append(f"ω={s.omega:g}")
    return " ".join(parts)


def _iterations(v: int) -> str:
    """50000 -> '50k', 2000000 -> '2M' (tick labels)."""
    for div, unit in ((1_000_000, "M"), (1000, "k")):
        if v >= div and v % (div // 10) == 0:
            return f"{v / div:g}{unit}"
    return str(v)


def _errorbar(ax, xs, ys, ses, method: str, label: str) -> None:
    yerr = [0.0 if math.isnan(e) else e for e in ses]
    ax.errorbar(xs, ys, yerr=yerr if any(yerr) else None, color=_color(method), marker=_marker(method),
                markersize=5, linewidth=1.5, capsize=2.5, label=label)


def _curve_plot(curves: dict[str, list[Point]], column: str, x, xlabel: str, title: str, path: Path,
                annotate: bool = False) -> list[Path]:
    """One line per method over checkpoints (`x(point)`), error bars = standard errors."""
    if not curves or max(len(p) for p in curves.values()) < 2:
        return []
    plt, sns = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    for method, pts in curves.items():
        xs, ys = [x(p) for p in pts], [p.value(column) for p in pts]
        _errorbar(ax, xs, ys, [p.se(column) for p in pts], method, method_display_name(method))
        for xv, yv, p in zip(xs, ys, pts) if annotate else ():
            ax.annotate(_setting_text(p), (xv, yv), textcoords="offset points", xytext=(4, 4), fontsize=6,
                        color=_color(method))
    steps = sorted({x(p) for pts in curves.values() for p in pts})
    if steps[0] > 0 and steps[-1] / steps[0] >= 8:  # checkpoints spread over orders of magnitude
        ax.set_xscale("log")
        ax.minorticks_off()
    ax.set_xticks(steps, [_iterations(v) for v in steps], fontsize=7)
    values = [p.value(column) for pts in curves.values() for p in pts if p.value(column) > 0]
    if values and max(values) / min(values) >= 10:  # early checkpoints far off: keep the late ones readable
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(_label(column))
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(title, fontsize=9)
    sns.despine(ax=ax)
    return _save(fig, path)


def training_plot(run: Run, column: str, path: Path) -> list[Path]:
    """Paper Fig. 5 left: `column` over the main network's training iterations, per method."""
    return _curve_plot(training_curve(run, column), column, lambda p: p.step, "training iteration",
                       f"{display_name(column)} over training, each method at its best setting", path)


def auxiliary_plot(run: Run, column: str, path: Path) -> list[Path]:
    """Paper Fig. 7 right: best `column` per auxiliary checkpoint for AG and AG+SG, each point
    labelled with the (γ_strong, γ_weak) and ω that reach it."""
    return _curve_plot(auxiliary_curve(run, column), column, lambda p: p.weak_step,
                       "auxiliary checkpoint (training iteration)",
                       f"Best {display_name(column)} per auxiliary checkpoint", path, annotate=True)


def lpips_plot(rs: RunSummaries, path: Path) -> list[Path]:
    """Paper Fig. 7 left: LPIPS between the guided and the conditional prediction, per method at
    its best setting (± its standard error)."""
    key = LPIPS_COND.key
    pts = lpips_points(rs.summaries, rs.primary or key, key)
    if not pts:
        return []
    plt, sns = _plt()
    fig, ax = plt.subplots(figsize=(max(2.6, 0.8 * len(pts) + 1.2), 3.0))
    names = [s.setting.method_name for s in pts]
    vals = [s.mean(key) for s in pts]
    ses = [0.0 if math.isnan(s.stats[key].se) else s.stats[key].se for s in pts]
    bars = ax.bar(range(len(pts)), vals, yerr=ses if any(ses) else None, capsize=3,
                  color=[_color(s.setting.method) for s in pts])
    ax.bar_label(bars, labels=[format(v, number_format(key, v)) for v in vals], fontsize=7, padding=2)
    ax.set_ylim(bottom=0)
    ax.set_xticks(range(len(pts)), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(_label(key))
    ax.set_title("LPIPS to the conditional prediction", fontsize=9)
    sns.despine(ax=ax)
    return _save(fig, path)


def _status_text(run: Run, step: int) -> str:
    """'12' or '12 (2 failed, 1 pruned)': the rows of one main checkpoint, by status."""
    status = [st for v, st in zip(run.trials[STEP], run.trials["status"]) if v == step]
    bad = [f"{status.count(k)} {k}" for k in ("failed", "pruned") if k in status]
    return f"{len(status)}" + (f" ({', '.join(bad)})" if bad else "")


def sweep_table(run: Run, column: str, tag: str = "") -> Table | None:
    """Per main checkpoint (rows) the best `column` of each method (columns), with its setting."""
    curves = training_curve(run, column)
    steps = main_steps(run)
    if not curves or not steps:
        return None
    methods = list(curves)
    header = [Cell("Iteration")] + [Cell(method_display_name(m)) for m in methods] + [Cell("Rows")]
    table = Table(f"sweep{tag}", f"Checkpoint sweep: best {display_name(column)} per method"
                  + (f" ({run.name})" if tag else ""), "", header)
    by = {m: {p.step: p for p in pts} for m, pts in curves.items()}
    for step in steps:
        row = [Cell(str(step), numeric=True)]
        for m in methods:
            p = by[m].get(step)
            if p is None:
                row.append(Cell("–"))
                continue
            stat = p.summary.stats[column]
            text = format(stat.mean, number_format(column, stat.mean))
            if not math.isnan(stat.se):
                text += f" ± {format(stat.se, number_format(column, stat.se))}"
            extra = _setting_text(p) + (f", aux. {p.weak_step}" if p.weak_step is not None else "")
            row.append(Cell(f"{text} ({extra})" if extra else text, numeric=True))
        row.append(Cell(_status_text(run, step), numeric=True))
        table.rows.append(row)
    table.caption = (f"Each method at its best setting (ω, γ{', auxiliary checkpoint' if any(p.weak_step is not None for pts in curves.values() for p in pts) else ''}) "
                     f"per training iteration of the main network, by {display_name(column)}; ± its standard error "
                     "(paper Fig. 5). Rows: trials.csv rows of the checkpoint (one per trial and seed), "
                     "with those not complete. The other tables and heatmaps show the newest checkpoint.")
    return table


@dataclass
class SweepReport:
    """The sweep part of a report of `runs` (nothing when no run is a sweep)."""

    runs: list[Run]  # as loaded: every checkpoint
    views: list[Run] = field(default_factory=list)  # what the ordinary tables and figures read

    @classmethod
    def of(cls, runs: list[Run]) -> "SweepReport":
        return cls(list(runs), [newest_view(r) for r in runs])

    def _column(self, run: Run):
        return primary_metric(run.metrics) if run.problem is None or not run.complete.empty else None

    def tables(self) -> list[Table]:
        multi = len(self.runs) > 1
        out = []
        for r in self.runs:
            column = self._column(r)
            if column and is_sweep(r):
                t = sweep_table(r, column, f"_{slug(r.name)}" if multi else "")
                if t is not None:
                    out.append(t)
        return out

    def figures(self, all_rs: list[RunSummaries], fig_dir: Path) -> list[tuple[str, Path]]:
        multi = len(self.runs) > 1
        out: list[tuple[str, Path]] = []
        for r, rs in zip(self.runs, all_rs):
            tag = f"_{slug(r.name)}" if multi else ""
            column = self._column(r)
            if column and is_sweep(r):
                p = fig_dir / f"sweep_training_{column}{tag}.png"
                if training_plot(r, column, p):
                    out.append((f"{r.name}: {display_name(column)} over training iterations, each method at its "
                                "best setting (ω, γ) per checkpoint, ± standard error (cf. paper Fig. 5 left).", p))
                p = fig_dir / f"sweep_auxiliary_{column}{tag}.png"
                if auxiliary_plot(r, column, p):
                    out.append((f"{r.name}: best {display_name(column)} of AG and AG+SG per auxiliary checkpoint, "
                                "labelled with the (γ_strong, γ_weak) and ω that reach it (cf. paper Fig. 7 right).", p))
            p = fig_dir / f"{LPIPS_COND.key}{tag}.png"
            if lpips_plot(rs, p):
                which = " (newest checkpoint)" if is_sweep(r) else ""
                out.append((f"{r.name}{which}: {header_cell(LPIPS_COND.key).text} between each method's guided "
                            "samples and the conditional prediction from the same noise and label, at its best "
                            "setting, ± standard error (cf. paper Fig. 7 left).", p))
        return out
