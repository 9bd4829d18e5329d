"""The matrices behind the heatmaps (cell kinds, values, fidelities, texts), the best-cell outline
rule, the layout that keeps heatmap text legible, and the Pareto plot's labels."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sgbench.report import figures
from sgbench.report.heatcells import Outline, panels
from sgbench.report.runs import Run, normalise_trials
from sgbench.report.tables import RunSummaries


def row(gs, gw, omega, fid, se=0.1, seed=0, n=5000, status="complete", method="sg", role="search", gflops=None):
    return {"trial_id": f"{method}-{gs}-{gw}-{omega}-{seed}", "role": role, "method": method, "gamma_strong": gs,
            "gamma_weak": gw, "omega": omega, "schedule": "", "n_samples": n, "seed": seed, "fid": fid,
            "fid_se": se, "gflops": 100 * (2 - gs - gw) if gflops is None else gflops, "status": status}


def summaries(rows) -> RunSummaries:
    trials = normalise_trials(pd.DataFrame(rows), "trials.csv")
    return RunSummaries.of(Run(name="r", path=Path("r"), trials=trials))


GRID = [
    row(0.0, 0.5, 2.0, 7.0),
    row(0.5, 0.9, 2.0, 9.3),
    {**row(0.0, 0.9, 2.0, float("nan"), float("nan"), n=0, status="failed"), "error": "OOM"},
    row(0.0, 0.5, 3.0, 8.0),
    row(0.0, 0.9, 3.0, 7.5),
    row(0.5, 0.9, 3.0, 14.0, 1.0, n=1000, status="pruned"),
    # a pruned and a complete trial of one setting (e.g. TPE proposing it twice): the complete one wins
    row(0.0, 0.9, 3.0, 30.0, 1.0, seed=0, n=200, status="pruned"),
]


def test_cells_are_complete_pruned_failed_invalid_or_missing():
    p2, p3 = panels(summaries(GRID), "sg", "fid")
    assert (p2.omega, p2.gs, p2.gw) == (2.0, [0.0, 0.5], [0.5, 0.9])
    assert p2.kind.tolist() == [["complete", "failed"], ["invalid", "complete"]]
    assert p3.kind.tolist() == [["complete", "complete"], ["invalid", "pruned"]]
    np.testing.assert_array_equal(p3.value, [[8.0, 7.5], [np.nan, 14.0]])
    np.testing.assert_array_equal(p3.fidelity, [[5000, 5000], [0, 1000]])
    assert p2.errors == {(0, 1): "OOM"}
    assert p2.texts(".1f").tolist() == [["7.0", "failed"], ["", "9.3"]]
    assert p3.texts(".1f").tolist() == [["8.0", "7.5"], ["", "14.0\n@1k"]]
    # a method without the γ_strong < γ_weak rule has no invalid cells; unvisited cells are missing
    ag = [dict(r, method="ag+sg") for r in GRID[:2]]
    (p,) = panels(summaries(ag), "ag+sg", "fid")
    assert p.kind.tolist() == [["complete", "missing"], ["missing", "complete"]]


def test_pruned_rows_no_longer_vanish_from_a_lattice():
    # a 0.1-lattice row whose every point was pruned keeps its row, with the low-fidelity values
    rows = [row(0.0, 0.5, 2.0, 3.0), row(0.0, 0.6, 2.0, 3.1),
            row(0.4, 0.5, 2.0, 6.0, n=1000, status="pruned"), row(0.4, 0.6, 2.0, 6.1, n=1000, status="pruned")]
    (p,) = panels(summaries(rows), "sg", "fid")
    assert p.gs == [0.0, 0.4] and p.kind[1].tolist() == ["pruned", "pruned"]


def cells(values_ses, seeds=(0,)):
    """One ω panel, one row of cells γ_weak = 0.5, 0.6, ... with the given (value or
    per-seed values, se)."""
    rows = []
    for j, (v, se) in enumerate(values_ses):
        vs = v if isinstance(v, tuple) else (v,) * len(seeds)
        rows += [row(0.0, round(0.5 + 0.1 * j, 1), 2.0, x, se, seed=s) for s, x in zip(seeds, vs)]
    (p,) = panels(summaries(rows), "sg", "fid")
    return p.outline


def test_best_cell_is_outlined_only_beyond_noise():
    # 5.0 beats 7.0 and 8.0 by far more than 2 SE: the best alone, solid
    assert cells([(7.0, 0.1), (5.0, 0.1), (8.0, 0.1)]) == Outline(((0, 1),), "clear")
    # 5.4 is within 2 sqrt(0.5² + 0.5²) = 1.41 of 5.0: both are outlined (tied), 8.0 is not
    o = cells([(5.4, 0.5), (5.0, 0.5), (8.0, 0.1)])
    assert (o.rule, o.cells) == ("tied", ((0, 0), (0, 1)))
    # no standard errors, one seed: nothing can be claimed
    o = cells([(5.4, float("nan")), (5.0, float("nan"))])
    assert (o.rule, o.cells) == ("unknown", ())
    # two seeds pair: the per-seed differences (+1.0, +1.1) are consistent, so 6.05 vs 5.0 is beyond
    # noise although the bootstrap errors (1.0 each) alone would call it a tie
    o = cells([((5.0, 5.0), 1.0), ((6.0, 6.1), 1.0)], seeds=(0, 1))
    assert (o.rule, o.cells) == ("clear", ((0, 0),))


def test_a_lone_complete_cell_is_not_called_best():
    rows = [row(0.0, 0.5, 2.0, 5.0), row(0.0, 0.6, 2.0, 9.0, n=1000, status="pruned")]
    (p,) = panels(summaries(rows), "sg", "fid")
    assert (p.outline.rule, p.outline.cells) == ("single", ())


@pytest.mark.parametrize("n_rows,n_cols", [(1, 2), (2, 2), (3, 3), (9, 9), (10, 10), (19, 20), (20, 20), (24, 24)])
@pytest.mark.parametrize("n_panels", [1, 2, 3, 4, 6])
def test_heatmap_text_stays_legible_at_the_page_width(n_rows, n_cols, n_panels):
    lay = figures.heat_layout(n_rows, n_cols, n_panels)
    assert lay.annotate
    assert lay.fig_w <= figures.PAGE_WIDTH_PX / figures.CSS_PX_PER_IN + 1e-9  # never scaled down
    assert lay.page_px(lay.small_pt) >= figures.MIN_TEXT_PX and lay.page_px(lay.value_pt) >= figures.MIN_TEXT_PX
    assert lay.ncol * lay.nrow >= n_panels and lay.ncol <= 4


def test_a_lattice_too_fine_for_text_drops_the_values():
    lay = figures.heat_layout(40, 40, 1)
    assert not lay.annotate and lay.fig_w <= figures.PAGE_WIDTH_PX / figures.CSS_PX_PER_IN + 1e-9


def test_pareto_front_points_are_labelled_with_their_setting(tmp_path, monkeypatch):
    rows = [row(0.0, 0.0, "", 10.0, role="baseline", method="none", gflops=100.0),
            row(0.0, 0.0, 1.5, 6.0, role="baseline", method="cfg", gflops=200.0),
            row(0.5, 0.9, 3.0, 7.0, gflops=110.0),  # front
            row(0.0, 0.5, 3.0, 5.0, gflops=160.0),  # front (best)
            row(0.0, 0.9, 6.0, 8.0, gflops=140.0),  # dominated: no label
            row(0.3, 0.9, 6.0, 20.0, n=1000, status="pruned", gflops=120.0)]
    seen = {}

    def keep(fig, path):
        ax = fig.axes[0]
        seen["texts"] = [t.get_text() for t in ax.texts]
        seen["sizes"] = sorted({round(float(s), 1) for c in ax.collections if hasattr(c, "get_sizes") for s in c.get_sizes()})
        seen["legend"] = [t.get_text() for t in ax.get_legend().get_texts()]
        return [path]

    monkeypatch.setattr(figures, "_save", keep)
    assert figures.pareto_plot([summaries(rows)], "fid", tmp_path / "p.png")
    assert sorted(seen["texts"]) == ["0.5/0.9 ω=3", "0/0.5 ω=3", "CFG ω=1.5", "Unguided"]
    assert {22.0, 110.0} <= set(seen["sizes"])  # marker area encodes ω (3 smallest, 6 largest)
    assert "ω = 3" in seen["legend"] and "ω = 6" in seen["legend"]
    assert any(t.startswith("pruned") for t in seen["legend"])


def test_heatmap_caption_describes_only_the_outlines_drawn():
    clear = panels(summaries([row(0.0, 0.5, 2.0, 7.0), row(0.0, 0.6, 2.0, 5.0)]), "sg", "fid")
    assert clear[0].outline.rule == "clear"
    text = figures.heatmap_caption("r", "sg", "fid", clear)
    assert "solid = the best cell" in text and "no best cell is outlined" not in text
    only_pruned = panels(summaries([row(0.0, 0.5, 2.0, 7.0, n=80, status="pruned"),
                                    row(0.0, 0.6, 2.0, 5.0, n=80, status="pruned")]), "sg", "fid")
    text = figures.heatmap_caption("r", "sg", "fid", only_pruned)
    assert "Hatched, lighter cells were pruned" in text and "solid" not in text
    assert "no best cell is outlined" in text
