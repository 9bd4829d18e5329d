"""Checkpoint sweeps in `sgbench run` (docs/sweeps.md): the suite schema, the checkpoints' own
records of their training iteration, and a tiny real sweep end to end — main and auxiliary
checkpoints, LPIPS to the conditional prediction, the report's sweep figures and the gate."""

import csv

import numpy as np
import pytest
import torch
import yaml

from sgbench.cli import main
from sgbench.config import load_suite
from sgbench.errors import UserError


def tiny_model(seed: int, depth: int = 2):
    """A tiny DiT whose weights are all random (DiT zero-initialises its output: every model would
    then sample the same images)."""
    from sgbench.models.dit import DiT, DiTConfig

    torch.manual_seed(seed)
    m = DiT(DiTConfig(input_size=32, patch_size=8, in_channels=3, hidden_size=32, depth=depth, num_heads=2,
                      num_classes=10, learn_sigma=False, routes=["0-1"]))
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.05)
    return m


def save(path, step=None, seed=0, depth=2):
    from sgbench.models.loading import save_sgbench_safetensors

    extra = None if step is None else {"train": {"steps": step}}
    save_sgbench_safetensors(path, tiny_model(seed, depth), parametrization="velocity", extra=extra)
    return path


@pytest.fixture
def files(tmp_path):
    from sgbench.metrics.classifier import ClassifierConfig, ShapeClassifier, save_classifier
    from sgbench.metrics.perceptual import write_standin_backbone

    for step in (10, 50, 100, 200):
        save(tmp_path / f"m{step}.safetensors", step, seed=step)
    torch.manual_seed(0)
    save_classifier(ShapeClassifier(ClassifierConfig(width=4, feature_dim=8)).eval(), tmp_path / "clf.safetensors")
    write_standin_backbone(tmp_path / "alex.pth")
    return tmp_path


def suite_data(model=None):
    return {
        "name": "sweep", "device": "cpu", "threads": 1,
        "model": model if model is not None else {"sweep": ["m200.safetensors", "m100.safetensors"],
                           "weak_sweep": ["m50.safetensors", "m10.safetensors"]},
        "sampler": {"steps": 2, "batch_size": 4},
        "methods": [{"name": "unguided", "method": "none"}, {"name": "cfg", "method": "cfg", "omega": 2.0},
                    {"name": "ag", "method": "ag", "omega": 2.0}],
        "search": {"method": "ag+sg", "space": {"gamma_strong": [0.0], "gamma_weak": [0.5], "omega": [2.0]}},
        "metrics": {"extractor": "classifier", "weights": "clf.safetensors", "reference": {"dataset": "shapes", "n": 16},
                    "n_samples": 8, "batch_size": 8, "lpips": {"weights": "alex.pth"}},
        "report": {"sample_grid": 4},
    }


def write(tmp_path, data, name="suite.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


def run_error(tmp_path, data, capsys) -> str:
    code = main(["run", str(write(tmp_path, data)), "--out", str(tmp_path / "results"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert not (tmp_path / "results").exists()  # refused before any run directory
    return err[0]


@pytest.mark.parametrize("model, expected", [
    ({"checkpoint": "m10.safetensors", "sweep": ["m50.safetensors"]}, "exactly one of checkpoint"),
    ({}, "exactly one of checkpoint"),
    ({"sweep": ["m50.safetensors", "m50.safetensors"]}, "suite.model.sweep[1].checkpoint: repeats"),
    ({"sweep": [{"checkpoint": "m50.safetensors", "step": 5}, {"checkpoint": "m10.safetensors", "step": 5}]},
     "suite.model.sweep[1].step: repeats"),
    ({"checkpoint": "m10.safetensors", "weak_checkpoint": "m10.safetensors", "weak_sweep": ["m50.safetensors"]},
     "at most one of weak_checkpoint or weak_sweep"),
    ({"sweep": ["m50.safetensors", "missing.safetensors"]}, "suite.model.sweep[1].checkpoint"),
])
def test_bad_sweeps_are_one_line_errors_before_the_run_directory(files, capsys, model, expected):
    data = suite_data(model)
    data["methods"] = data["methods"][:2]
    data["search"]["method"] = "sg"
    assert expected in run_error(files, data, capsys)


def test_a_weak_sweep_without_a_method_that_uses_it_is_refused(files, capsys):
    data = suite_data({"checkpoint": "m200.safetensors", "weak_sweep": ["m10.safetensors", "m50.safetensors"]})
    data["methods"] = data["methods"][:2]
    data["search"]["method"] = "sg"
    assert "suite.model.weak_sweep: no method or search uses a weak network" in run_error(files, data, capsys)


def test_lpips_samples_cannot_exceed_the_trials_samples(files, capsys):
    data = suite_data()
    data["metrics"]["lpips"]["n_samples"] = 9
    assert "suite.metrics.lpips.n_samples: must be <= metrics.n_samples (8)" in run_error(files, data, capsys)


def test_steps_come_from_the_files_and_a_contradiction_is_an_error(files, capsys):
    from sgbench.run.sweep import resolve_cells

    save(files / "plain.safetensors")  # records no training iteration
    data = suite_data({"sweep": ["m200.safetensors", {"checkpoint": "plain.safetensors", "step": 150},
                                 {"checkpoint": "m100.safetensors", "step": 100}]})
    data["methods"] = data["methods"][:2]
    data["search"]["method"] = "sg"
    cells = resolve_cells(load_suite(write(files, data)))
    assert [(c.main.step, c.main.given, c.weak) for c in cells] == [
        (100, "m100.safetensors", None), (150, "plain.safetensors", None), (200, "m200.safetensors", None)]
    assert [c.tag() for c in cells] == ["step100", "step150", "step200"]
    data["model"] = {"sweep": ["m200.safetensors", {"checkpoint": "m100.safetensors", "step": 99}]}
    assert ("suite.model.sweep[1].step: 99 is given, but " in (line := run_error(files, data, capsys))
            and "records step 100" in line)
    data["model"] = {"sweep": ["m200.safetensors", "plain.safetensors"]}
    assert "suite.model.sweep[1].step: " in (line := run_error(files, data, capsys))
    assert "does not record its training iteration" in line
    data["model"] = {"sweep": ["m200.safetensors", {"checkpoint": "plain.safetensors", "step": 200}]}
    assert "step 200 repeats sweep[0]" in run_error(files, data, capsys)
    save(files / "deep.safetensors", 300, depth=3)
    data["model"] = {"sweep": ["m200.safetensors", "deep.safetensors"]}
    assert "a sweep follows one training run" in run_error(files, data, capsys)


def test_train_files_record_their_step():
    from sgbench.models.loading import _as_step

    assert [_as_step(v) for v in (1000, 7.0, torch.tensor(12), -1, 2.5, True, "9", float("nan"))] == [
        1000, 7, 12, None, None, None, None, None]


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_a_sweep_runs_every_checkpoint_and_its_report_draws_the_sweep_figures(files, capsys):
    suite = write(files, suite_data())
    code = main(["run", str(suite), "--out", str(files / "results"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    run_dir = files / "results" / "sweep"
    got = rows(run_dir / "trials.csv")
    # per main step: the methods without a weak network once, then ag and the ag+sg search per auxiliary step
    per_step = ["b-unguided@step{m}", "b-cfg@step{m}", "b-ag@step{m}-weak10", "s-0000@step{m}-weak10",
                "b-ag@step{m}-weak50", "s-0000@step{m}-weak50"]
    assert [r["trial_id"] for r in got] == [t.format(m=m) for m in (100, 200) for t in per_step]
    header = list(got[0])
    assert header[header.index("seed") + 1:header.index("seed") + 5] == ["step", "checkpoint", "weak_step",
                                                                         "weak_checkpoint"]
    by = {r["trial_id"]: r for r in got}
    assert by["b-cfg@step200"]["step"] == "200" and by["b-cfg@step200"]["checkpoint"] == "m200.safetensors"
    assert by["b-cfg@step200"]["weak_step"] == "" and by["b-cfg@step200"]["weak_checkpoint"] == ""
    assert (by["s-0000@step100-weak50"]["weak_step"], by["s-0000@step100-weak50"]["weak_checkpoint"]) == (
        "50", "m50.safetensors")
    assert {r["status"] for r in got} == {"complete"}
    # each cell samples with its own networks
    fd = {t: float(r["fd_classifier"]) for t, r in by.items()}
    assert fd["b-unguided@step100"] != fd["b-unguided@step200"]
    assert fd["b-ag@step200-weak10"] != fd["b-ag@step200-weak50"]
    # LPIPS to the conditional prediction: the unguided dense sample is that prediction itself
    for t, r in by.items():
        assert float(r["lpips_cond_se"]) >= 0
        assert (float(r["lpips_cond"]) == 0.0) == t.startswith("b-unguided"), t
    for step in (100, 200):
        block = np.load(run_dir / "conditional" / f"step{step}" / "seed0" / "000000.npy")
        assert block.dtype == np.uint8 and block.shape == (8, 32, 32, 3)
    report = run_dir / "report"
    names = {p.name for p in (report / "figures").glob("*.png")}
    assert {"sweep_training_fd_classifier.png", "sweep_auxiliary_fd_classifier.png", "lpips_cond.png"} <= names
    md = (report / "report.md").read_text()
    assert "## Checkpoint sweep: best FD_classifier per method" in md
    assert "| 100 |" in md and "| 200 |" in md
    # the gate: newest checkpoint against the previous one (exit 0 or 1, a verdict, not an error)
    code = main(["check", str(run_dir), "--previous-checkpoint", "-v"])
    out = capsys.readouterr().out
    assert code in (0, 1) and "check sweep@step200-weak50 against sweep@step100-weak50: 4 matching settings" in out


def test_a_resumed_sweep_reuses_the_cached_conditional_predictions(files, capsys, monkeypatch):
    from sgbench.run import conditional

    data = suite_data({"sweep": ["m100.safetensors", "m200.safetensors"]})
    data["methods"] = data["methods"][:2]
    data["search"] = {"method": "sg", "space": {"gamma_strong": [0.0], "gamma_weak": [0.5], "omega": [2.0]}}
    data["report"] = {"enabled": False}
    suite = write(files, data)
    assert main(["run", str(suite), "--out", str(files / "results"), "--no-progress", "--max-trials", "2"]) == 3  # 3: trials left
    generated = []
    original = conditional.ConditionalPredictions._generate
    monkeypatch.setattr(conditional.ConditionalPredictions, "_generate",
                        lambda self, seed, c: generated.append((self.stages.cell.main.step, c)) or original(self, seed, c))
    code = main(["run", str(suite), "--out", str(files / "results"), "--no-progress", "--resume"])
    assert code == 0, capsys.readouterr().err
    assert generated == [(200, 0)]  # step 100's block was written by the first attempt
    got = rows(files / "results" / "sweep" / "trials.csv")
    assert [r["trial_id"] for r in got] == ["b-unguided@step100", "b-cfg@step100", "s-0000@step100",
                                            "b-unguided@step200", "b-cfg@step200", "s-0000@step200"]


def test_lpips_accumulator_means_and_bootstraps_per_sample_distances():
    from sgbench.metrics import bootstrap as bs
    from sgbench.metrics.perceptual import LpipsAccumulator, load_lpips, lpips_distance

    model = load_lpips(None, random_backbone=True)
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8) for _ in range(2))
    acc = LpipsAccumulator(model, "lpips_cond", bootstrap=50, seed=3, batch_size=4)
    acc.update(a[:4], b[:4], [0, 1, 2, 3])
    acc.update(a[4:], b[4:], [4, 5])
    d = lpips_distance(model, a, b)
    out = acc.compute()
    assert out["lpips_cond"] == pytest.approx(d.mean())
    assert out["lpips_cond_se"] == pytest.approx(bs.mean_se(d, bs.poisson_weights(3, 0, 6, 50)))
    assert LpipsAccumulator(model, "lpips_cond").compute() == {}
    with pytest.raises(UserError, match="2 positions for 1 images"):
        acc.update(a[:1], b[:1], [0, 1])


def test_lpips_loads_its_own_full_state_dict(tmp_path):
    from sgbench.metrics.perceptual import load_lpips, lpips_distance, write_standin_backbone

    first = load_lpips(write_standin_backbone(tmp_path / "alex.pth", seed=1))
    torch.save(first.state_dict(), tmp_path / "full.pth")
    again = load_lpips(tmp_path / "full.pth")
    rng = np.random.default_rng(1)
    a, b = (rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8) for _ in range(2))
    assert np.array_equal(lpips_distance(first, a, b), lpips_distance(again, a, b))
    torch.save({k: v for k, v in first.state_dict().items() if not k.startswith("lin0")} | {"lin9.x": torch.zeros(1)},
               tmp_path / "bad.pth")
    with pytest.raises(UserError, match="lack 'lin0"):
        load_lpips(tmp_path / "bad.pth")


def test_train_and_converted_files_record_their_step(tmp_path):
    from sgbench.models import DiT, dit_config
    from sgbench.models.convert import convert_checkpoint
    from sgbench.models.loading import ModelSpec, checkpoint_facts, read_checkpoint

    m = DiT(dit_config("DiT-S/2", input_size=8, num_classes=5, hidden_size=32, depth=4, num_heads=2, learn_sigma=False))
    torch.save({"model_state_dict": {"model." + k: v for k, v in m.state_dict().items()}, "step": 4000},
               tmp_path / "tread.pt")
    spec = ModelSpec(checkpoint=str(tmp_path / "tread.pt"), parametrization="rf", arch="DiT-S/2", input_size=8,
                     num_classes=5, config={"hidden_size": 32, "depth": 4, "num_heads": 2})
    assert read_checkpoint(spec.checkpoint).step == 4000
    out, _ = convert_checkpoint(spec, tmp_path / "conv.safetensors")
    facts = checkpoint_facts(ModelSpec(checkpoint=str(out)))  # lazy: shapes on the meta device, no weights
    assert facts.step == 4000 and facts.state_dict["x_embedder.proj.weight"].device.type == "meta"
    assert read_checkpoint(save(tmp_path / "s.safetensors", step=700)).step == 700
    assert read_checkpoint(save(tmp_path / "n.safetensors")).step is None


@pytest.mark.parametrize("name, swept", [("imagenet_sweep", "sweep"), ("imagenet_autoguidance_sweep", "weak_sweep"),
                                         ("quickstart_sweep", "sweep")])
def test_shipped_sweep_suites_resolve_their_checkpoints_steps(name, swept, tmp_path, monkeypatch):
    from pathlib import Path

    from sgbench.run.sweep import resolve_cells

    monkeypatch.setenv("SGBENCH_DATA", str(tmp_path))
    loaded = load_suite(Path(__file__).resolve().parents[1] / "suites" / f"{name}.yaml", check_files=False)
    entries = getattr(loaded.suite.model, swept)
    for path in getattr(loaded.files, swept):
        if not path.exists():  # a stand-in that records its step as the suite's file name says
            path.parent.mkdir(parents=True, exist_ok=True)
            save(path, step=int(path.stem.rsplit("-", 1)[1]))
    if loaded.files.checkpoint is not None:
        save(loaded.files.checkpoint, step=2_000_000)
    cells = resolve_cells(loaded)
    steps = [(c.weak if swept == "weak_sweep" else c.main).step for c in cells]
    assert len(steps) == len(entries) >= 2 and steps == sorted(steps)
    if name == "quickstart_sweep":
        assert steps == [1000, 8000]  # the shipped files record them


def test_the_checkpoints_sgbench_train_keeps_are_a_sweep(files):
    from sgbench.run.sweep import resolve_cells
    from sgbench.train import parse_train_config, train

    raw = {"task": "class_image", "data": {"name": "shapes", "n_train": 32, "n_heldout": 8},
           "model": {"patch_size": 8, "hidden_size": 32, "depth": 2, "num_heads": 2, "routes": ["0-0"]},
           "objective": {"route_rate": 0.5, "label_dropout": 0.2},
           "train": {"steps": 4, "batch_size": 4, "ckpt_every": 2, "keep_every": 2, "precision": "fp32"},
           "output": {"dir": str(files / "run")}}
    train(parse_train_config(raw), raw, progress=False)
    data = suite_data({"sweep": ["run/checkpoints/step_0000004.pt", "run/checkpoints/step_0000002.pt"]})
    data["methods"] = data["methods"][:2]
    data["search"]["method"] = "sg"
    cells = resolve_cells(load_suite(write(files, data)))
    assert [(c.main.step, c.main.given) for c in cells] == [(2, "run/checkpoints/step_0000002.pt"),
                                                            (4, "run/checkpoints/step_0000004.pt")]


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["model"].update(checkpoint=None, sweep=[d["model"]["checkpoint"]]),
     "suite.model.sweep: checkpoint sweeps are not supported for text-to-image suites"),
    (lambda d: d.setdefault("metrics", {}).update(lpips={"weights": "x.pth"}),
     "suite.metrics.lpips: LPIPS to the conditional prediction is measured for class-conditional suites only"),
])
def test_text_to_image_suites_refuse_sweeps_and_lpips(tmp_path, change, expected):
    from pathlib import Path

    data = yaml.safe_load((Path(__file__).resolve().parents[1] / "suites" / "t2i_quickstart.yaml").read_text())
    change(data)
    with pytest.raises(UserError, match="^" + expected.replace(".", r"\.")):
        load_suite(write(tmp_path, data), check_files=False)


def test_a_sweep_run_gains_checkpoints_on_resume_and_never_loses_one(files, capsys):
    data = suite_data({"sweep": ["m100.safetensors"]})
    data["methods"] = data["methods"][:2]
    data["search"] = {"method": "sg", "space": {"gamma_strong": [0.0], "gamma_weak": [0.5], "omega": [2.0]}}
    data["report"] = {"enabled": False}
    del data["metrics"]["lpips"]
    args = ["--out", str(files / "results"), "--no-progress"]
    assert main(["run", str(write(files, data)), *args]) == 0
    first = rows(files / "results" / "sweep" / "trials.csv")
    data["model"]["sweep"].append("m200.safetensors")  # training went on: gate its new checkpoint
    assert main(["run", str(write(files, data)), *args, "--resume"]) == 0
    got = rows(files / "results" / "sweep" / "trials.csv")
    assert [r["trial_id"] for r in got] == ["b-unguided@step100", "b-cfg@step100", "s-0000@step100",
                                            "b-unguided@step200", "b-cfg@step200", "s-0000@step200"]
    assert [r["duration_s"] for r in got[:3]] == [r["duration_s"] for r in first]  # step 100 was not re-run
    capsys.readouterr()
    assert main(["check", str(files / "results" / "sweep"), "--previous-checkpoint"]) in (0, 1)
    assert "check sweep@step200 against sweep@step100: 3 matching settings" in capsys.readouterr().out
    data["model"]["sweep"] = ["m200.safetensors"]
    assert main(["run", str(write(files, data)), *args, "--resume"]) == 2
    assert "suite.model.sweep[0] (m100.safetensors) is gone" in capsys.readouterr().err
