"""Paper-style figures (matplotlib Agg + seaborn): quality heatmaps over (γ_strong, γ_weak)
with one panel per ω (paper Figs. 6/8), cost heatmaps (Fig. A1) and a quality-vs-GFLOPs
Pareto plot with the baselines and the front's settings labelled.

Colour convention: brighter is better everywhere (reversed maps for lower-is-better columns).
Sizes: a figure is laid out in inches for a page PAGE_WIDTH_PX CSS pixels wide (the HTML page's
content width at 96 CSS px per inch, where report.html shows each PNG at its size in inches), so
no text is drawn smaller than MIN_TEXT_PX there; heatmap cells and panels are sized by their
content (`heat_layout`). The cell kinds and the best-cell rule are `sgbench.report.heatcells`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sgbench.guidance.vocabulary import METHODS, SEARCHABLE, is_unguided, method_display_name
from sgbench.report.aggregate import Summary, best, pareto_front, unguided_reference
from sgbench.report.heatcells import Panel, cost_panel, panels
from sgbench.report.metrics import GFLOPS, IMAGES_PER_S, display_name, higher_is_better
from sgbench.report.tables import NOISE_K, RunSummaries

_DPI = 200  # PNG resolution; report.html shows a PNG at its size in inches (96 CSS px each)
CSS_PX_PER_IN = 96
PAGE_WIDTH_PX = 1180  # report.html's content width (html_page._CSS), a 1400 px window
MIN_TEXT_PX = 9  # smallest text on the page (heatmap cell values included)
_PAGE_IN = PAGE_WIDTH_PX / CSS_PX_PER_IN


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


def _rgb(c):
    from matplotlib.colors import to_rgb

    return to_rgb(c)


def _ink(face) -> str:
    """Black or white text, whichever reads on `face` (relative luminance)."""
    r, g, b = _rgb(face)[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def _lighter(face, amount: float = 0.55):
    r, g, b = _rgb(face)[:3]
    return (r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount)


# ---------------------------------------------------------------- heatmap layout
@dataclass(frozen=True)
class HeatLayout:
    """Heatmap geometry in inches: cells, panels per row, figure size and font sizes."""

    cell: float  # a cell's side
    ncol: int  # panels per row
    nrow: int
    panel_w: float
    panel_h: float
    fig_w: float
    fig_h: float
    annotate: bool  # cell values printed
    value_pt: float  # font size of a cell value (points)
    small_pt: float  # font size of ticks, fidelity lines, legend

    def page_px(self, pt: float) -> float:
        """How tall text of `pt` points shows in report.html (scaled down if wider than the page)."""
        return pt * CSS_PX_PER_IN / 72 * min(1.0, _PAGE_IN / self.fig_w)


_LEFT, _GAP, _TOP, _BOTTOM, _CBAR = 0.62, 0.22, 0.42, 0.55, 1.05  # margins (in): labels, colour bar
_LEGEND_H = 0.42


def heat_layout(n_rows: int, n_cols: int, n_panels: int) -> HeatLayout:
    """Cells of 0.52 in (0.75 in for lattices of a few cells, smaller beyond a 20-cell side so
    a panel still fits the page); values printed while a cell is ≥ 0.42 in; as many panels per
    row as fit the page (at most 4), rows balanced."""
    n = max(n_rows, n_cols, 1)
    cell = min(max(0.52, 3.0 / n), 0.75, (_PAGE_IN - _LEFT - _CBAR - 0.25) / n)
    panel_w = cell * n_cols + _LEFT + _GAP
    panel_h = cell * n_rows + _TOP + _BOTTOM
    fit = max(1, int((_PAGE_IN - _CBAR) // panel_w))
    ncol = max(1, min(n_panels, fit, 4))
    nrow = math.ceil(n_panels / ncol)
    ncol = math.ceil(n_panels / nrow)
    fig_w = ncol * panel_w + _CBAR
    fig_h = nrow * panel_h + 0.45 + _LEGEND_H
    value_pt = 9.0 if cell >= 0.7 else 8.0
    return HeatLayout(cell, ncol, nrow, panel_w, panel_h, fig_w, fig_h, cell >= 0.42, value_pt, 7.5)


_FACES = {"invalid": "#d4d4d4", "missing": "#ffffff", "failed": "#f8dede"}
_LEGEND = {
    "pruned": "pruned: value at its fidelity (@N)",
    "failed": "failed (error: Failed trials)",
    "invalid": "invalid: γ_strong ≥ γ_weak",
    "missing": "not measured",
}


def _draw_panel(ax, p: Panel, cmap, norm, fmt: str, lay: HeatLayout) -> dict:
    """Cells of one panel, their texts and outlines; returns {kind: a face colour drawn}."""
    from matplotlib.patches import Rectangle

    texts = p.texts(fmt)
    kinds: dict = {}
    for (i, j), kind in np.ndenumerate(p.kind):
        v = p.value[i, j]
        if kind in ("complete", "pruned"):
            face = cmap(norm(v))
            face = _lighter(face) if kind == "pruned" else face
        else:
            face = _FACES[kind]
        kinds.setdefault(kind, face)
        ax.add_patch(Rectangle((j, i), 1, 1, facecolor=face, edgecolor="white", lw=1.0, zorder=1))
        if kind == "pruned":  # hatched: measured, but only at a lower fidelity
            ax.add_patch(Rectangle((j, i), 1, 1, fill=False, hatch="////", edgecolor="0.55", lw=0, zorder=2))
        if kind == "missing":
            ax.add_patch(Rectangle((j + 0.04, i + 0.04), 0.92, 0.92, fill=False, edgecolor="#e0e0e0", lw=0.6, zorder=2))
        if lay.annotate and texts[i, j]:
            size = lay.value_pt if kind == "complete" else lay.small_pt
            ink = "#a02020" if kind == "failed" else _ink(face)
            ax.text(j + 0.5, i + 0.5, texts[i, j], ha="center", va="center", fontsize=size, color=ink,
                    linespacing=1.0, zorder=4,
                    bbox=dict(boxstyle="square,pad=0.05", fc=face, ec="none", alpha=0.85) if kind == "pruned" else None)
    for i, j in p.outline.cells:  # black on a white halo: visible on dark and bright cells alike
        dashed = p.outline.rule == "tied"
        lw = 1.4 if dashed else 2.2
        ax.add_patch(Rectangle((j + 0.06, i + 0.06), 0.88, 0.88, fill=False, edgecolor="white", lw=lw + 1.6, zorder=5))
        ax.add_patch(Rectangle((j + 0.06, i + 0.06), 0.88, 0.88, fill=False, edgecolor="black",
                               lw=lw, ls=(0, (2.5, 1.5)) if dashed else "-", zorder=6))
    ax.set_xlim(0, len(p.gw))
    ax.set_ylim(0, len(p.gs))  # origin lower left: dense (0, 0) in the corner, as in paper Fig. A1
    ax.set_aspect("equal")
    step = max(1, math.ceil(len(p.gw) / 12)) if not lay.annotate else 1
    ax.set_xticks([j + 0.5 for j in range(0, len(p.gw), step)], [f"{g:g}" for g in p.gw[::step]])
    ax.set_yticks([i + 0.5 for i in range(0, len(p.gs), step)], [f"{g:g}" for g in p.gs[::step]])
    ax.tick_params(length=0, labelsize=lay.small_pt)
    for side in ax.spines.values():
        side.set_visible(False)
    return kinds


def _heat_figure(plt, items: list[tuple[str, Panel]], lay: HeatLayout, cmap, norm, fmt: str,
                 cbar_label: str, extend: str, title: str, outlines: bool):
    """Panels placed in inches (so sizes are exact), a colour bar and a legend of the kinds."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.patches import Patch, Rectangle

    fig = plt.figure(figsize=(lay.fig_w, lay.fig_h))
    W, H = lay.fig_w, lay.fig_h
    kinds: dict = {}
    top = H - 0.45
    for k, (name, p) in enumerate(items):
        r, c = divmod(k, lay.ncol)
        x0 = c * lay.panel_w + _LEFT
        y0 = top - (r + 1) * lay.panel_h + _BOTTOM
        ax = fig.add_axes([x0 / W, y0 / H, lay.cell * len(p.gw) / W, lay.cell * len(p.gs) / H])
        for kind, face in _draw_panel(ax, p, cmap, norm, fmt, lay).items():
            kinds.setdefault(kind, face)
        ax.set_title(name, fontsize=9.5, pad=4)
        ax.set_xlabel(r"$\gamma_{\mathrm{weak}}$", fontsize=9, labelpad=2)
        ax.set_ylabel(r"$\gamma_{\mathrm{strong}}$" if c == 0 else "", fontsize=9, labelpad=2)
    cax = fig.add_axes([(W - _CBAR + 0.2) / W, (top - min(lay.nrow * lay.panel_h, 3.2) + _BOTTOM) / H,
                        0.14 / W, (min(lay.nrow * lay.panel_h, 3.2) - _BOTTOM - 0.1) / H])
    cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax, extend=extend)
    cb.set_label(cbar_label, fontsize=8.5)
    cb.ax.tick_params(labelsize=lay.small_pt)
    cb.outline.set_visible(False)
    handles = []
    if "pruned" in kinds:
        handles.append(Patch(facecolor=kinds["pruned"], hatch="////", edgecolor="0.55", lw=0, label=_LEGEND["pruned"]))
    for kind in ("failed", "invalid", "missing"):
        if kind in kinds:
            handles.append(Patch(facecolor=_FACES[kind], edgecolor="0.7", lw=0.5, label=_LEGEND[kind]))
    rules = {p.outline.rule for _, p in items}
    if outlines and "clear" in rules:
        handles.append(Rectangle((0, 0), 1, 1, fill=False, edgecolor="black", lw=2.2,
                                 label=f"best, beyond noise ({NOISE_K:g} SE)"))
    if outlines and "tied" in rules:
        handles.append(Rectangle((0, 0), 1, 1, fill=False, edgecolor="black", lw=1.3, ls=(0, (2.5, 1.5)),
                                 label="within noise of the best"))
    if handles:
        fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(_LEFT / W, 0.02), ncol=min(len(handles), 3),
                   fontsize=lay.small_pt, frameon=False, handlelength=1.6, columnspacing=1.4)
    fig.suptitle(title, fontsize=10.5, x=_LEFT / W, y=(H - 0.12) / H, ha="left", va="top")
    return fig


def quality_heatmap(rs: RunSummaries, method: str, column: str, path: Path,
                    items: list[Panel] | None = None) -> list[Path]:
    """One panel per ω over (γ_strong, γ_weak) for one method; [] when nothing to draw."""
    items = panels(rs, method, column) if items is None else items
    if not items:
        return []
    plt, _ = _plt()
    from matplotlib.colors import Normalize

    done = np.array([v for p in items for v, k in zip(p.value.ravel(), p.kind.ravel()) if k == "complete"])
    every = np.array([v for p in items for v in p.value.ravel()])
    basis = done if np.isfinite(done).any() else every  # colours follow the complete cells
    higher = higher_is_better(column)
    ref = unguided_reference(rs.summaries)
    ref_v = ref.mean(column) if ref is not None and column in ref.stats else None
    vmin, vmax, clip = _clip_range(basis, higher, ref_v)
    fmt = _value_fmt(every)
    lay = heat_layout(len(items[0].gs), len(items[0].gw), len(items))
    label = _label(column)
    if clip is not None:
        kind = "unguided" if ref_v is not None and clip == ref_v else "quartile"
        label += f"\n(clipped at {kind} {format(clip, fmt)})"
    extend = "neither" if clip is None else ("min" if higher else "max")
    import matplotlib

    cmap = matplotlib.colormaps["viridis" if higher else "viridis_r"]
    title = (f"{method_display_name(method)}: {display_name(column)} over "
             r"($\gamma_{\mathrm{strong}}$, $\gamma_{\mathrm{weak}}$)")
    named = [("ω = –" if p.omega is None else f"ω = {p.omega:g}", p) for p in items]
    fig = _heat_figure(plt, named, lay, cmap, Normalize(vmin, vmax, clip=True), fmt, label, extend, title, True)
    return _save(fig, path)


def heatmap_caption(run_name: str, method: str, column: str, items: list[Panel]) -> str:
    """What the heatmap shows and which outline rule its panels used."""
    kinds = {k for p in items for k in p.kind.ravel()}
    rules = {p.outline.rule for p in items}
    text = (f"{run_name}: {display_name(column)} of {method_display_name(method)} over (γ_strong, γ_weak), "
            "one panel per ω, seeds averaged; colour range clipped (cf. paper Figs. 6, 8).")
    if "pruned" in kinds:
        text += (" Hatched, lighter cells were pruned: their value is at the fidelity printed below it "
                 "(@N samples), not comparable with full cells.")
    if "failed" in kinds:
        text += " 'failed': every trial of the setting failed (error lines under Failed trials)."
    if "invalid" in kinds:
        text += " Grey: invalid (γ_strong ≥ γ_weak)."
    if rules & {"clear", "tied"}:
        text += (f" Outline, per panel: solid = the best cell, better than every other complete cell of the "
                 f"panel by more than {NOISE_K:g} standard errors of the difference; dashed = the cells within "
                 "noise of the best, when there is no such single best.")
    if "unknown" in rules:
        text += " Panels without standard errors (no bootstrap, one seed) outline nothing."
    if rules <= {"none", "single"}:
        text += " No panel has two complete cells to compare: no best cell is outlined."
    return text


def cost_heatmap(rs: RunSummaries, path: Path) -> list[Path]:
    """Paper Fig. A1: throughput (else GFLOPs) over (γ_strong, γ_weak), one panel per
    sparse method, averaged over ω and seeds (cost does not depend on ω)."""
    every = rs.summaries + rs.pruned
    column = IMAGES_PER_S if any(IMAGES_PER_S in s.stats for s in every) else GFLOPS
    items = [(method_display_name(m), p) for m in SEARCHABLE if (p := cost_panel(rs, m, column)) is not None]
    if not items:
        return []
    plt, _ = _plt()
    import matplotlib
    from matplotlib.colors import Normalize

    allv = np.concatenate([p.value.ravel() for _, p in items])
    vmin, vmax = float(np.nanmin(allv)), float(np.nanmax(allv))
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    higher = higher_is_better(column)
    n_rows = max(len(p.gs) for _, p in items)
    n_cols = max(len(p.gw) for _, p in items)
    lay = heat_layout(n_rows, n_cols, len(items))
    what = "Throughput (images/s)" if column == IMAGES_PER_S else "GFLOPs per image"
    fig = _heat_figure(plt, items, lay, matplotlib.colormaps["magma" if higher else "magma_r"],
                       Normalize(vmin, vmax), _value_fmt(allv), _label(column), "neither",
                       f"{what} over " r"($\gamma_{\mathrm{strong}}$, $\gamma_{\mathrm{weak}}$)", False)
    return _save(fig, path)


# ---------------------------------------------------------------- Pareto plot
def setting_label(s: Summary, with_method: bool) -> str:
    """'SG 0.5/0.9 ω=6' (a front point's setting); baselines by their method and ω."""
    st = s.setting
    omega = "" if st.omega is None or is_unguided(st.method) else f" ω={st.omega:g}"
    if s.role == "baseline" or not (st.gamma_strong or st.gamma_weak):
        return f"{st.method_name}{omega}"
    if st.schedule:
        gam = st.schedule
    else:
        gam = "/".join(f"{g:g}" if isinstance(g, float) else str(g) for g in (st.gamma_strong, st.gamma_weak))
    return (f"{st.method_name} " if with_method or s.role == "baseline" else "") + gam + omega


def _omega_sizes(values: list) -> callable:
    """Marker area by ω: the smallest ω 22 pt², the largest 110 pt² (linear in between)."""
    ws = sorted({w for w in values if w is not None})
    lo, hi = (ws[0], ws[-1]) if ws else (0.0, 0.0)

    def size(w):
        if w is None or hi == lo:
            return 50.0
        return 22.0 + 88.0 * (w - lo) / (hi - lo)

    return size


class _LabelPlacer:
    """Greedy label placement: the first of a few offsets whose box overlaps no earlier label
    or point (boxes estimated from the text length), in display pixels."""

    OFFSETS = ((7, 4, "left"), (7, -12, "left"), (-7, 4, "right"), (-7, -12, "right"), (7, 14, "left"),
               (7, -22, "left"), (-7, 14, "right"), (-7, -22, "right"))

    def __init__(self, ax, fontsize: float):
        self.ax, self.fs, self.boxes = ax, fontsize, []
        self.px = ax.figure.dpi / 72

    def occupy(self, x, y, r_pt=5):
        X, Y = self.ax.transData.transform((x, y))
        r = r_pt * self.px
        self.boxes.append((X - r, Y - r, X + r, Y + r))

    def place(self, x, y, text, **kw):
        X, Y = self.ax.transData.transform((x, y))
        w = len(text) * self.fs * 0.56 * self.px
        h = self.fs * 1.25 * self.px
        pick = None
        for dx, dy, ha in self.OFFSETS:
            x0 = X + dx * self.px - (w if ha == "right" else 0)
            y0 = Y + dy * self.px
            box = (x0, y0, x0 + w, y0 + h)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in self.boxes):
                pick = (dx, dy, ha, box)
                break
        if pick is None:
            dx, dy, ha = self.OFFSETS[0]
            pick = (dx, dy, ha, (X, Y, X + w, Y + h))
        self.boxes.append(pick[3])
        self.ax.annotate(text, (x, y), xytext=(pick[0], pick[1]), textcoords="offset points", ha=pick[2],
                         fontsize=self.fs, zorder=6, bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none",
                                                              alpha=0.8), **kw)


def pareto_plot(all_rs: list[RunSummaries], column: str, path: Path) -> list[Path]:
    """Quality vs GFLOPs: every complete setting (marker area = ω, error bars = ± SE), the
    Pareto front per run with each front point's setting labelled, baselines labelled, pruned
    settings hollow (their value is at a lower fidelity; off the axis range: at its edge).
    One run: colour by method; several runs: colour by run, overlaid."""
    series = [(rs, [s for s in rs.summaries if GFLOPS in s.stats and column in s.stats],
               [s for s in rs.pruned if GFLOPS in s.stats and column in s.stats]) for rs in all_rs]
    series = [x for x in series if x[1]]
    if not series or sum(len(x[1]) for x in series) < 2:
        return []
    plt, sns = _plt()
    higher = higher_is_better(column)
    multi = len(series) > 1
    run_colors = sns.color_palette("colorblind", len(series))
    size = _omega_sizes([s.setting.omega for _, done, pr in series for s in done + pr if s.role != "baseline"])
    fig, ax = plt.subplots(figsize=(8.6, 5.4))
    # axis range from the complete points (with their error bars), so pruned values cannot squash them
    ys = [s.mean(column) + sgn * (0 if math.isnan(s.se(column)) else s.se(column))
          for _, done, _ in series for s in done for sgn in (-1, 1)]
    xs = [s.mean(GFLOPS) for _, done, pr in series for s in done + pr]
    ylo, yhi = min(ys), max(ys)
    pad = 0.08 * (yhi - ylo or abs(yhi) or 1.0)
    ylo, yhi = ylo - pad, yhi + pad
    xpad = 0.06 * (max(xs) - min(xs) or abs(max(xs)) or 1.0)
    ax.set_xlim(min(xs) - xpad, max(xs) + 3 * xpad)
    ax.set_ylim(ylo, yhi)
    handles: dict = {}
    placer = _LabelPlacer(ax, 7.5)
    methods = {s.setting.method for _, done, _ in series for s in done if s.role != "baseline"}
    fronts = []
    for r, (rs, done, pr) in enumerate(series):
        xy = [(s.mean(GFLOPS), s.mean(column)) for s in done]
        front = pareto_front(xy, higher)
        fronts.append((r, rs, done, xy, front))
        ax.plot([xy[i][0] for i in front], [xy[i][1] for i in front], "--",
                color=run_colors[r] if multi else "0.35", lw=1.0, zorder=2)
        if multi:
            handles[("run", r)] = ax.scatter([], [], marker="o", s=30, color=run_colors[r], label=rs.run.name)
        for s in pr:
            x, y = s.mean(GFLOPS), s.mean(column)
            marker = "o" if ylo <= y <= yhi else ("^" if y > yhi else "v")
            ax.scatter([x], [min(max(y, ylo), yhi)], s=size(s.setting.omega), marker=marker, facecolors="none",
                       edgecolors=run_colors[r] if multi else "0.55", linewidths=0.9, zorder=2, clip_on=False)
            if "pruned" not in handles:
                handles["pruned"] = ax.scatter([], [], s=40, marker="o", facecolors="none", edgecolors="0.55",
                                               linewidths=0.9, label="pruned (value at its fidelity; ▲▼ off-axis)")
        for s, (x, y) in zip(done, xy):
            m = s.setting.method
            color = run_colors[r] if multi else _color(m)
            err = s.se(column)
            err = None if math.isnan(err) else err
            if s.role == "baseline":
                mk = _marker(m)
                ax.errorbar(x, y, yerr=err, fmt=mk, ms=8, color=color, mec="black", mew=0.7,
                            ecolor=color, elinewidth=0.8, capsize=2, zorder=4)
                if ("base", m) not in handles:
                    handles[("base", m)] = ax.scatter(
                        [], [], marker=mk, s=48, color="0.6" if multi else color, edgecolors="black",
                        linewidths=0.7, label=f"{method_display_name(m)} (baseline)")
            else:
                ax.errorbar(x, y, yerr=err, fmt="none", ecolor=color, elinewidth=0.6, capsize=0, zorder=3, alpha=0.7)
                ax.scatter([x], [y], s=size(s.setting.omega), color=color, alpha=0.8, linewidths=0, zorder=3)
                if not multi and ("search", m) not in handles:
                    handles[("search", m)] = ax.scatter([], [], marker="o", s=30, color=color,
                                                        label=method_display_name(m))
            placer.occupy(x, y)
    labelled = set()
    for r, rs, done, xy, front in fronts:  # labels after every point is known, so they avoid them
        on_front = set(front)
        tops = {id(best(
            [s for s in done if s.role != "baseline" and s.setting.method == m], column)) for m in methods}
        for i, s in enumerate(done):  # baselines, the front, and each searched method's best (table rows)
            if s.role != "baseline" and i not in on_front and id(s) not in tops:
                continue
            text = setting_label(s, with_method=len(methods) > 1)
            spot = (text, round(xy[i][0]), round(xy[i][1], 1))  # identical baselines of several runs: one label
            if spot in labelled:
                continue
            labelled.add(spot)
            if i in on_front and s.role != "baseline":  # ring the front's points
                ax.scatter([xy[i][0]], [xy[i][1]], s=size(s.setting.omega) + 30, facecolors="none",
                           edgecolors="black", linewidths=0.9, zorder=5)
            placer.place(xy[i][0], xy[i][1], text, color="0.1" if i in on_front else "0.35",
                         fontweight="bold" if i in on_front and s.role != "baseline" else "normal")
    ws = sorted({s.setting.omega for _, done, pr in series for s in done + pr
                 if s.role != "baseline" and s.setting.omega is not None})
    for w in (ws if len(ws) <= 4 else [ws[0], ws[len(ws) // 2], ws[-1]]):
        handles[("omega", w)] = ax.scatter([], [], s=size(w), color="0.75", linewidths=0, label=f"ω = {w:g}")
    front_handle = ax.plot([], [], "--", color="0.35", lw=1.0, label="Pareto front (labelled)")[0]
    ax.set_xlabel("GFLOPs per image ↓", fontsize=9)
    ax.set_ylabel(_label(column), fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, lw=0.4, alpha=0.5)
    order = {"run": 0, "search": 1, "base": 2, "pruned": 3, "omega": 4}
    ordered = [h for k, h in sorted(handles.items(), key=lambda kv: (order[kv[0] if isinstance(kv[0], str) else kv[0][0]]))]
    ax.legend(handles=ordered + [front_handle], fontsize=7.5, frameon=False, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.set_title(f"{display_name(column)} vs. compute" + (" (runs overlaid)" if multi else ""), fontsize=10.5)
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
            items = panels(rs, m, rs.primary)
            if quality_heatmap(rs, m, rs.primary, p, items):
                out.append((heatmap_caption(rs.run.name, m, rs.primary, items), p))
        p = fig_dir / f"cost_heatmap{tag}.png"
        if cost_heatmap(rs, p):
            out.append((f"{rs.run.name}: inference cost over (γ_strong, γ_weak), averaged over ω "
                        "(cf. paper Fig. A1); pruned settings included (cost does not depend on the "
                        "sample count).", p))
    primaries = [rs.primary for rs in all_rs if rs.primary]
    if primaries:
        column = primaries[0]
        p = fig_dir / f"pareto_{column}.png"
        chosen = [rs for rs in all_rs if rs.primary == column]
        if pareto_plot(chosen, column, p):
            pruned = any(rs.pruned for rs in chosen)
            out.append((f"{display_name(column)} vs. GFLOPs per image for every complete setting "
                        "(marker area: ω; error bars: ± standard error); dashed: the Pareto front"
                        + (" per run" if multi else "") + ", its points ringed and labelled in bold with "
                        "their setting (γ_strong/γ_weak ω); baselines and each searched method's best "
                        "setting labelled too"
                        + ("; hollow: pruned settings at their lower fidelity, not on the front" if pruned else "")
                        + ".", p))
    return out
