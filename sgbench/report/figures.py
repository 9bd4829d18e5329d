"""Paper-style figures (matplotlib Agg + seaborn): quality heatmaps over (γ_strong, γ_weak)
with one panel per ω (paper Figs. 6/8), cost heatmaps (Fig. A1) and a quality-vs-GFLOPs
Pareto plot with the baselines marked.

Colour convention: brighter is better everywhere (reversed maps for lower-is-better columns).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from sgbench.guidance.vocabulary import METHODS, SEARCHABLE, is_unguided, method_display_name
from sgbench.report.aggregate import Summary, pareto_front, unguided_reference
from sgbench.report.metrics import display_name, higher_is_better
from sgbench.report.tables import RunSummaries

_DPI = 200


def _color(method: str) -> str:
    spec = METHODS.get(method)
    return spec.color if spec else "0.5"


def _marker(method: str) -> str:
    spec = METHODS.get(method)
    return spec.marker if spec else "P"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)  # reports are written on headless machines
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="paper", style="ticks", font_scale=1.0,
                  rc={"axes.spines.top": False, "axes.spines.right": False,
                      "font.family": "DejaVu Sans", "mathtext.fontset": "dejavusans"})
    return plt, sns


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-") or "x"


def _save(fig, path: Path) -> list[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI, bbox_inches="tight", facecolor="white")
    pdf = path.with_suffix(".pdf")
    fig.savefig(pdf, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return [path, pdf]


def _label(column: str) -> str:
    name = display_name(column)
    text, _, sub = name.partition("_")
    name = rf"{text}$_{{\mathrm{{{sub}}}}}$" if sub else name
    return f"{name} {'↑' if higher_is_better(column) else '↓'}"


def _value_fmt(values: np.ndarray) -> str:
    top = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 0
    return ".0f" if top >= 100 else ".1f" if top >= 10 else ".2f"


def _grid(summaries: list[Summary], column: str) -> list[Summary]:
    """Settings that sit on the (γ_strong, γ_weak) plane: constant numeric rates, a value."""
    return [s for s in summaries if s.setting.numeric_gammas and not s.setting.schedule
            and column in s.stats]


def _matrix(pts: list[Summary], column: str, gs: list[float], gw: list[float]) -> np.ndarray:
    acc = np.zeros((len(gs), len(gw)))
    cnt = np.zeros((len(gs), len(gw)))
    for s in pts:
        i, j = gs.index(s.setting.gamma_strong), gw.index(s.setting.gamma_weak)
        acc[i, j] += s.mean(column)
        cnt[i, j] += 1
    with np.errstate(invalid="ignore"):
        return np.where(cnt > 0, acc / np.maximum(cnt, 1), np.nan)


def _clip_range(values: np.ndarray, higher: bool, reference: float | None):
    """Colour limits clipped to highlight the good region (paper Fig. 6): the worse end is
    clipped at the unguided baseline when it lies inside the data, else at the quartile."""
    v = values[np.isfinite(values)]
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        return lo - 0.5, hi + 0.5, None
    if v.size < 6:  # too few cells for clipping to mean anything
        return lo, hi, None
    if higher:
        clip = reference if reference is not None and lo < reference < hi else float(np.quantile(v, 0.25))
        return (clip, hi, clip) if clip > lo else (lo, hi, None)
    clip = reference if reference is not None and lo < reference < hi else float(np.quantile(v, 0.75))
    return (lo, clip, clip) if clip < hi else (lo, hi, None)


def _title_y(fig) -> float:
    """Suptitle a fixed 0.3 in above the axes, whatever the figure height."""
    return 1.0 + 0.3 / fig.get_size_inches()[1]


def _cell_inches(n: int) -> float:
    """Cell size: 0.42 in up to 8 cells a side, then shrinking so a panel stays ~3.4 in."""
    return 0.42 if n <= 8 else max(0.12, 3.4 / n)


def _heat_panel(ax, sns, mat, gs, gw, cmap, vmin, vmax, fmt, cbar_ax, higher, mark_best=True,
                extend="neither"):
    # values in the cells only while they stay legible (paper Fig. A1 uses a 0.05 grid: 20x20)
    dense = max(mat.shape) > 10
    annot = False if dense else np.vectorize(lambda x: "" if not np.isfinite(x) else format(x, fmt))(mat)
    sns.heatmap(mat, ax=ax, cmap=cmap, vmin=vmin, vmax=vmax, annot=annot, fmt="",
                annot_kws={"fontsize": 6.5}, linewidths=0 if dense else 0.6, linecolor="white", square=True,
                cbar=cbar_ax is not None, cbar_ax=cbar_ax, mask=~np.isfinite(mat),
                cbar_kws={"extend": extend} if cbar_ax is not None else None,
                xticklabels=[f"{g:g}" for g in gw], yticklabels=[f"{g:g}" for g in gs])
    ax.invert_yaxis()  # origin lower left: dense (0, 0) in the corner, as in paper Fig. A1
    ax.set_facecolor("#f2f2f2")
    ax.tick_params(length=0, labelsize=6 if dense else 7.5)
    if mark_best and np.isfinite(mat).any():
        flat = np.where(np.isfinite(mat), mat, -np.inf if higher else np.inf)
        i, j = np.unravel_index(np.argmax(flat) if higher else np.argmin(flat), mat.shape)
        from matplotlib.patches import Rectangle

        ax.add_patch(Rectangle((j, i), 1, 1, fill=False, edgecolor="black", lw=1.6))


def quality_heatmap(rs: RunSummaries, method: str, column: str, path: Path) -> list[Path]:
    """One panel per ω over (γ_strong, γ_weak) for one method; [] when nothing to draw."""
    pts = [s for s in _grid(rs.summaries, column) if s.setting.method == method]
    if len(pts) < 2:
        return []
    plt, sns = _plt()
    omegas = sorted({s.setting.omega for s in pts}, key=lambda w: (w is None, w or 0))
    gs = sorted({s.setting.gamma_strong for s in pts})
    gw = sorted({s.setting.gamma_weak for s in pts})
    mats = [_matrix([s for s in pts if s.setting.omega == w], column, gs, gw) for w in omegas]
    higher = higher_is_better(column)
    ref = unguided_reference(rs.summaries)
    ref_v = ref.mean(column) if ref is not None and column in ref.stats else None
    vmin, vmax, clip = _clip_range(np.stack(mats), higher, ref_v)
    fmt = _value_fmt(np.stack(mats))
    ncol = min(len(omegas), 4)
    nrow = math.ceil(len(omegas) / ncol)
    cell = _cell_inches(max(len(gs), len(gw)))
    w = max(2.2, cell * len(gw) + 0.9)
    h = max(2.0, cell * len(gs) + 0.8)
    fig, axes = plt.subplots(nrow, ncol, figsize=(w * ncol + 0.7, h * nrow + 0.5), squeeze=False,
                             sharex=True, sharey=True)
    cbar_ax = fig.add_axes([0.92, 0.18, 0.015, 0.64])
    cmap = "viridis" if higher else "viridis_r"
    extend = "neither" if clip is None else ("min" if higher else "max")
    for k, (w_, mat) in enumerate(zip(omegas, mats)):
        ax = axes[k // ncol][k % ncol]
        _heat_panel(ax, sns, mat, gs, gw, cmap, vmin, vmax, fmt, cbar_ax if k == 0 else None, higher,
                    extend=extend)
        ax.set_title("ω = –" if w_ is None else f"ω = {w_:g}", fontsize=9)
        ax.set_xlabel(r"$\gamma_{\mathrm{weak}}$" if k // ncol == nrow - 1 else "")
        ax.set_ylabel(r"$\gamma_{\mathrm{strong}}$" if k % ncol == 0 else "")
    for k in range(len(omegas), nrow * ncol):
        axes[k // ncol][k % ncol].axis("off")
    cb = axes[0][0].collections[0].colorbar
    label = _label(column)
    if clip is not None:
        kind = "unguided" if ref_v is not None and clip == ref_v else "quartile"
        label += f"  (clipped at {kind} {format(clip, fmt)})"
    if cb is not None:
        cb.set_label(label, fontsize=8)
        cb.outline.set_visible(False)
    fig.suptitle(f"{method_display_name(method)}: {display_name(column)} over "
                 r"($\gamma_{\mathrm{strong}}$, $\gamma_{\mathrm{weak}}$)", fontsize=10,
                 y=_title_y(fig))
    fig.subplots_adjust(left=0.08, right=0.9, wspace=0.12, hspace=0.3)
    return _save(fig, path)


def cost_heatmap(rs: RunSummaries, path: Path) -> list[Path]:
    """Paper Fig. A1: throughput (else GFLOPs) over (γ_strong, γ_weak), one panel per
    sparse method, averaged over ω and seeds (cost does not depend on ω)."""
    column = "images_per_s" if any("images_per_s" in s.stats for s in rs.summaries) else "gflops"
    methods = [m for m in SEARCHABLE
               if len([s for s in _grid(rs.summaries, column) if s.setting.method == m]) >= 2]
    if not methods:
        return []
    plt, sns = _plt()
    panels = []
    for m in methods:
        pts = [s for s in _grid(rs.summaries, column) if s.setting.method == m]
        gs = sorted({s.setting.gamma_strong for s in pts})
        gw = sorted({s.setting.gamma_weak for s in pts})
        panels.append((m, gs, gw, _matrix(pts, column, gs, gw)))
    allv = np.concatenate([p[3].ravel() for p in panels])
    vmin, vmax = float(np.nanmin(allv)), float(np.nanmax(allv))
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    fmt = _value_fmt(allv)
    higher = higher_is_better(column)
    cell = _cell_inches(max(max(len(p[1]), len(p[2])) for p in panels))
    w = max(2.2, cell * max(len(p[2]) for p in panels) + 0.9)
    h = max(2.0, cell * max(len(p[1]) for p in panels) + 0.8)
    fig, axes = plt.subplots(1, len(panels), figsize=(w * len(panels) + 0.7, h + 0.5), squeeze=False)
    cbar_ax = fig.add_axes([0.92, 0.18, 0.015, 0.64])
    for k, (m, gs, gw, mat) in enumerate(panels):
        ax = axes[0][k]
        _heat_panel(ax, sns, mat, gs, gw, "magma" if higher else "magma_r", vmin, vmax, fmt,
                    cbar_ax if k == 0 else None, higher, mark_best=False)
        ax.set_title(method_display_name(m), fontsize=9)
        ax.set_xlabel(r"$\gamma_{\mathrm{weak}}$")
        ax.set_ylabel(r"$\gamma_{\mathrm{strong}}$" if k == 0 else "")
    cb = axes[0][0].collections[0].colorbar
    if cb is not None:
        cb.set_label(_label(column), fontsize=8)
        cb.outline.set_visible(False)
    what = "Throughput (images/s)" if column == "images_per_s" else "GFLOPs per image"
    fig.suptitle(f"{what} over " r"($\gamma_{\mathrm{strong}}$, $\gamma_{\mathrm{weak}}$)",
                 fontsize=10, y=_title_y(fig))
    fig.subplots_adjust(left=0.08, right=0.9, wspace=0.25)
    return _save(fig, path)


def pareto_plot(all_rs: list[RunSummaries], column: str, path: Path) -> list[Path]:
    """Quality vs GFLOPs: every setting, the Pareto front per run, baselines labelled.
    One run: colour by method; several runs: colour by run, overlaid."""
    series = [(rs, [s for s in rs.summaries if "gflops" in s.stats and column in s.stats])
              for rs in all_rs]
    series = [(rs, pts) for rs, pts in series if pts]
    if not series or sum(len(p) for _, p in series) < 2:
        return []
    plt, sns = _plt()
    higher = higher_is_better(column)
    multi = len(series) > 1
    run_colors = sns.color_palette("colorblind", len(series))
    fig, ax = plt.subplots(figsize=(5.4, 3.7))
    handles, labelled = {}, set()
    for r, (rs, pts) in enumerate(series):
        xy = [(s.mean("gflops"), s.mean(column)) for s in pts]
        front = pareto_front(xy, higher)
        ax.plot([xy[i][0] for i in front], [xy[i][1] for i in front], "--",
                color=run_colors[r] if multi else "0.35", lw=1.0, zorder=2)
        if multi:
            handles[("run", r)] = ax.scatter([], [], marker="o", s=16, color=run_colors[r], label=rs.run.name)
        for s, (x, y) in zip(pts, xy):
            m = s.setting.method
            color = run_colors[r] if multi else _color(m)
            err = s.stats[column].std if s.stats[column].n > 1 else None
            if s.role == "baseline":
                mk = _marker(m)
                ax.errorbar(x, y, yerr=err, fmt=mk, ms=7, color=color, mec="black", mew=0.7,
                            ecolor=color, elinewidth=0.8, capsize=2, zorder=4)
                omega = "" if s.setting.omega is None or is_unguided(m) else f" ω={s.setting.omega:g}"
                text = f"{method_display_name(m)}{omega}"
                spot = (text, round(x), round(y, 1))  # (near-)identical baselines of several runs: one label
                if spot not in labelled:
                    labelled.add(spot)
                    ax.annotate(text, (x, y), xytext=(5, 4), textcoords="offset points", fontsize=7,
                                color="0.15", zorder=5)
                if ("base", m) not in handles:
                    handles[("base", m)] = ax.scatter(
                        [], [], marker=mk, s=36, color="0.6" if multi else color, edgecolors="black",
                        linewidths=0.7, label=f"{method_display_name(m)} (baseline)")
            else:
                ax.errorbar(x, y, yerr=err, fmt="o", ms=3.8, color=color, alpha=0.75, mew=0,
                            ecolor=color, elinewidth=0.6, capsize=0, zorder=3)
                if not multi and ("search", m) not in handles:
                    handles[("search", m)] = ax.scatter([], [], marker="o", s=14, color=color,
                                                        label=method_display_name(m))
    front_handle = ax.plot([], [], "--", color="0.35", lw=1.0, label="Pareto front")[0]
    ax.set_xlabel("GFLOPs per image ↓")
    ax.set_ylabel(_label(column))
    ax.grid(True, lw=0.4, alpha=0.5)
    order = {"run": 0, "search": 1, "base": 2}
    ordered = [h for k, h in sorted(handles.items(), key=lambda kv: order[kv[0][0]])]
    ax.legend(handles=ordered + [front_handle], fontsize=7, frameon=False,
              loc="best", ncol=1 if len(handles) < 7 else 2)
    ax.set_title(f"{display_name(column)} vs. compute" + (" (runs overlaid)" if multi else ""), fontsize=10)
    sns.despine(ax=ax)
    return _save(fig, path)


def build_figures(all_rs: list[RunSummaries], fig_dir: Path) -> list[tuple[str, Path]]:
    """Every figure of a report as (caption, png path); PDFs are written next to the PNGs."""
    out: list[tuple[str, Path]] = []
    multi = len(all_rs) > 1
    for rs in all_rs:
        if rs.primary is None:
            continue
        tag = f"_{slug(rs.run.name)}" if multi else ""
        for m in SEARCHABLE:
            p = fig_dir / f"heatmap_{rs.primary}_{slug(m.replace('+', '-'))}{tag}.png"
            if quality_heatmap(rs, m, rs.primary, p):
                out.append((f"{rs.run.name}: {display_name(rs.primary)} of "
                            f"{method_display_name(m)} over (γ_strong, γ_weak), one panel per ω; "
                            "colour range clipped, best cell outlined (cf. paper Figs. 6, 8).", p))
        p = fig_dir / f"cost_heatmap{tag}.png"
        if cost_heatmap(rs, p):
            out.append((f"{rs.run.name}: inference cost over (γ_strong, γ_weak), averaged over ω "
                        "(cf. paper Fig. A1).", p))
    primaries = [rs.primary for rs in all_rs if rs.primary]
    if primaries:
        column = primaries[0]
        p = fig_dir / f"pareto_{column}.png"
        if pareto_plot([rs for rs in all_rs if rs.primary == column], column, p):
            out.append((f"{display_name(column)} vs. GFLOPs per image for every setting; baselines "
                        "labelled, dashed line: Pareto front"
                        + (" per run." if multi else "."), p))
    return out
