"""Tables in the paper's layout from a synthetic trials table: exact values in Markdown/LaTeX."""

import pandas as pd
import pytest

from sgbench.errors import UserError
from sgbench.report.aggregate import pareto_front, stat_of
from sgbench.report.metrics import display_name, metric_order, number_format, primary_metric
from sgbench.report.render import md_escape, table_latex, table_markdown, tex_escape
from sgbench.report.runs import Run, normalise_trials
from sgbench.report.tables import RunSummaries, build_tables, selected_rows


def row(method, gs, gw, omega, seed, fid, gflops, role="search", **extra):
    return {"trial_id": f"{method}-{gs}-{gw}-{omega}-{seed}", "role": role, "method": method,
            "gamma_strong": gs, "gamma_weak": gw, "omega": omega, "schedule": "", "n_samples": 5000,
            "seed": seed, "fid": fid, "is": 100.0 - fid, "gflops": gflops, "status": "complete", **extra}


ROWS = [
    row("none", 0, 0, "", 0, 10.0, 100.0, role="baseline"),
    row("none", 0, 0, "", 1, 12.0, 100.0, role="baseline"),
    row("cfg", 0, 0, 1.5, 0, 5.0, 200.0, role="baseline"),
    row("cfg", 0, 0, 1.5, 1, 5.0, 200.0, role="baseline"),
    row("sg", 0, 0.5, 2, 0, 4.0, 166.0),
    row("sg", 0, 0.5, 2, 1, 4.2, 166.0),
    row("sg", 0.5, 0.9, 2, 0, 4.9, 106.0),
    row("sg", 0.5, 0.9, 2, 1, 5.1, 106.0),
    row("sg", 0.0, 0.9, 2, 0, 6.0, 141.0),
    row("sg", 0.0, 0.9, 2, 1, 6.0, 141.0),
    {**row("sg", 0.5, 0.7, 2, 0, float("nan"), 120.0), "status": "failed"},
]


def make_run(rows, name="r", suite=None):
    trials = normalise_trials(pd.DataFrame(rows), "trials.csv")
    return Run(name=name, path=__import__("pathlib").Path(name), trials=trials, suite=suite)


def test_metric_names_and_order():
    cols = ["gflops", "recall", "fd_dinov2", "fid", "is", "precision_dinov2", "class_acc", "fid_se", "sfid"]
    assert metric_order(cols) == ["fid", "sfid", "is", "recall", "fd_dinov2", "precision_dinov2", "class_acc"]
    assert primary_metric(["class_acc", "fd_dinov2", "fd_inception"]) == "fd_dinov2"
    assert primary_metric(["hpsv3", "hpsv3_animals"]) == "hpsv3"
    assert [display_name(c) for c in ("fid", "sfid", "is", "precision", "recall", "fd_dinov2", "class_acc")] == \
        ["FID", "sFID", "IS", "Prec.", "Rec.", "FD_DINOv2", "Acc."]
    assert display_name("hpsv3_natural_scenery") == "Natural Scenery"
    assert display_name("geneval_color_attribution") == "Color attribution"


def test_stat_and_pareto_are_exact():
    s = stat_of([10.0, 12.0])
    assert (s.mean, round(s.std, 6), s.n, round(s.se, 6)) == (11.0, 1.414214, 2, 1.0)
    one = stat_of([3.0], ses=[0.5])
    assert (one.n, one.se) == (1, 0.5)
    # (cost, quality lower-better): the dominated point (2, 5) is off the front
    assert pareto_front([(1, 9), (2, 5), (3, 4), (2, 6), (4, 4)], higher=False) == [0, 1, 2]


def test_summary_table_rows_values_markdown_and_latex():
    rs = RunSummaries.of(make_run(ROWS))
    labels = [(c.text, c.sub) for c, _ in selected_rows(rs)]
    assert labels == [("Unguided", ""), ("CFG", ""), ("SG", "FID"), ("SG", "FLOPs")]
    tables = build_tables([rs])
    assert [t.key for t in tables] == ["summary", "settings", "failed"]
    md = table_markdown(tables[0])
    lines = md.splitlines()
    assert lines[0] == ("| Method | Sparsity γ_s / γ_w | ω | Seeds | FID ↓ | IS ↑ | GFLOPs ↓ | ΔGFLOPs ↓ |")
    # ± the standard error of the mean over 2 seeds: std / sqrt(2); no value is within noise of Unguided
    assert lines[2] == "| Unguided | – | – | 2 | 11.00 ± 1.00 | 89.0 ± 1.0 | **100.0** | 0 (baseline) |"
    assert lines[3] == "| CFG | – | 1.5 | 2 | 5.00 ± 0.00 | 95.0 ± 0.0 | 200.0 | +100.0 |"
    assert lines[4] == "| SG_FID | 0 / 0.5 | 2 | 2 | **4.10** ± 0.10 | **95.9** ± 0.1 | 166.0 | +66.0 |"
    assert lines[5] == "| SG_FLOPs | 0.5 / 0.9 | 2 | 2 | 5.00 ± 0.10 | 95.0 ± 0.1 | 106.0 | +6.0 |"
    assert "Every tested difference to Unguided is beyond noise (|Δ| > 2 SE" in tables[0].caption
    tex = table_latex(tables[0])
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"Sparsity $\gamma_s$ / $\gamma_w$ & $\omega$ & Seeds & FID $\downarrow$" in tex
    assert (r"SG$_{\mathrm{FID}}$ & 0 / 0.5 & 2 & 2 & \textbf{4.10}{\scriptsize\,$\pm$\,0.10} & "
            r"\textbf{95.9}{\scriptsize\,$\pm$\,0.1} & 166.0 & +66.0 \\") in tex
    assert r"Unguided & -- & -- & 2 & 11.00{\scriptsize\,$\pm$\,1.00}" in tex


def test_settings_table_lists_every_completed_setting_sorted_by_quality():
    rs = RunSummaries.of(make_run(ROWS))
    settings = {t.key: t for t in build_tables([rs])}["settings"]
    methods_fid = [(r[0].text, r[6].text) for r in settings.rows]
    assert methods_fid == [("Unguided", "11.00"), ("CFG", "5.00"), ("SG", "4.10"), ("SG", "5.00"), ("SG", "6.00")]
    assert r"\begin{longtable}" in table_latex(settings)


def test_t2i_tables_4_and_5():
    t2i = [row("cfg", 0, 0, 5, 0, 0, 10.0, role="baseline", hpsv3=9.21, hpsv3_animals=9.41,
               hpsv3_natural_scenery=8.44, geneval=0.61, geneval_single_object=0.98),
           row("sg", 0.5, 0.9, 5, 0, 0, 6.0, hpsv3=9.87, hpsv3_animals=9.82, hpsv3_natural_scenery=9.01,
               geneval=0.62, geneval_single_object=0.99)]
    for r in t2i:
        del r["fid"], r["is"]
    rs = RunSummaries.of(make_run(t2i))
    assert rs.primary == "hpsv3"
    tables = {t.key: t for t in build_tables([rs])}
    hps = table_markdown(tables["hpsv3"]).splitlines()
    assert hps[0] == "| Method | Sparsity γ_s / γ_w | ω | Overall ↑ | Animals | Natural Scenery |"
    assert hps[3] == "| SG_HPSv3 | 0.5 / 0.9 | 5 | **9.87** | **9.82** | **9.01** |"
    gen = table_markdown(tables["geneval"]).splitlines()
    assert gen[0] == "| Method | Sparsity γ_s / γ_w | ω | Overall ↑ | Single object |"
    assert gen[2] == "| CFG | – | 5 | 0.61 | 0.98 |"
    assert r"Natural Scenery" in table_latex(tables["hpsv3"])


def test_multi_run_table_has_run_column_and_per_run_delta():
    a = RunSummaries.of(make_run(ROWS, name="routing", suite={"model": {"sparsity": "routing"}}))
    b_rows = [dict(r, fid=r["fid"] + 1.0) for r in ROWS]
    b = RunSummaries.of(make_run(b_rows, name="masking", suite={"model": {"sparsity": "masking"}}))
    table = build_tables([a, b])[0]
    md = table_markdown(table).splitlines()
    assert md[0].startswith("| Method | Run | Train sparsity | Sparsity γ_s / γ_w |")
    assert "| SG_FID | routing | routing | 0 / 0.5 | 2 | 2 | **4.10** ± 0.10 |" in md[4]
    assert "| SG_FID | masking | masking | 0 / 0.5 | 2 | 2 | 5.10 ± 0.10 |" in md[8]


def test_escaping_of_user_strings():
    assert md_escape("a|b<script>*") == "a\\|b&lt;script&gt;\\*"
    assert tex_escape("50% & $x_1$ #") == r"50\% \& \$x\_1\$ \#"


def test_bad_trials_are_user_errors():
    with pytest.raises(UserError, match="lacks required column"):
        normalise_trials(pd.DataFrame([{"method": "sg"}]), "t.csv")
    with pytest.raises(UserError, match="non-numeric fid='abc' in line 2"):
        normalise_trials(pd.DataFrame([dict(ROWS[0], fid="abc")]).astype(str), "t.csv")
    with pytest.raises(UserError, match="unknown status 'done'"):
        normalise_trials(pd.DataFrame([dict(ROWS[0], status="done")]), "t.csv")


def test_gflops_of_small_models_keep_significant_digits():
    assert format(118.64, number_format("gflops", 118.64)) == "118.6"  # the paper's style
    assert format(0.1016, number_format("gflops", 0.1016)) == "0.102"  # CPU quickstart models
    assert format(0.1703 - 0.1016, number_format("gflops", 0.1016)) == "0.0687"
