"""`sgbench run` end to end on a tiny random model the test saves: the real stages (models,
guidance, sampling, metrics, report), a few samples and steps, a tiny grid; then an interrupted
run resumed to completion."""

import csv
import json

import pytest
import torch
import yaml

from sgbench.cli import main


@pytest.fixture
def tiny_suite(tmp_path):
    from sgbench.metrics.classifier import ClassifierConfig, ShapeClassifier, save_classifier
    from sgbench.models.dit import DiT, DiTConfig
    from sgbench.models.loading import save_sgbench_safetensors

    torch.manual_seed(0)
    cfg = DiTConfig(input_size=32, patch_size=8, in_channels=3, hidden_size=32, depth=2, num_heads=2,
                    num_classes=10, learn_sigma=False, routes=["0-1"])
    save_sgbench_safetensors(tmp_path / "model.safetensors", DiT(cfg), parametrization="velocity")
    save_classifier(ShapeClassifier(ClassifierConfig(width=4, feature_dim=8)).eval(), tmp_path / "clf.safetensors")
    data = {
        "name": "tiny",
        "device": "cpu",
        "model": {"checkpoint": "model.safetensors"},
        "sampler": {"steps": 2, "batch_size": 4},
        "methods": [{"name": "unguided", "method": "none"}, {"name": "cfg", "method": "cfg", "omega": 1.5}],
        "search": {"space": {"gamma_strong": [0.0], "gamma_weak": [0.5, 0.75], "omega": [2.0]}},
        "metrics": {"extractor": "classifier", "weights": "clf.safetensors", "reference": {"dataset": "shapes", "n": 32},
                    "n_samples": 8, "batch_size": 8},
        "report": {"sample_grid": 4},
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_tiny_suite_runs_end_to_end(tiny_suite, tmp_path, capsys):
    code = main(["run", str(tiny_suite), "--out", str(tmp_path / "results"), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    run_dir = tmp_path / "results" / "tiny"
    # stdout is the outcome alone (scripts capture it); per-trial lines and progress go to stderr
    assert out == f"run: {run_dir}\nreport: {run_dir / 'report' / 'report.html'}\n"
    assert "b-unguided" in err and "b-unguided" not in out
    rows = read(run_dir / "trials.csv")
    assert [(r["trial_id"], r["method"], r["gamma_weak"]) for r in rows] == [
        ("b-unguided", "none", ""), ("b-cfg", "cfg", ""), ("s-0000", "sg", "0.5"), ("s-0001", "sg", "0.75")]
    for r in rows:
        assert r["status"] == "complete" and r["n_samples"] == "8" and r["seed"] == "0"
        for k in ("fd_classifier", "precision_classifier", "recall_classifier", "class_acc", "gflops", "images_per_s"):
            assert float(r[k]) == float(r[k]), k  # a number, not NaN
        for k in ("fd_classifier", "precision_classifier", "recall_classifier", "class_acc"):
            assert float(r[k + "_se"]) >= 0, k  # every quality metric has its bootstrap standard error
    g = {r["trial_id"]: float(r["gflops"]) for r in rows}
    assert g["b-cfg"] == pytest.approx(2 * g["b-unguided"])  # CFG: two dense passes
    header = list(rows[0])
    assert header[header.index("gflops"):header.index("gflops") + 3] == ["gflops", "gflops_attn", "images_per_s"]
    assert all(float(r["gflops_attn"]) > float(r["gflops"]) for r in rows)  # + the attention-score matmuls
    assert g["b-unguided"] < g["s-0001"] < g["s-0000"] < g["b-cfg"]  # sparser weak branch: cheaper
    import optuna

    url = f"sqlite:///{run_dir / 'study.db'}"
    summaries = optuna.get_all_study_summaries(url, include_best_trial=False)
    assert len(summaries) == 2  # the search and the baselines, objectives named as in trials.csv
    for s in summaries:
        assert optuna.load_study(study_name=s.study_name, storage=url).metric_names == [
            "fd_classifier"]
    env = json.loads((run_dir / "env.json").read_text())
    assert env["device"] == "cpu" and env["packages"]["optuna"] and "time_utc" in env
    assert yaml.safe_load((run_dir / "suite.yaml").read_text())["sampler"]["solver"] == "euler"
    assert sorted(p.name for p in (run_dir / "samples").glob("*.png")) == [
        "b-cfg.png", "b-unguided.png", "s-0000.png", "s-0001.png"]
    layout = json.loads((run_dir / "samples" / "b-cfg.json").read_text())  # what the report cuts and scales
    assert layout["tile"] == [32, 32] and layout["n"] == len(layout["labels"]) and layout["captions"] == []
    import importlib.util

    if importlib.util.find_spec("sgbench.report") is not None:  # the report stage ran last, into the run
        assert (run_dir / "report" / "report.md").is_file(), err


def test_interrupted_run_resumes_only_the_remaining_trials(tiny_suite, tmp_path, capsys, monkeypatch):
    from sgbench.run.stages import ClassStages as Stages

    calls = []
    real_stream = Stages.stream

    def stream(self, setting, seed, start, stop):
        calls.append(setting.label or setting.gamma_weak)
        if len(calls) == 3:  # the first search trial
            raise KeyboardInterrupt
        return real_stream(self, setting, seed, start, stop)

    monkeypatch.setattr(Stages, "stream", stream)
    out = str(tmp_path / "results")
    assert main(["run", str(tiny_suite), "--out", out, "--no-progress", "--no-report"]) == 130
    err = capsys.readouterr().err
    assert "--resume --name tiny" in err
    run_dir = tmp_path / "results" / "tiny"
    assert [r["trial_id"] for r in read(run_dir / "trials.csv")] == ["b-unguided", "b-cfg"]

    calls.clear()
    assert main(["run", str(tiny_suite), "--out", out, "--resume", "--no-progress", "--no-report"]) == 0
    assert capsys.readouterr().out == f"run: {run_dir}\n"  # no report written: no report line
    assert sorted(calls) == [0.5, 0.75]  # only the interrupted trial and the one never started
    rows = read(run_dir / "trials.csv")
    assert [r["trial_id"] for r in rows] == ["b-unguided", "b-cfg", "s-0000", "s-0001"]
    assert {r["gamma_weak"] for r in rows if r["role"] == "search"} == {"0.5", "0.75"}
    assert len({(r["trial_id"], r["seed"]) for r in rows}) == len(rows)
    assert json.loads((run_dir / "env.json").read_text())["resumes"][0]["argv"]


def test_gflops_average_over_the_evaluations_of_a_guidance_interval(tiny_suite):
    from sgbench.config import load_suite
    from sgbench.guidance import GuidanceConfig
    from sgbench.run.stages import ClassStages as Stages

    stages = Stages(load_suite(tiny_suite), "cpu", log=lambda m: None)
    stages.load()
    dense = stages.gflops(GuidanceConfig("none"))
    assert stages.gflops(GuidanceConfig("cfg", 2.0)) == pytest.approx(2 * dense)
    # 2 Euler steps at t = 0 and 0.5: guided (two passes) only at t = 0.5
    assert stages.gflops(GuidanceConfig("cfg", 2.0, interval=(0.25, 1.0))) == pytest.approx(1.5 * dense)
    assert stages.rule(GuidanceConfig("cfg", 2.0)) is stages.rule(GuidanceConfig("cfg", 2.0))  # built once


def test_sgbench_run_and_sgbench_flops_map_a_method_to_the_same_branches(tiny_suite, tmp_path, capsys):
    """Stages (`sgbench run`) and `sgbench flops` count through the same rule -> evaluation schedule ->
    FLOP model path: cfg at gamma_strong, omega = 1, intervals, Heun, the weak network's own arch."""
    from sgbench.config import load_suite
    from sgbench.guidance import GuidanceConfig
    from sgbench.models import DiT, DiTConfig
    from sgbench.models.loading import save_sgbench_safetensors
    from sgbench.run.flops import gflops_per_image, guided_flops
    from sgbench.run.stages import ClassStages as Stages

    data = yaml.safe_load(tiny_suite.read_text())
    small = DiTConfig(input_size=32, patch_size=8, in_channels=3, hidden_size=16, depth=1, num_heads=2,
                      num_classes=10, learn_sigma=False)
    save_sgbench_safetensors(tmp_path / "weak.safetensors", DiT(small), parametrization="velocity")
    data["model"]["weak_checkpoint"] = "weak.safetensors"
    data["methods"].append({"name": "ag", "method": "ag", "omega": 2.0})
    data["sampler"].update(solver="heun", steps=3)
    suite = tmp_path / "weak.yaml"
    suite.write_text(yaml.safe_dump(data))
    stages = Stages(load_suite(suite), "cpu", log=lambda m: None)
    stages.load()
    main_cfg = stages.denoisers["main"].backbone.config
    settings = [GuidanceConfig("cfg", 2.0, 0.5), GuidanceConfig("sg", 1.0, 0.0, 0.75),
                GuidanceConfig("cfg+sg", 2.0, 0.0, 0.5, interval=(0.3, 1.0)), GuidanceConfig("sg", 3.0, 0.25, 0.75)]
    for s in settings:
        cli = gflops_per_image(main_cfg, guidance=s, steps=3, solver="heun")
        assert (stages.gflops(s), stages.gflops_attn(s)) == (cli.gflops, cli.gflops_attn), s
    ag = GuidanceConfig("ag", 2.0)
    expected = guided_flops({"main": main_cfg, "weak": small}, stages.rule(ag), 3, "heun")
    assert stages.gflops(ag) == expected.gflops < 2 * stages.gflops(GuidanceConfig("none"))
    # the CLI takes the same options: cfg at gamma 0.5 on both branches (refused before)
    assert stages.gflops(settings[0]) == pytest.approx(2 * stages.gflops(GuidanceConfig(gamma_strong=0.5)))


@pytest.mark.slow
def test_the_quickstart_runs_end_to_end(tmp_path, capsys):
    """The shipped quickstart (about 5 minutes on 2 CPU cores): `make test-slow`."""
    from pathlib import Path

    suite = Path(__file__).resolve().parents[1] / "suites" / "quickstart.yaml"
    assert main(["run", str(suite), "--out", str(tmp_path / "results"), "--no-progress"]) == 0
    rows = read(tmp_path / "results" / "quickstart" / "trials.csv")
    assert [r["trial_id"] for r in rows[:4]] == ["b-unguided", "b-cfg", "b-ag", "b-cfg+sg"]
    assert len(rows) == 4 + 9 and {r["status"] for r in rows} <= {"complete", "pruned"}
    by_id = {r["trial_id"]: r for r in rows}
    # the shipped model responds to guidance: CFG is more faithful to the class than unguided
    assert float(by_id["b-cfg"]["class_acc"]) > float(by_id["b-unguided"]["class_acc"])
    for r in rows:
        assert 0 <= float(r["class_acc"]) <= 1 and float(r["fd_classifier"]) > 0 and float(r["gflops"]) > 0
    assert (tmp_path / "results" / "quickstart" / "report" / "report.html").is_file()
    # SG_FID-style cosine schedules on the shipped pair (weak network = the early checkpoint):
    # the two branches' rates mirror each other step by step, so the cost lies between 1 and 2 passes
    from sgbench.config import load_suite
    from sgbench.guidance import GuidanceConfig
    from sgbench.run.stages import ClassStages as Stages

    stages = Stages(load_suite(suite), "cpu", log=lambda m: None)
    stages.load()
    dense = stages.gflops(GuidanceConfig("none"))
    sched = stages.gflops(GuidanceConfig("ag+sg", 2.5, "cosine:0.0:0.6", "cosine:0.6:0.0"))
    assert dense < sched < 2 * dense


def test_maskdit_runs_get_gflops_without_a_warning(tiny_suite, tmp_path):
    import warnings

    from sgbench.config import load_suite
    from sgbench.models import forward_flops
    from sgbench.models.loading import save_sgbench_safetensors
    from sgbench.models.maskdit import MaskDiT, MaskDiTConfig
    from sgbench.guidance import GuidanceConfig
    from sgbench.run.stages import ClassStages as Stages

    torch.manual_seed(0)
    cfg = MaskDiTConfig(input_size=32, patch_size=8, in_channels=3, hidden_size=32, depth=2, num_heads=2,
                        num_classes=10, decoder_hidden_size=16, decoder_depth=1, decoder_num_heads=2)
    save_sgbench_safetensors(tmp_path / "mask.safetensors", MaskDiT(cfg), parametrization="edm")
    data = yaml.safe_load(tiny_suite.read_text())
    data["model"] = {"checkpoint": "mask.safetensors"}
    suite = tmp_path / "mask.yaml"
    suite.write_text(yaml.safe_dump(data))
    stages = Stages(load_suite(suite), "cpu", log=lambda m: None)
    stages.load()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dense = stages.gflops(GuidanceConfig("none"))
        sg = stages.gflops(GuidanceConfig("sg", 2.0, 0.0, 0.5))
    assert dense == pytest.approx(forward_flops(cfg, 0.0).fvcore / 1e9)  # fvcore's count: the paper's convention
    assert sg == pytest.approx((forward_flops(cfg, 0.0).fvcore + forward_flops(cfg, 0.5).fvcore) / 1e9)
    assert stages.gflops_attn(GuidanceConfig("sg", 2.0, 0.0, 0.5)) == pytest.approx(
        (forward_flops(cfg, 0.0).with_attention + forward_flops(cfg, 0.5).with_attention) / 1e9)
    assert dense < sg < 2 * dense


def test_unsupported_backbones_still_warn_once(tiny_suite):
    import math
    import warnings
    from types import SimpleNamespace

    from sgbench.config import load_suite
    from sgbench.guidance import GuidanceConfig
    from sgbench.run.stages import ClassStages as Stages

    stages = Stages(load_suite(tiny_suite), "cpu", log=lambda m: None)
    stages.denoisers["main"] = SimpleNamespace(backbone=SimpleNamespace(config=object()))
    with pytest.warns(UserWarning, match="GFLOPs not counted for this backbone"):
        assert math.isnan(stages.gflops(GuidanceConfig("none")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per run, not per setting
        assert math.isnan(stages.gflops(GuidanceConfig("cfg", 2.0)))
