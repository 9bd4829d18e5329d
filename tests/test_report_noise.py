"""Tables print mean ± standard error and mark differences to the reference row that are within
noise (a dagger) in Markdown, LaTeX and HTML; pruned settings keep their fidelity, failed
trials their error line; GFLOPs with attention is a second cost column."""

import math
from pathlib import Path

import pandas as pd

from sgbench.report.aggregate import Setting, Stat, Summary
from sgbench.report.render import table_html, table_latex, table_markdown
from sgbench.report.runs import Run, normalise_trials
from sgbench.report.tables import RunSummaries, build_tables, se_text, within_noise


def row(method, gs, gw, omega, fid, se, gflops, role="search", seed=0, n=5000, status="complete", **extra):
    return {"trial_id": f"{method}-{gs}-{gw}-{omega}-{seed}-{status}", "role": role, "method": method,
            "gamma_strong": gs, "gamma_weak": gw, "omega": omega, "schedule": "", "n_samples": n,
            "seed": seed, "fid": fid, "fid_se": se, "gflops": gflops, "gflops_attn": gflops * 1.1,
            "status": status, **extra}


# one seed, as the quickstart: differences are tested on the bootstrap errors (unpaired)
ROWS = [
    row("none", 0, 0, "", 10.0, 0.5, 100.0, role="baseline"),
    row("cfg", 0, 0, 1.5, 9.5, 0.4, 200.0, role="baseline"),  # |0.5| <= 2 sqrt(0.5² + 0.4²) = 1.28: within noise
    row("sg", 0, 0.5, 2, 7.0, 0.4, 166.0),  # 3.0 > 1.28: beyond
    row("sg", 0.5, 0.9, 2, 9.3, 0.4, 106.0),  # the cheapest at least as good as CFG; within noise
    row("sg", 0.5, 0.9, 3, 14.0, 1.0, 106.0, n=1000, status="pruned"),
    {**row("sg", 0.2, 0.7, 2, float("nan"), float("nan"), float("nan"), n=0, status="failed"),
     "error": "RuntimeError: boom | <b>"},
]


def run_of(rows, path="r"):
    return Run(name="r", path=Path(path), trials=normalise_trials(pd.DataFrame(rows), "trials.csv"))


def tables():
    return {t.key: t for t in build_tables([RunSummaries.of(run_of(ROWS))])}


def test_summary_values_carry_their_standard_error_and_the_within_noise_mark_in_every_format():
    t = tables()["summary"]
    md = table_markdown(t).splitlines()
    assert md[0] == "| Method | Sparsity γ_s / γ_w | ω | FID ↓ | GFLOPs ↓ | ΔGFLOPs ↓ | GFLOPs (attn.) ↓ |"
    assert md[2] == "| Unguided | – | – | 10.00 ± 0.50 | **100.0** | 0 (baseline) | **110.0** |"
    assert md[3] == "| CFG | – | 1.5 | 9.50† ± 0.40 | 200.0 | +100.0 | 220.0 |"
    assert md[4] == "| SG_FID | 0 / 0.5 | 2 | **7.00** ± 0.40 | 166.0 | +66.0 | 182.6 |"
    assert md[5] == "| SG_FLOPs | 0.5 / 0.9 | 2 | 9.30† ± 0.40 | 106.0 | +6.0 | 116.6 |"
    assert "†: within noise of Unguided (|Δ| ≤ 2 SE of the difference" in t.caption
    assert "GFLOPs (attn.): with the attention-score products" in t.caption
    tex = table_latex(t)
    assert r"CFG & -- & 1.5 & 9.50$^{\dagger}${\scriptsize\,$\pm$\,0.40} & 200.0" in tex
    assert r"$^{\dagger}$: within noise of Unguided (|$\Delta$| $\le$ 2 SE" in tex
    html = table_html(t)
    assert '<td class="num">9.50<sup>†</sup> <small>± 0.40</small></td>' in html
    assert '<td class="num"><b>7.00</b> <small>± 0.40</small></td>' in html


def test_standard_error_text():
    assert [se_text(x, ".2f") for x in (0.4, 0.004, 0.0, math.nan)] == ["0.40", "<0.01", "0.00", ""]
    assert se_text(0.3, ".0f") == "<1" and se_text(0.0, ".1f", zero=False) == ""


def test_paired_seeds_decide_the_mark_when_two_seeds_ran():
    def summary(values, se=math.nan):
        st = Stat(sum(values) / len(values), 0.0, len(values), se)
        return Summary(Setting("sg", 0.0, 0.5, 2.0, "", 5000), "search", (0, 1), ("a", "b"),
                       stats={"fid": st}, per_seed={"fid": dict(enumerate(values))})

    ref = summary([10.0, 12.0], se=1.0)
    # per-seed differences +0.5 and -0.3: paired SE 0.4, |Δ| = 0.1: within noise
    assert within_noise(summary([10.5, 11.7]), ref, "fid") is True
    # differences -2.0 and -2.2: paired SE 0.1, |Δ| = 2.1: beyond, although the seeds' spread is 1.0
    assert within_noise(summary([8.0, 9.8]), ref, "fid") is False
    assert within_noise(ref, ref, "fid") is None  # the reference row itself
    other_n = summary([10.0, 12.0])
    other_n.setting = Setting("sg", 0.0, 0.5, 2.0, "", 1000)  # a pruned fidelity: not comparable
    assert within_noise(other_n, ref, "fid") is None


def test_settings_table_lists_pruned_settings_at_their_fidelity_without_marks():
    t = tables()["settings"]
    md = table_markdown(t).splitlines()
    assert md[0] == ("| Method | Role | γ_s | γ_w | ω | N | Seeds | Status | FID ↓ | GFLOPs ↓ | "
                     "GFLOPs (attn.) ↓ |")
    assert md[-1] == "| SG | search | 0.5 | 0.9 | 3 | 1000 | 1 | pruned @1k | 14.00 ± 1.00 | 106.0 | 116.6 |"
    assert "| SG | search | 0.5 | 0.9 | 2 | 5000 | 1 | complete | 9.30† ± 0.40 |" in table_markdown(t)
    assert "pruned one at the fidelity it reached" in t.caption


def test_failed_trials_table_has_the_error_line_and_is_not_in_latex(tmp_path):
    (tmp_path / "errors").mkdir()
    (tmp_path / "errors" / "sg-0.2-0.7-2-0-failed.txt").write_text("Traceback ...")
    rs = RunSummaries.of(run_of(ROWS, tmp_path))
    t = {t.key: t for t in build_tables([rs])}["failed"]
    md = table_markdown(t).splitlines()
    assert md[0] == "| Trial | Method | γ_s | γ_w | ω | Error | Traceback |"
    assert md[2] == ("| sg-0.2-0.7-2-0-failed | SG | 0.2 | 0.7 | 2 | RuntimeError: boom \\| &lt;b&gt; | "
                     "errors/sg-0.2-0.7-2-0-failed.txt |")
    assert "RuntimeError: boom | &lt;b&gt;" in table_html(t)
    from sgbench.report.render import tables_latex

    assert "boom" not in tables_latex(build_tables([rs]), "r")
