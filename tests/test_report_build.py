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
    assert out == run / "report"  # the report lives with its run
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
    # the only links: each sample thumbnail to its full-resolution grid beside the page
    links = set(re.findall(r'href="([^"]+)"', page))
    assert links and all(re.fullmatch(r"figures/samples_[\w.+-]+_full\.png", h) for h in links)
    assert all((out / h).is_file() for h in links)


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
    assert "## Failed trials" in md and "| t0000 | Unguided | 0 | 0 | – | (no error line recorded) | – |" in md
    assert "no trial completed" in (tmp_path / "o2" / "report.html").read_text()
    assert "warning: failed: nothing to report" in capsys.readouterr().err


def test_two_runs_side_by_side(tmp_path):
    a = write_run(tmp_path / "results" / "routing", small_rows(), grids=False)
    rows_b = small_rows(rng_seed=1)
    for r in rows_b:
        r["fid"] = round(r["fid"] + 1.0, 4)
    b = write_run(tmp_path / "results" / "masking", rows_b, grids=False)
    out = build_report([a, b])
    assert out == a / "report+masking"  # with the first run
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


def test_report_lives_with_its_run_wherever_the_run_is(tmp_path, capsys):
    run = write_run(tmp_path / "my-runs" / "r", small_rows(), grids=False)  # a root not named results
    assert cli(["report", str(run)]) == 0
    assert (run / "report" / "report.html").is_file()
    captured = capsys.readouterr()
    assert f"wrote {run / 'report'}/" in captured.err
    assert captured.out == f"{run / 'report' / 'report.html'}\n"  # stdout: the report's path, for scripts
    assert cli(["report", str(run), "--out", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "report.html").is_file()
    assert json.loads((tmp_path / "elsewhere" / "report.json").read_text())["runs"] == [str(run.resolve())]


def test_sample_grids_keep_their_full_resolution_and_get_a_legible_thumbnail(tmp_path):
    run = write_run(tmp_path / "results" / "r", small_rows())  # 16 samples of 32 px, 8 a row
    out = build_report([run])
    manifest = json.loads((out / "report.json").read_text())
    assert manifest["samples"] and len(manifest["samples"]) == len(manifest["samples_full"])
    for thumb, full in zip(manifest["samples"], manifest["samples_full"]):
        trial = full[len("samples_"):-len("_full.png")]
        src = np.asarray(Image.open(run / "samples" / f"{trial}.png").convert("RGB"))
        assert np.array_equal(np.asarray(Image.open(out / "figures" / full).convert("RGB")), src)
        with Image.open(out / "figures" / thumb) as im:  # 256 x 64 grown 3x: 96 px a sample
            assert im.size == (768, 192)
            assert np.array_equal(np.asarray(im.convert("RGB"))[::3, ::3], src)  # nearest: pixels kept
    md = (out / "report.md").read_text()
    assert "](figures/samples_t0000.png)](figures/samples_t0000_full.png)" in md
    page = (out / "report.html").read_text()
    assert '<a href="figures/samples_t0000_full.png" title="full resolution"><img src="data:image/png;base64,' in page
    assert 'width="768"' in page


def test_text_to_image_grids_are_captioned_with_their_prompts(tmp_path):
    from sgbench.report.html_page import css_width
    from sgbench.report.samples import CAPTIONED_MAX

    prompts = ["a photo of a red disk", "two blue squares <i>left</i> of a ring"]
    run = write_run(tmp_path / "results" / "t2i", small_rows()[:3], captions=prompts)
    out = build_report([run])
    thumb = out / "figures" / "samples_t0000.png"
    with Image.open(thumb) as im:
        assert round(im.info["dpi"][0]) == 200 and im.width > 1500  # 4 samples a row, laid out in inches
    assert 700 < css_width(thumb) < 1000  # shown at its size in inches: captions at >= 9 px
    page = (out / "report.html").read_text()
    assert "with each sample&#x27;s prompt" in page
    assert html_escape(f"1. {prompts[0]}; 2. {prompts[1]}") in page  # alt text: every prompt, in order
    assert page.count(html_escape(prompts[1])) >= CAPTIONED_MAX // 2
    from sgbench.report.samples import collect_grids
    from sgbench.report.tables import RunSummaries
    from sgbench.report.runs import load_run

    grids = collect_grids([RunSummaries.of(load_run(run))], tmp_path)
    assert grids[0].prompts == [prompts[i % 2] for i in range(16)]


def html_escape(text):
    import html

    return html.escape(text)
