"""End to end: `build_report` / `sgbench report` on synthetic run directories."""

import base64
import json
import re

import numpy as np
import pytest
from PIL import Image

from sgbench.cli import main as cli
from sgbench.errors import UserError
from sgbench.report import build_report
from sgbench.report.synthetic import trial_rows, write_run

SCRIPT = "<script>alert('x')</script>"


def small_rows(**kw):
    return trial_rows(seeds=(0, 1), gammas=(0.0, 0.5, 0.9), omegas=(1.5, 2.0), **kw)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("rep")
    suite = f"name: demo\nmodel: {{sparsity: routing}}\nprompts:\n  - \"{SCRIPT} a cat\"\n  - plain dog\n"
    run = write_run(root / "results" / "demo", small_rows(), suite=suite)
    out = build_report([run])
    return run, out


def test_report_files_figures_and_tables(demo):
    run, out = demo
    assert out == run.parent.parent / "reports" / "demo"
    names = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert "heatmap_fid_sg.png" in names and "cost_heatmap.png" in names and "pareto_fid.png" in names
    with Image.open(out / "figures" / "heatmap_fid_sg.png") as im:
        w, h = im.size
        assert w > 1.5 * h > 400  # two ω panels side by side
        pixels = np.asarray(im.convert("RGB"))
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # not blank
    md = (out / "report.md").read_text()
    assert "| Unguided | routing | – | – | 2 |" in md
    assert "![" in md and "(figures/pareto_fid.png)" in md
    tex = (out / "tables.tex").read_text()
    assert tex.count(r"\begin{tabular}") == 1 and r"\begin{longtable}" in tex
    manifest = json.loads((out / "report.json").read_text())
    assert manifest["primary"] == ["fid"] and manifest["runs"] == [str(run.resolve())]


def test_html_is_self_contained_and_escapes_user_strings(demo):
    _, out = demo
    page = (out / "report.html").read_text()
    assert SCRIPT not in page and "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; a cat" in page
    imgs = re.findall(r'src="([^"]+)"', page)
    assert imgs and all(s.startswith("data:image/png;base64,") for s in imgs)
    png = base64.b64decode(imgs[0].split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "href=" not in page  # nothing external


def test_script_in_run_name_and_trial_values_is_escaped(tmp_path):
    rows = small_rows()
    for r in rows:
        r["schedule"] = SCRIPT if r["method"] == "sg" else ""
    run = write_run(tmp_path / "results" / "<b>evil", rows, grids=False)
    out = build_report([run], tmp_path / "out")
    page = (out / "report.html").read_text()
    assert "<script" not in page.lower() and "<b>evil" not in page
    assert "&lt;b&gt;evil" in page
    md = (out / "report.md").read_text()
    assert "<script" not in md


def test_rerun_replaces_own_report_but_not_another(demo, tmp_path):
    run, out = demo
    (out / "stale.txt").write_text("old")
    assert build_report([run]) == out and not (out / "stale.txt").exists()
    other = write_run(tmp_path / "results" / "other", small_rows(), grids=False)
    with pytest.raises(UserError, match="already holds a report of"):
        build_report([other], out)
    assert build_report([other], out, force=True) == out
    assert json.loads((out / "report.json").read_text())["runs"] == [str(other.resolve())]
    assert not list(out.parent.glob(".demo.*"))  # no temporary directories left behind


def test_empty_and_failed_runs_say_so(tmp_path, capsys):
    empty = tmp_path / "results" / "empty"
    empty.mkdir(parents=True)
    failed = write_run(tmp_path / "results" / "failed",
                       [dict(r, status="failed", fid="") for r in small_rows()[:3]], grids=False)
    assert cli(["report", str(empty), "--out", str(tmp_path / "o1")]) == 0
    assert "nothing to report: the run has no trials.csv" in (tmp_path / "o1" / "report.md").read_text()
    assert cli(["report", str(failed), "--out", str(tmp_path / "o2")]) == 0
    md = (tmp_path / "o2" / "report.md").read_text()
    assert "nothing to report: no trial completed (3 failed)" in md
    assert "t0000 (failed)" in md
    assert "no trial completed" in (tmp_path / "o2" / "report.html").read_text()
    assert "warning: failed: nothing to report" in capsys.readouterr().out


def test_two_runs_side_by_side(tmp_path):
    a = write_run(tmp_path / "results" / "routing", small_rows(), grids=False)
    rows_b = small_rows(rng_seed=1)
    for r in rows_b:
        r["fid"] = round(r["fid"] + 1.0, 4)
    b = write_run(tmp_path / "results" / "masking", rows_b, grids=False)
    out = build_report([a, b])
    assert out.name == "routing+masking"
    md = (out / "report.md").read_text()
    assert "| Method | Run |" in md and "| routing |" in md and "| masking |" in md
    figs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert figs == ["cost_heatmap_masking.png", "cost_heatmap_routing.png", "heatmap_fid_sg_masking.png",
                    "heatmap_fid_sg_routing.png", "pareto_fid.png"]


def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys):
    assert cli(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "run directory not found" in err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "trials.csv").write_text("trial_id,method\n1,sg\n")
    assert cli(["report", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "lacks required column(s): gamma_strong, gamma_weak, omega" in capsys.readouterr().err


def test_latex_braces_balance(demo):
    _, out = demo
    tex = (out / "tables.tex").read_text().replace(r"\{", "").replace(r"\}", "")
    assert tex.count("{") == tex.count("}") and tex.count(r"\begin{") == tex.count(r"\end{")


def test_heatmap_colour_range_is_clipped_at_the_unguided_value():
    from sgbench.report.figures import _clip_range

    v = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 10.0, np.nan])
    assert _clip_range(v, higher=False, reference=5.0) == (1.0, 5.0, 5.0)
    assert _clip_range(v, higher=False, reference=None) == (1.0, 4.75, 4.75)  # upper quartile
    assert _clip_range(v, higher=True, reference=2.5) == (2.5, 10.0, 2.5)
    assert _clip_range(v, higher=True, reference=None) == (2.25, 10.0, 2.25)
    assert _clip_range(np.array([4.0, 4.0]), higher=False, reference=None) == (3.5, 4.5, None)
    assert _clip_range(np.array([4.0, 9.0]), higher=False, reference=None) == (4.0, 9.0, None)  # too few
