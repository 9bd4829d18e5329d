"""The matrices behind the (γ_strong, γ_weak) heatmaps, and the best-cell rule. Pure functions.

A panel is one method at one ω. Each cell of its lattice (the γ values any trial of the method
used) is one of
- complete: the setting's value at the run's sample count (seeds averaged);
- pruned:   stopped early by the search; its value at the fidelity it reached (`fidelity`),
            not comparable with complete cells (FID and FD grow as the sample count shrinks);
- failed:   every trial of the setting failed (the error line is in `errors`);
- invalid:  γ_strong ≥ γ_weak for a method that requires γ_strong < γ_weak (paper eq. 6);
- missing:  valid, but nothing measured there (a search that did not visit it, unfinished work).
A cell with a complete trial is complete whatever else ran there; else pruned, else failed.

Best cell (`outline`), among the complete cells of a panel: b is the best mean; the cells tied
with b are those whose difference to b is within NOISE_K standard errors
(`significance.difference`: paired over shared seeds, else unpaired) or of unknown noise.
- "clear": b alone — it beats every other complete cell of the panel beyond noise: b is outlined;
- "tied":  several cells are within noise of b: each of them is outlined (dashed), none is "the" best;
- "unknown": no standard error for any comparison (bootstrap off, one seed): nothing is outlined;
- "single" / "none": one complete cell, or none: nothing to compare, nothing outlined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sgbench.guidance.vocabulary import METHODS
from sgbench.report.aggregate import FailedTrial, Summary, better
from sgbench.report.significance import difference
from sgbench.report.tables import NOISE_K, RunSummaries, fidelity_text

KINDS = ("complete", "pruned", "failed", "invalid", "missing")
RULES = ("clear", "tied", "unknown", "single", "none")


@dataclass(frozen=True)
class Outline:
    cells: tuple  # (i, j) lattice positions to outline
    rule: str  # one of RULES


@dataclass
class Panel:
    method: str
    omega: float | None
    gs: list[float]  # rows (γ_strong), ascending
    gw: list[float]  # columns (γ_weak), ascending
    kind: np.ndarray  # [len(gs), len(gw)] str, one of KINDS
    value: np.ndarray  # float, NaN where none
    se: np.ndarray  # standard error of `value`, NaN where unknown
    fidelity: np.ndarray  # int: the sample count behind `value` (0: none)
    summaries: dict = field(default_factory=dict)  # (i, j) -> Summary behind the value
    errors: dict = field(default_factory=dict)  # (i, j) -> first error line of a failed cell
    outline: Outline = Outline((), "none")

    def texts(self, fmt: str) -> np.ndarray:
        """What each cell prints: the value; for a pruned cell also its fidelity ('@1k');
        'failed'; nothing for invalid and missing cells."""
        out = np.full(self.kind.shape, "", dtype=object)
        for (i, j), k in np.ndenumerate(self.kind):
            if k == "complete":
                out[i, j] = format(self.value[i, j], fmt)
            elif k == "pruned":
                out[i, j] = f"{format(self.value[i, j], fmt)}\n@{fidelity_text(int(self.fidelity[i, j]))}"
            elif k == "failed":
                out[i, j] = "failed"
        return out


def on_plane(s) -> bool:
    """A setting on the (γ_strong, γ_weak) plane: constant numeric rates, no schedule."""
    st = s.setting
    return st.numeric_gammas and not st.schedule


def _pick(candidates: list[Summary]) -> Summary:
    """The summary a cell shows: the one with most samples (first of equals)."""
    return max(candidates, key=lambda s: (s.setting.n_samples if isinstance(s.setting.n_samples, int) else -1))


def panels(rs: RunSummaries, method: str, column: str, k: float = NOISE_K) -> list[Panel]:
    """One panel per ω (ascending) for `method`, with kinds, values and the outline rule; []
    when fewer than two settings of the method have a value of `column`."""
    done = [s for s in rs.summaries if s.setting.method == method and on_plane(s) and column in s.stats]
    pruned = [s for s in rs.pruned if s.setting.method == method and on_plane(s) and column in s.stats]
    failed = [f for f in rs.failed if f.setting.method == method and on_plane(f)]
    if len(done) + len(pruned) < 2:
        return []
    every = [x.setting for x in (*done, *pruned, *failed)]
    gs = sorted({st.gamma_strong for st in every})
    gw = sorted({st.gamma_weak for st in every})
    omegas = sorted({st.omega for st in every}, key=lambda w: (w is None, w or 0.0))
    gap = METHODS[method].requires_gap if method in METHODS else False
    out = []
    for w in omegas:
        p = _panel(method, w, gs, gw, gap, column,
                   [s for s in done if s.setting.omega == w], [s for s in pruned if s.setting.omega == w],
                   [f for f in failed if f.setting.omega == w])
        p.outline = outline(p, column, k)
        out.append(p)
    return out


def _panel(method, omega, gs, gw, gap: bool, column: str, done: list[Summary], pruned: list[Summary],
           failed: list[FailedTrial]) -> Panel:
    shape = (len(gs), len(gw))
    kind = np.full(shape, "missing", dtype=object)
    if gap:
        for i, a in enumerate(gs):
            for j, b in enumerate(gw):
                if a >= b:
                    kind[i, j] = "invalid"
    p = Panel(method, omega, gs, gw, kind, np.full(shape, math.nan), np.full(shape, math.nan),
              np.zeros(shape, dtype=int))
    pos = lambda st: (gs.index(st.gamma_strong), gw.index(st.gamma_weak))  # noqa: E731
    for f in failed:
        p.kind[pos(f.setting)] = "failed"
        p.errors.setdefault(pos(f.setting), f.error)
    for group, name in ((pruned, "pruned"), (done, "complete")):  # complete wins over pruned over failed
        cells: dict = {}
        for s in group:
            cells.setdefault(pos(s.setting), []).append(s)
        for ij, ss in cells.items():
            s = _pick(ss)
            p.kind[ij] = name
            p.value[ij], p.se[ij] = s.mean(column), s.se(column)
            p.fidelity[ij] = s.setting.n_samples if isinstance(s.setting.n_samples, int) else 0
            p.summaries[ij] = s
            p.errors.pop(ij, None)
    return p


def outline(p: Panel, column: str, k: float = NOISE_K) -> Outline:
    """The best-cell rule of the module docstring."""
    cand = [ij for ij, s in p.summaries.items() if p.kind[ij] == "complete" and np.isfinite(p.value[ij])]
    if not cand:
        return Outline((), "none")
    b = cand[0]
    for ij in cand[1:]:
        if better(column, p.value[ij], p.value[b]):
            b = ij
    if len(cand) == 1:
        return Outline((), "single")
    sb = p.summaries[b]
    tied, known = [b], 0
    for ij in sorted(cand):
        if ij == b:
            continue
        s = p.summaries[ij]
        d = difference(s.per_seed.get(column, {}), sb.per_seed.get(column, {}), s.se(column), sb.se(column))
        sig = d.significant(k)
        known += sig is not None
        if not sig:  # within noise, or noise unknown: not beaten
            tied.append(ij)
    if not known:
        return Outline((), "unknown")
    if len(tied) == 1:
        return Outline((b,), "clear")
    return Outline(tuple(sorted(tied)), "tied")


def cost_panel(rs: RunSummaries, method: str, column: str) -> Panel | None:
    """A cost (GFLOPs, img/s) over the plane, averaged over ω and seeds — complete and pruned
    settings alike (cost does not depend on how many samples a trial saw); None below two cells."""
    pts = [s for s in rs.summaries + rs.pruned if s.setting.method == method and on_plane(s) and column in s.stats]
    if len(pts) < 2:
        return None
    gs = sorted({s.setting.gamma_strong for s in pts})
    gw = sorted({s.setting.gamma_weak for s in pts})
    gap = METHODS[method].requires_gap if method in METHODS else False
    p = _panel(method, None, gs, gw, gap, column, [], [], [])
    acc: dict = {}
    for s in pts:
        acc.setdefault((gs.index(s.setting.gamma_strong), gw.index(s.setting.gamma_weak)), []).append(s.mean(column))
    for ij, vs in acc.items():
        p.kind[ij], p.value[ij] = "complete", float(np.mean(vs))
    return p
