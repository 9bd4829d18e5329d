"""`sgbench check`: planted regressions, equal runs, seed noise, bad input, baselines by name."""

import math

import pytest

from sgbench.cli import main as cli
from sgbench.errors import UserError
from sgbench.report.gate import Tolerance, compare_runs, parse_tolerances
from sgbench.report.runs import load_run
from sgbench.report.synthetic import write_run


def rows(fids_by_setting, seeds=(0, 1, 2), acc=0.9, gflops=100.0, extra=None):
    """fids_by_setting: {(method, gs, gw, omega): [fid per seed]}."""
    out = []
    for (method, gs, gw, omega), fids in fids_by_setting.items():
        for seed, fid in zip(seeds, fids):
            r = {"trial_id": f"{method}{gs}{gw}{omega}s{seed}", "role": "search", "method": method,
                 "gamma_strong": gs, "gamma_weak": gw, "omega": omega, "schedule": "", "n_samples": 1000,
                 "seed": seed, "fid": fid, "class_acc": acc, "gflops": gflops, "status": "complete"}
            out.append({**r, **(extra or {})})
    return out


BASE = {("sg", 0.5, 0.9, 3.0): [10.0, 12.0, 14.0], ("cfg", 0.0, 0.0, 2.0): [8.0, 8.5, 9.0]}


def run(tmp_path, name, fids=BASE, **kw):
    return write_run(tmp_path / "results" / name, rows(fids, **kw), grids=False)


def test_equal_run_passes(tmp_path, capsys):
    base = run(tmp_path, "base")
    new = run(tmp_path, "new")
    assert cli(["check", str(new), "--baseline", str(base)]) == 0
    out = capsys.readouterr().out
    assert "2 matching settings" in out and "result: OK" in out


def test_planted_regression_fails_and_is_named(tmp_path, capsys):
    base = run(tmp_path, "base")
    worse = dict(BASE)
    worse[("sg", 0.5, 0.9, 3.0)] = [11.0, 13.0, 15.0]  # +1 FID on every paired seed
    new = run(tmp_path, "new", worse)
    assert cli(["check", str(new), "--baseline", str(base), "--tolerance", "fid=0.5"]) == 1
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("REGRESSED"))
    assert line == ("REGRESSED FID at method=sg γs=0.5 γw=0.9 ω=3 schedule=- n=1000: 12 -> 13 "
                    "(worse by 1; tolerance 0.5; 2σ=0 over 3 paired seeds)")
    assert "result: 1 regression(s)" in out
    # a larger fixed tolerance lets the same shift pass
    assert cli(["check", str(new), "--baseline", str(base), "--tolerance", "fid=1.5"]) == 0


def test_higher_is_better_metric_and_relative_tolerance(tmp_path, capsys):
    base = run(tmp_path, "base", acc=0.90)
    new = run(tmp_path, "new", acc=0.88)
    assert cli(["check", str(new), "--baseline", str(base), "--tolerance", "class_acc=1%"]) == 1
    assert "REGRESSED Acc." in capsys.readouterr().out
    assert cli(["check", str(new), "--baseline", str(base), "--tolerance", "class_acc=0.03"]) == 0
    # improvements never fail
    assert cli(["check", str(base), "--baseline", str(new), "--tolerance", "0"]) == 0


def test_difference_within_seed_noise_passes(tmp_path):
    base = run(tmp_path, "base")
    noisy = dict(BASE)
    noisy[("sg", 0.5, 0.9, 3.0)] = [12.5, 11.0, 14.5]  # paired diffs 2.5, -1, 0.5: mean 0.67, se 1.02
    new = run(tmp_path, "new", noisy)
    tol = parse_tolerances("fid=0.1")
    res = compare_runs(load_run(new), load_run(base), tol, k=2.0)
    c = next(c for c in res.comparisons if c.metric == "fid" and c.setting.method == "sg")
    assert c.paired == 3 and math.isclose(c.worse_by, 2 / 3) and math.isclose(c.noise, 2 * 1.0137937550497031)
    assert res.ok
    assert not compare_runs(load_run(new), load_run(base), tol, k=0.0).ok  # fixed delta alone fails


def test_unpaired_noise_and_bootstrap_se_column(tmp_path):
    base = run(tmp_path, "base")
    shifted = {k: [v + 1.0 for v in vs] for k, vs in BASE.items()}
    new = run(tmp_path, "new", shifted, seeds=(3, 4, 5))  # other seeds: unpaired, se = 2/sqrt(3) each
    res = compare_runs(load_run(new), load_run(base), parse_tolerances("fid=0.5"), k=2.0)
    c = next(c for c in res.comparisons if c.metric == "fid" and c.setting.method == "sg")
    assert c.paired == 0 and math.isclose(c.noise, 2 * math.sqrt(2 * 4 / 3)) and not c.regressed
    # one seed per run, bootstrap standard errors in fid_se
    one = {("sg", 0.5, 0.9, 3.0): [10.0]}
    b1 = run(tmp_path, "b1", one, seeds=(0,), extra={"fid_se": 0.3})
    n1 = run(tmp_path, "n1", {("sg", 0.5, 0.9, 3.0): [10.7]}, seeds=(0,), extra={"fid_se": 0.4})
    res = compare_runs(load_run(n1), load_run(b1), parse_tolerances("fid=0.1"), k=2.0)
    c = res.comparisons[0]
    assert math.isclose(c.noise, 1.0) and not c.regressed  # 0.7 < 2·sqrt(0.3²+0.4²) = 1.0
    assert not compare_runs(load_run(n1), load_run(b1), parse_tolerances("fid=0.1"), k=1.0).ok


def test_failed_setting_in_new_run_is_a_regression(tmp_path, capsys):
    base = run(tmp_path, "base")
    new_rows = rows(BASE)
    for r in new_rows:
        if r["method"] == "cfg":
            r["status"], r["fid"] = "failed", ""
    new = write_run(tmp_path / "results" / "new", new_rows, grids=False)
    assert cli(["check", str(new), "--baseline", str(base)]) == 1
    assert "FAILED    every trial at method=cfg" in capsys.readouterr().out


def test_baseline_by_name_under_results(tmp_path, monkeypatch, capsys):
    run(tmp_path, "quickstart-2026-01-01T00-00")
    run(tmp_path, "new")
    monkeypatch.chdir(tmp_path)
    assert cli(["check", "new", "--baseline", "quickstart-2026-01-01T00-00"]) == 0
    assert cli(["check", "new", "--baseline", "quickstart-2026"]) == 0  # unique prefix
    run(tmp_path, "quickstart-2026-02-01T00-00")
    capsys.readouterr()
    assert cli(["check", "new", "--baseline", "quickstart-2026"]) == 2
    assert "ambiguous" in capsys.readouterr().err


@pytest.mark.parametrize("case, message", [
    ("missing", "run directory not found"),
    ("empty", "has no completed trials"),
    ("nomatch", "no matching settings"),
    ("badtol", "bad --tolerance item 'fid=x'"),
    ("unknown", "unknown metric 'fidd' in --tolerance"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, case, message):
    base = run(tmp_path, "base")
    new = run(tmp_path, "new")
    args = ["check", str(new), "--baseline", str(base)]
    if case == "missing":
        args[3] = str(tmp_path / "nope")
    elif case == "empty":
        empty = tmp_path / "empty"
        empty.mkdir()
        (empty / "trials.csv").write_text("")
        args[3] = str(empty)
    elif case == "nomatch":
        args[1] = str(run(tmp_path, "other", {("sg", 0.1, 0.2, 9.0): [1.0, 1.0, 1.0]}))
    elif case == "badtol":
        args += ["--tolerance", "fid=x"]
    else:
        args += ["--tolerance", "fidd=1"]
    assert cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_parse_tolerances():
    tol = parse_tolerances(["fid=0.5,class_acc=0.01", "2%"])
    assert tol == {"default": Tolerance(0.02, True), "fid": Tolerance(0.5), "class_acc": Tolerance(0.01)}
    assert tol["default"].allowed(-50.0) == 1.0
    with pytest.raises(UserError):
        parse_tolerances("fid=-1")
