"""Checkpoint sweeps in reports and in `sgbench check` (sgbench.report.sweep): synthetic run
directories whose best settings are known, so Fig. 5, Fig. 7 right, the newest-checkpoint view
and the gate against the previous checkpoint are checked exactly."""

import csv

import pytest
import yaml

from sgbench.cli import main
from sgbench.errors import UserError
from sgbench.report.runs import load_run
from sgbench.report import sweep

COLUMNS = ["trial_id", "role", "method", "gamma_strong", "gamma_weak", "omega", "schedule", "n_samples", "seed",
           "step", "checkpoint", "weak_step", "weak_checkpoint", "fid", "fid_se", "lpips_cond", "lpips_cond_se",
           "gflops", "status"]


def row(method, omega, step, fid, gs=0.0, gw="", weak=None, lpips=0.1, seed=0, status="complete"):
    return {"trial_id": f"{method}-{omega}-{gs}-{gw}@{step}-{weak}", "role": "baseline", "method": method,
            "gamma_strong": gs, "gamma_weak": gw, "omega": omega, "schedule": "", "n_samples": 100, "seed": seed,
            "step": step, "checkpoint": f"ck{step}.pt", "weak_step": "" if weak is None else weak,
            "weak_checkpoint": "" if weak is None else f"ck{weak}.pt", "fid": fid, "fid_se": 0.1,
            "lpips_cond": lpips, "lpips_cond_se": 0.01, "gflops": 1.0, "status": status}


def run_dir(tmp_path, rows, model, name="sweep"):
    d = tmp_path / "results" / name
    d.mkdir(parents=True)
    with open(d / "trials.csv", "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows(rows)
    (d / "suite.yaml").write_text(yaml.safe_dump({"name": name, "model": model}))
    return d


MAIN = {"sweep": ["ck1000.pt", "ck2000.pt", "ck4000.pt"]}


def training_rows(newest_cfg=9.0):
    out = []
    for step, (cfg_a, cfg_b, sg) in {1000: (20.0, 18.0, 15.0), 2000: (12.0, 14.0, 10.0),
                                     4000: (newest_cfg, 11.0, 8.0)}.items():
        out += [row("none", 1.0, step, 30.0, lpips=0.0), row("cfg", 1.5, step, cfg_a), row("cfg", 3.0, step, cfg_b),
                row("sg", 3.0, step, sg, gw=0.9)]
    return out


def test_fig5_takes_each_method_at_its_best_omega_per_checkpoint(tmp_path):
    run = load_run(run_dir(tmp_path, training_rows(), MAIN))
    assert sweep.main_steps(run) == [1000, 2000, 4000] and sweep.weak_steps(run) == []
    curve = sweep.training_curve(run, "fid")
    assert list(curve) == ["none", "cfg", "sg"]
    assert [(p.step, p.value("fid"), p.summary.setting.omega) for p in curve["cfg"]] == [
        (1000, 18.0, 3.0), (2000, 12.0, 1.5), (4000, 9.0, 1.5)]
    assert [p.value("fid") for p in curve["sg"]] == [15.0, 10.0, 8.0]
    newest = sweep.newest_view(run)
    assert newest.name == run.name and set(newest.trials["step"]) == {4000} and len(newest.trials) == 4


def test_fig7_right_takes_the_best_gammas_per_auxiliary_checkpoint(tmp_path):
    rows = [row("none", 1.0, 8000, 30.0)]
    for weak, best in ((500, (0.5, 0.0)), (1000, (0.25, 0.0)), (4000, (0.0, 0.5))):
        rows.append(row("ag", 2.0, 8000, 20.0 + weak / 1000, weak=weak))
        for gs in (0.0, 0.25, 0.5):
            for gw in (0.0, 0.5):
                rows.append(row("ag+sg", 2.0, 8000, 5.0 if (gs, gw) == best else 15.0, gs=gs, gw=gw, weak=weak))
    run = load_run(run_dir(tmp_path, rows, {"checkpoint": "ck8000.pt", "weak_sweep": ["a", "b", "c"]}))
    assert sweep.main_steps(run) == [] and sweep.weak_steps(run) == [500, 1000, 4000]
    curve = sweep.auxiliary_curve(run, "fid")
    assert list(curve) == ["ag", "ag+sg"]
    assert [(p.weak_step, p.value("fid")) for p in curve["ag"]] == [(500, 20.5), (1000, 21.0), (4000, 24.0)]
    assert [(p.weak_step, p.summary.setting.gamma_strong, p.summary.setting.gamma_weak) for p in curve["ag+sg"]] == [
        (500, 0.5, 0.0), (1000, 0.25, 0.0), (4000, 0.0, 0.5)]
    # the ordinary tables read the newest auxiliary checkpoint (and every method without one)
    newest = sweep.newest_view(run)
    assert sorted({(m, w) for m, w in zip(newest.trials["method"], newest.trials["weak_step"])},
                  key=str) == sorted({("none", None), ("ag", 4000), ("ag+sg", 4000)}, key=str)


def test_seeds_are_summarised_per_checkpoint_never_across(tmp_path):
    rows = [row("cfg", 1.5, 1000, 10.0, seed=0), row("cfg", 1.5, 1000, 12.0, seed=1),
            row("cfg", 1.5, 2000, 100.0, seed=0), row("cfg", 1.5, 2000, 102.0, seed=1)]
    run = load_run(run_dir(tmp_path, rows, {"sweep": ["a", "b"]}))
    cells = sweep.cell_summaries(run)
    assert [(st, s.mean("fid"), len(s.seeds)) for st, _, s in cells] == [(1000, 11.0, 2), (2000, 101.0, 2)]


def test_the_report_of_a_sweep_draws_fig5_and_tabulates_the_sweep(tmp_path):
    failed = row("cfg", 3.0, 1000, "", status="failed")  # its best is then cfg at ω=1.5
    d = run_dir(tmp_path, [r for r in training_rows() if r["trial_id"] != failed["trial_id"]] + [failed], MAIN)
    assert main(["report", str(d), "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Checkpoint sweep: best FID per method" in md
    assert "| 2000 | 30.00 ± 0.10 (ω=1) | 12.00 ± 0.10 (ω=1.5) | 10.00 ± 0.10 (γ=(0, 0.9) ω=3) | 4 |" in md
    assert "| 1000 | 30.00 ± 0.10 (ω=1) | 20.00 ± 0.10 (ω=1.5) | 15.00 ± 0.10 (γ=(0, 0.9) ω=3) | 4 (1 failed) |" in md
    figures = {p.name for p in (tmp_path / "rep" / "figures").glob("*.png")}
    assert {"sweep_training_fid.png", "lpips_cond.png"} <= figures
    assert "sweep_auxiliary_fid.png" not in figures  # no auxiliary sweep
    # the guidance table shows the newest checkpoint only: cfg at step 4000, not the 1000/2000 rows
    guidance = md.split("## Guidance methods")[1].split("##")[0]
    assert "9.00" in guidance and "18.00" not in guidance and "12.00" not in guidance


def test_lpips_figure_takes_each_guided_method_at_its_best_setting(tmp_path):
    from sgbench.report.tables import RunSummaries

    rows = [row("none", 1.0, 1, 30.0, lpips=0.0), row("cfg", 1.5, 1, 12.0, lpips=0.3),
            row("cfg", 3.0, 1, 14.0, lpips=0.5), row("sg", 3.0, 1, 10.0, gw=0.9, lpips=0.2)]
    rs = RunSummaries.of(load_run(run_dir(tmp_path, rows, {"checkpoint": "x"})))
    got = sweep.lpips_points(rs.summaries, "fid", "lpips_cond")
    assert [(s.setting.method, s.mean("lpips_cond")) for s in got] == [("cfg", 0.3), ("sg", 0.2)]


def gate(tmp_path, rows, model, *extra):
    d = run_dir(tmp_path, rows, model)
    return main(["check", str(d), *extra])


def test_check_gates_the_newest_checkpoint_against_the_previous_one(tmp_path, capsys):
    assert gate(tmp_path / "ok", training_rows(newest_cfg=9.0), MAIN, "--previous-checkpoint") == 0
    out = capsys.readouterr().out
    assert "check sweep@step4000 against sweep@step2000: 4 matching settings" in out
    assert gate(tmp_path / "bad", training_rows(newest_cfg=13.0), MAIN, "--previous-checkpoint") == 1
    out = capsys.readouterr().out
    assert "REGRESSED FID at method=cfg γs=0 γw=- ω=1.5" in out and "12 -> 13" in out


@pytest.mark.parametrize("rows, model, message", [
    ([row("cfg", 1.5, 1000, 10.0)], {"sweep": ["a"]}, "has one main checkpoint"),
    ([row("ag", 2.0, 8000, 10.0, weak=1), row("ag", 2.0, 8000, 10.0, weak=2)], {"checkpoint": "x", "weak_sweep": ["a", "b"]},
     "has no checkpoint sweep of the main network"),
])
def test_check_previous_checkpoint_needs_a_main_sweep_of_two(tmp_path, capsys, rows, model, message):
    assert gate(tmp_path, rows, model, "--previous-checkpoint") == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_check_of_two_sweep_runs_compares_their_newest_checkpoints(tmp_path, capsys):
    base = run_dir(tmp_path, training_rows(newest_cfg=9.0), MAIN, name="base")
    new = run_dir(tmp_path, training_rows(newest_cfg=9.0)[:-4] + training_rows(newest_cfg=9.05)[-4:], MAIN, name="new")
    assert main(["check", str(new), "--baseline", str(base)]) == 0
    assert "4 matching settings" in capsys.readouterr().out


def test_newest_and_previous_views_are_named_by_their_checkpoints(tmp_path):
    rows = [row("ag", 2.0, s, 10.0, weak=w) for s in (1000, 2000) for w in (10, 20)]
    run = load_run(run_dir(tmp_path, rows, {"sweep": ["a", "b"], "weak_sweep": ["c", "d"]}))
    new, prev = sweep.newest_and_previous(run)
    assert (new.name, prev.name) == ("sweep@step2000-weak20", "sweep@step1000-weak20")
    assert list(new.trials["trial_id"]) == ["ag-2.0-0.0-@2000-20"]
    with pytest.raises(UserError):
        sweep.newest_and_previous(load_run(run_dir(tmp_path / "x", rows[:1], {"sweep": ["a"]})))
