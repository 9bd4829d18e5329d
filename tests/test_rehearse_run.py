"""`sgbench run SUITE --rehearse` end to end on tiny suites: stand-ins, marking, the refusals by
`--resume` and `check`, and rehearsals that must fail exactly where a real run fails."""

import contextlib
import csv
import io
import json
import math
import os

import pytest
import torch
import yaml

from sgbench.cli import main
from sgbench.rehearse.marker import MARKER, NOTICE, is_rehearsal

TINY_DIT = {"config": {"depth": 2, "hidden_size": 32, "num_heads": 2, "input_size": 8, "num_classes": 10}}


def _suite(tmp_path, name="tiny", **model):
    """A class-conditional suite whose files are all missing (data/ does not exist)."""
    data = {
        "name": name, "device": "auto", "seeds": [0],
        "model": {"checkpoint": "data/ck/model.pt", "weak_checkpoint": "data/ck/early.pt", "arch": "SiT-S/2",
                  "routes": ["0-1"], "parametrization": "rf", "vae": "data/sd-vae", "options": TINY_DIT, **model},
        "sampler": {"steps": 10, "batch_size": 16},
        "methods": [{"name": "unguided", "method": "none"}, {"name": "cfg", "method": "cfg", "omega": 1.5},
                    {"name": "ag", "method": "ag", "omega": 2.0}],
        "search": {"method": "sg", "sampler": "grid",
                   "space": {"gamma_strong": [0.0, 0.25], "gamma_weak": [0.5], "omega": [1.5, 2.0]},
                   "pruning": {"fidelities": [100]}},
        "metrics": {"extractor": "classifier", "weights": "data/clf.safetensors", "reference": "data/ref.npz",
                    "n_samples": 200},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run(*args):
    """(exit code, stderr) of `sgbench ARGS`."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(list(map(str, args)))
    return code, err.getvalue()


def _rows(run_dir):
    with open(run_dir / "trials.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def rehearsed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rehearse")
    suite = _suite(tmp)
    torch.manual_seed(0)
    code, err = _run("run", suite, "--rehearse", "--out", tmp / "results", "--no-progress")
    return tmp, suite, code, err


def test_rehearsal_runs_every_baseline_two_search_points_and_a_rung(rehearsed):
    tmp, suite, code, err = rehearsed
    assert code == 0, err
    run_dir = tmp / "results" / "tiny-rehearsal"
    rows = _rows(run_dir)
    assert [r["trial_id"] for r in rows] == ["b-unguided", "b-cfg", "b-ag", "s-0000", "s-0001"]
    for r in rows:
        assert r["status"] in ("complete", "pruned") and r["n_samples"] in ("4", "6")
        assert math.isfinite(float(r["fd_classifier"])) and float(r["gflops"]) > 0 and float(r["images_per_s"]) > 0
    assert [r["n_samples"] for r in rows if r["status"] == "complete"] == ["6"] * sum(
        r["status"] == "complete" for r in rows)
    snapshot = yaml.safe_load((run_dir / "suite.yaml").read_text())
    assert snapshot["sampler"]["steps"] == 2 and snapshot["sampler"]["batch_size"] == 2
    assert snapshot["metrics"]["n_samples"] == 6 and snapshot["search"]["pruning"]["fidelities"] == [4]
    assert snapshot["search"]["budget"] == 2 and snapshot["device"] == "cpu"
    assert snapshot["model"]["checkpoint"] == str(run_dir / "standins" / "model.checkpoint" / "model.pt")
    assert not (tmp / "data").exists()  # stand-ins live in the run directory only
    report = run_dir / "report"
    assert (report / "report.html").is_file() and NOTICE in (report / "report.md").read_text()
    import html

    assert html.escape(NOTICE) in (report / "report.html").read_text()


def test_each_standin_is_announced_on_one_line(rehearsed):
    tmp, _, _, err = rehearsed
    standins = tmp / "results" / "tiny-rehearsal" / "standins"
    for key, what in [("model.checkpoint", "CompVis/tread training file"), ("model.weak_checkpoint", "CompVis/tread"),
                      ("model.vae", "AutoencoderKL"), ("metrics.weights", "ShapeClassifier"),
                      ("metrics.reference.path", "reference batch")]:
        lines = [ln for ln in err.splitlines() if ln.startswith(f"rehearsal: suite.{key}:")]
        assert len(lines) == 1 and what in lines[0] and str(standins / key) in lines[0], (key, lines)
        assert any((standins / key).iterdir())
    assert "your files: none (every file is a stand-in)" in err


def test_run_directory_is_marked(rehearsed):
    tmp = rehearsed[0]
    run_dir = tmp / "results" / "tiny-rehearsal"
    assert is_rehearsal(run_dir) and (run_dir / MARKER).read_text().startswith(NOTICE)
    assert "suite.model.checkpoint" in (run_dir / MARKER).read_text()
    env = json.loads((run_dir / "env.json").read_text())
    assert "suite.model.vae" in env["rehearsal"]["standins"]
    assert not is_rehearsal(tmp)


def test_real_resume_of_a_rehearsal_is_refused(rehearsed):
    tmp = rehearsed[0]
    snapshot = tmp / "results" / "tiny-rehearsal" / "suite.yaml"  # a suite whose files all exist
    code, err = _run("run", snapshot, "--out", tmp / "results", "--resume", "--name", "tiny-rehearsal")
    assert code == 2 and err.count("\n") == 1 and "is a rehearsal" in err and "--rehearse" in err


def _real_run_dir(path):
    path.mkdir(parents=True)
    (path / "suite.yaml").write_text("name: real\n")
    (path / "env.json").write_text("{}")
    (path / "trials.csv").write_text("trial_id,role,method,gamma_strong,gamma_weak,omega,fd_classifier,status\n"
                                     "b-unguided,baseline,none,0,,1,1.0,complete\n")
    return path


def test_check_refuses_a_rehearsal_as_baseline_and_as_new_run(rehearsed):
    tmp = rehearsed[0]
    rehearsal, real = tmp / "results" / "tiny-rehearsal", _real_run_dir(tmp / "results" / "real")
    code, err = _run("check", real, "--baseline", rehearsal)
    assert code == 2 and err.count("\n") == 1 and "--baseline" in err and "is a rehearsal" in err
    code, err = _run("check", rehearsal, "--baseline", real)
    assert code == 2 and err.count("\n") == 1 and "is a rehearsal" in err
    assert _run("check", real, "--baseline", real)[0] == 0


def test_rehearse_resume_continues_and_keeps_the_standins(rehearsed):
    tmp, suite, _, _ = rehearsed
    ck = tmp / "results" / "tiny-rehearsal" / "standins" / "model.checkpoint" / "model.pt"
    before = ck.stat().st_mtime_ns
    code, err = _run("run", suite, "--rehearse", "--resume", "--out", tmp / "results", "--no-progress", "--no-report")
    assert code == 0, err
    assert ck.stat().st_mtime_ns == before and not (tmp / "results" / "tiny-rehearsal-2").exists()
    assert len(_rows(tmp / "results" / "tiny-rehearsal")) == 5  # nothing ran twice


def test_rehearse_resume_of_a_real_run_is_refused(tmp_path):
    _real_run_dir(tmp_path / "results" / "x-rehearsal")  # a real run that happens to carry the name
    code, err = _run("run", _suite(tmp_path, "x"), "--rehearse", "--resume", "--out", tmp_path / "results")
    assert code == 2 and err.count("\n") == 1 and "is a real run" in err


def test_refused_plan_creates_nothing(tmp_path):
    suite = _suite(tmp_path, arch=None)  # a .pt stand-in needs the architecture
    code, err = _run("run", suite, "--rehearse", "--out", tmp_path / "results")
    assert code == 2 and err.count("\n") == 1 and "suite.model.arch" in err
    assert not (tmp_path / "results").exists()


def test_t2i_rehearsal_with_standin_dit_and_text_encoder(tmp_path):
    data = {"name": "t2i", "model": {"checkpoint": "data/t2i.safetensors"},
            "sampler": {"steps": 20, "batch_size": 8, "images_per_prompt": 2, "resolution": 32},
            "methods": [{"name": "cfg+sg", "method": "cfg+sg", "omega": 2.0, "gamma_strong": 0.2, "gamma_weak": 0.7}],
            "benchmark": {"kind": "shapes_geneval", "n_per_tag": 1}, "report": {"enabled": False}}
    (tmp_path / "t2i.yaml").write_text(yaml.safe_dump(data))
    code, err = _run("run", tmp_path / "t2i.yaml", "--rehearse", "--out", tmp_path / "results", "--no-progress")
    assert code == 0, err
    run_dir = tmp_path / "results" / "t2i-rehearsal"
    (row,) = _rows(run_dir)
    assert row["n_samples"] == "3" and 0.0 <= float(row["geneval"]) <= 1.0 and float(row["gflops"]) > 0
    assert "rehearsal: suite.model.text_encoder.path: tiny Hugging Face text encoder" in err
    assert "shrunk to 4 blocks" in err and (run_dir / "standins" / "model.text_encoder.path" / "text-encoder").is_dir()


def test_failed_validation_removes_the_rehearsal_directory(tmp_path):
    data = {"name": "t2i", "model": {"checkpoint": "sgbench:assets/t2i_shapes/model.safetensors"},
            "sampler": {"resolution": 64}, "methods": [{"name": "unguided", "method": "none"}],
            "benchmark": {"kind": "shapes_geneval"}}
    (tmp_path / "t2i.yaml").write_text(yaml.safe_dump(data))
    code, err = _run("run", tmp_path / "t2i.yaml", "--rehearse", "--out", tmp_path / "results")
    assert code == 2 and "resolution 64 does not match the model (32 px)" in err.splitlines()[-1]
    assert not (tmp_path / "results" / "t2i-rehearsal").exists()


# ---- a rehearsal fails exactly where a real run on the same files fails ---------------------

def _user_files(tmp_path, layout, family="dit", routes=("0-1",), param="velocity"):
    """A pixel-space tiny model in `layout` and a classifier: files a user would have."""
    from sgbench.models.dit import dit_config
    from sgbench.models.maskdit import maskdit_config
    from sgbench.rehearse.checkpoints import write_checkpoint
    from sgbench.rehearse.classifier import write_classifier

    small = dict(input_size=32, patch_size=8, in_channels=3, num_classes=10, depth=2, hidden_size=32, num_heads=2)
    if family == "maskdit":
        cfg = maskdit_config("MaskDiT-S/2", decoder_hidden_size=16, decoder_depth=1, decoder_num_heads=2, **small)
    else:
        cfg = dit_config("SiT-S/2", routes=list(routes), **small)
    suffix = ".safetensors" if layout == "sgbench" else ".pt"
    ck = write_checkpoint(tmp_path / f"model{suffix}", layout, family, cfg.to_dict(), param, seed=0)
    write_classifier(tmp_path / "clf.safetensors", image_size=32)
    return ck


PARITY = {  # (layout, family, suite model fields): real runs fail on some, pass on others
    "tread without parametrization": ("tread", "dit", {"arch": "SiT-S/2", "routes": ["0-1"], "family": "tread"}),
    "tread with rf": ("tread", "dit", {"arch": "SiT-S/2", "routes": ["0-1"], "parametrization": "rf"}),
    "maskdit without trust": ("maskdit", "maskdit", {"arch": "MaskDiT-S/2", "family": "maskdit"}),
    "maskdit with routes": ("maskdit", "maskdit", {"arch": "MaskDiT-S/2", "family": "maskdit", "routes": ["0-1"],
                                                   "trust_checkpoint": True}),
    "sgbench file, suite contradicts its parametrization": ("sgbench", "dit", {"parametrization": "rf"}),
}


def _parity_suite(tmp_path, case, checkpoint):
    layout, family, fields = PARITY[case]
    small = {"depth": 2, "hidden_size": 32, "num_heads": 2}
    if family == "maskdit":
        small.update(decoder_hidden_size=16, decoder_depth=1, decoder_num_heads=2)
    options = {"config": dict(small, input_size=32, patch_size=8, in_channels=3, num_classes=10)}
    if layout == "sgbench" and checkpoint.exists():
        options = {}  # an sgbench file records its architecture
    fields = dict(fields, arch=fields.get("arch", "SiT-S/2"))
    data = {"name": "p", "device": "cpu", "model": {"checkpoint": str(checkpoint), "options": options, **fields},
            "sampler": {"steps": 1, "batch_size": 2}, "methods": [{"name": "unguided", "method": "none"}],
            "metrics": {"extractor": "classifier", "weights": str(tmp_path / "clf.safetensors"),
                        "reference": {"dataset": "shapes", "n": 8}, "n_samples": 4},
            "report": {"enabled": False}}
    path = tmp_path / f"{checkpoint.parent.name}-{checkpoint.stem}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _last(err, *paths):
    line = err.splitlines()[-1]
    for p in paths:
        line = line.replace(str(p), "CHECKPOINT")
    return line


@pytest.mark.parametrize("case", sorted(PARITY))
def test_rehearsal_fails_where_the_real_run_fails(tmp_path, case):
    """Your file: the rehearsal uses it and meets the real run's checks. A stand-in of the same
    layout meets the same checks, except what only your file knows (what it records)."""
    layout, family, _ = PARITY[case]
    ck = _user_files(tmp_path, layout, family)
    suite = _parity_suite(tmp_path, case, ck)
    real = _run("run", suite, "--out", tmp_path / "real", "--no-progress")
    rehearsal = _run("run", suite, "--rehearse", "--out", tmp_path / "rh", "--no-progress")
    assert real[0] == rehearsal[0], (real, rehearsal)
    if real[0] != 0:  # the same one-line error
        assert _last(real[1]) == _last(rehearsal[1]) and _last(real[1]).startswith("sgbench run: error:")
    else:
        assert "your files: suite.metrics.weights, suite.model.checkpoint" in rehearsal[1]
    if layout == "sgbench":
        return  # a stand-in records what the suite says, so it cannot contradict it
    missing = tmp_path / "absent" / ck.name
    standin = _run("run", _parity_suite(tmp_path, case, missing), "--rehearse", "--out", tmp_path / "rh2",
                   "--no-progress")
    assert standin[0] == real[0], (real, standin)
    if real[0] != 0:
        made = tmp_path / "rh2" / "p-rehearsal" / "standins" / "model.checkpoint" / ck.name
        assert _last(standin[1], made) == _last(real[1], ck)


def test_standin_tread_without_parametrization_fails(tmp_path):
    suite = _suite(tmp_path, parametrization=None, family="tread")  # tread files record none
    code, err = _run("run", suite, "--rehearse", "--out", tmp_path / "results", "--no-progress")
    last = err.splitlines()[-1]
    assert code == 2 and "parametrization" in last and "edm" in last


def test_hpsv3_without_an_environment_is_refused_before_anything_is_made(tmp_path, monkeypatch):
    monkeypatch.delenv("SGBENCH_HPSV3_PYTHON", raising=False)
    code, err = _run("run", os.path.join(os.path.dirname(__file__), "..", "suites", "t2i_hpsv3.yaml"), "--rehearse",
                     "--out", tmp_path / "results")
    assert code == 2 and err.count("\n") == 1 and "SGBENCH_HPSV3_PYTHON" in err and "hps_python" in err
    assert not (tmp_path / "results").exists()


# ---- the plan of each shipped GPU suite ---------------------------------------------------

SHIPPED = os.path.join(os.path.dirname(__file__), "..", "suites")


GPU_SUITES = ["imagenet_autoguidance_sweep", "imagenet_grid", "imagenet_search", "imagenet_sweep", "imagenet_table2", "masking_grid",
              "masking_grid_maskdit_edm", "quickstart_autoguidance_sweep", "t2i_geneval", "t2i_hpsv3"]
# (quickstart_autoguidance_sweep reads the checkpoints `sgbench train` keeps: user files too)


def _rehearse_suites():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "rehearse_suites", os.path.join(os.path.dirname(__file__), "..", "benchmarks", "rehearse_suites.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_rehearse_finds_every_pinned_gpu_suite():
    assert _rehearse_suites().gpu_suites() == GPU_SUITES  # a new GPU suite gets its plan pinned below


@pytest.mark.parametrize("name,columns,figures", [
    ("imagenet_grid", ["fid"], []),
    ("imagenet_sweep", ["fid", "lpips_cond"], ["lpips_cond.png", "sweep_training_fid.png"]),
    ("imagenet_autoguidance_sweep", ["fid"], ["sweep_auxiliary_fid.png"]),
    ("t2i_hpsv3", ["hpsv3"], []),
])
def test_make_rehearse_checks_a_sweeps_columns_and_figures(name, columns, figures):
    assert _rehearse_suites().promised(os.path.join(SHIPPED, f"{name}.yaml")) == (columns, figures)


@pytest.mark.parametrize("name", GPU_SUITES)
def test_plan_of_the_shipped_suites(name):
    from sgbench.config.loader import load_suite
    from sgbench.rehearse.plan import rehearsal_suite

    suite = load_suite(os.path.join(SHIPPED, f"{name}.yaml"), check_files=False).suite
    s, notes = rehearsal_suite(suite, bf16_cpu=True)
    assert s.sampler.steps == 2 and s.sampler.batch_size == 2 and s.device == "cpu"
    assert s.sampler.dtype == ("bf16" if suite.sampler.dtype in ("auto", "bf16") else suite.sampler.dtype)
    from sgbench.rehearse.plan import code_path

    if suite.model.is_sweep:  # every code path, its first setting (each runs at every checkpoint)
        paths = [code_path(m) for m in suite.methods]
        firsts = {paths.index(c) for c in paths}
        assert [m.name for m in s.methods] == [suite.methods[i].name for i in sorted(firsts)]
    else:
        assert [m.name for m in s.methods] == [m.name for m in suite.methods]  # every baseline
    if s.benchmark is not None:
        assert s.metrics.n_samples == s.sampler.images_per_prompt + 1 and s.benchmark.hps_batch_size <= 2
    elif s.search is not None and s.search.pruning is not None:
        assert s.search.pruning.fidelities == (4,) and s.metrics.n_samples == 6
        assert (s.search.pruning.startup_trials or 0) <= 1
    else:
        assert s.metrics.n_samples == 4
    if s.search is not None:
        assert s.search.budget == 2 and s.search.storage is None
    assert suite.sampler.steps > 2 and notes[0].startswith("sizes: 2 euler steps")  # the suite itself is untouched
    for section in ("sweep", "weak_sweep"):  # a sweep: its first and last checkpoint
        entries = getattr(suite.model, section)
        kept = getattr(s.model, section)
        assert kept == (entries if len(entries) <= 2 else (entries[0], entries[-1]))
        if len(entries) > 2:
            assert f"model.{section}: 2 checkpoints, the first and the last (suite: {len(entries)})" in notes[1]
    if suite.metrics.lpips is not None:
        assert s.metrics.lpips.n_samples in (None, 2) and "LPIPS on" in notes[0]
    assert rehearsal_suite(suite, bf16_cpu=False)[0].sampler.dtype == "fp32"


def test_shared_storage_and_fixed_report_dir_are_not_touched(tmp_path):
    from sgbench.config.loader import load_suite
    from sgbench.rehearse.plan import rehearsal_suite

    data = yaml.safe_load(_suite(tmp_path).read_text())
    data["search"].update(storage="postgresql://db/sgbench", study_name="shared", sampler="tpe", budget=50)
    data["report"] = {"out": "/reports/paper"}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    s, notes = rehearsal_suite(load_suite(tmp_path / "s.yaml", check_files=False).suite, bf16_cpu=False)
    assert (s.search.storage, s.search.study_name, s.search.budget, s.report.out) == (None, None, 2, None)
    assert any("postgresql://db/sgbench" in n and "not touched" in n for n in notes)


def test_a_large_reference_of_yours_keeps_its_statistics_and_first_images(tmp_path):
    import numpy as np

    from sgbench.config.loader import load_suite
    from sgbench.rehearse.session import Rehearsal

    (tmp_path / "data").mkdir()
    images = np.random.default_rng(0).integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "data" / "ref.npz", arr_0=images, mu=np.zeros(3), sigma=np.eye(3))
    lines = []
    r = Rehearsal(load_suite(_suite(tmp_path), check_files=False), tmp_path / "results", None, False, lines.append)
    assert "suite.metrics.reference.path" in r.ctx.standin and not (tmp_path / "results").exists()  # planned only
    r.build(env={"argv": ["test"]})
    ref = r.loaded.files.reference
    with np.load(ref) as f:
        np.testing.assert_array_equal(f["arr_0"], images[:16])
        np.testing.assert_array_equal(f["sigma"], np.eye(3))
    assert any("your file's statistics and its first 16 images of 20" in ln for ln in lines)


# ---- checkpoint sweeps ------------------------------------------------------------------------

def _sweep_suite(tmp_path):
    """A sweep of three main checkpoints (sgbench files) and three auxiliary ones (tread files,
    the step in their names), LPIPS limited below a trial: every file missing."""
    data = yaml.safe_load(_suite(tmp_path, "sw").read_text())
    model = data["model"]
    del model["checkpoint"], model["weak_checkpoint"]
    model["sweep"] = [f"data/sweep/m-{s:07d}.safetensors" for s in (400, 800, 1200)]
    model["weak_sweep"] = ["data/aux/step_0000050.pt", {"checkpoint": "data/aux/other.pt", "step": 70},
                           "data/aux/step_0000100.pt"]
    data["metrics"]["lpips"] = {"weights": "data/alexnet-owt-7be5be79.pth", "n_samples": 100}
    data["search"].pop("pruning")
    data["search"]["method"] = "ag+sg"
    (tmp_path / "sw.yaml").write_text(yaml.safe_dump(data))
    return tmp_path / "sw.yaml"


def test_sweep_plan_keeps_the_first_and_last_checkpoint(tmp_path):
    from sgbench.config.loader import load_suite
    from sgbench.rehearse.plan import rehearsal_suite

    suite = load_suite(_sweep_suite(tmp_path), check_files=False).suite
    s, notes = rehearsal_suite(suite, bf16_cpu=False)
    assert [e.checkpoint for e in s.model.sweep] == ["data/sweep/m-0000400.safetensors", "data/sweep/m-0001200.safetensors"]
    assert [e.checkpoint for e in s.model.weak_sweep] == ["data/aux/step_0000050.pt", "data/aux/step_0000100.pt"]
    assert len(suite.model.sweep) == 3  # the suite itself is untouched
    assert ("sweeps: model.sweep: 2 checkpoints, the first and the last (suite: 3); "
            "model.weak_sweep: 2 checkpoints, the first and the last (suite: 3)") in notes
    assert s.metrics.lpips.n_samples == 2 and "LPIPS on 2 samples of a trial (suite: 100)" in notes[0]
    assert [m.name for m in s.methods] == ["unguided", "cfg", "ag"]  # three code paths: all kept


def test_sweep_plan_keeps_the_first_method_of_each_code_path(tmp_path):
    from sgbench.config.loader import load_suite
    from sgbench.rehearse.plan import rehearsal_suite

    data = yaml.safe_load(_sweep_suite(tmp_path).read_text())
    cfg = [{"name": f"cfg-{w}", "method": "cfg", "omega": w} for w in (1.3, 1.5, 1.7)]
    data["methods"] = [{"name": "unguided", "method": "none"}, *cfg, {"name": "cfg-1", "method": "cfg", "omega": 1.0},
                       {"name": "sg", "method": "sg", "omega": 1.5, "gamma_strong": 0.5, "gamma_weak": 0.9},
                       {"name": "sg-dense", "method": "sg", "omega": 1.5, "gamma_strong": 0.0, "gamma_weak": 0.9},
                       {"name": "sg-2", "method": "sg", "omega": 2.0, "gamma_strong": 0.4, "gamma_weak": 0.8},
                       {"name": "sg-cos", "method": "sg", "omega": 2.0, "gamma_strong": "cosine:0:0.6",
                        "gamma_weak": 0.8},
                       {"name": "ag", "method": "ag", "omega": 2.0}]
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(data))
    s, notes = rehearsal_suite(load_suite(tmp_path / "m.yaml", check_files=False).suite, bf16_cpu=False)
    assert [m.name for m in s.methods] == ["unguided", "cfg-1.3", "cfg-1", "sg", "sg-dense", "sg-cos", "ag"]
    assert ("methods: 7 (suite: 10): unguided, cfg-1.3, cfg-1, sg, sg-dense, sg-cos, ag, the first of each code "
            "path (cfg-1.5, cfg-1.7, sg-2 take the same)") in notes[1]
    data["model"] = {**data["model"], "checkpoint": "data/m.pt", "sweep": [], "weak_sweep": []}
    del data["model"]["sweep"], data["model"]["weak_sweep"]
    data["model"]["weak_checkpoint"] = "data/w.pt"
    (tmp_path / "one.yaml").write_text(yaml.safe_dump(data))
    s, _ = rehearsal_suite(load_suite(tmp_path / "one.yaml", check_files=False).suite, bf16_cpu=False)
    assert len(s.methods) == 10  # outside sweeps every baseline runs


@pytest.fixture(scope="module")
def rehearsed_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rehearse-sweep")
    suite = _sweep_suite(tmp)
    torch.manual_seed(0)
    code, err = _run("run", suite, "--rehearse", "--out", tmp / "results", "--no-progress")
    return tmp, code, err


def test_sweep_rehearsal_runs_every_cell_with_lpips(rehearsed_sweep):
    tmp, code, err = rehearsed_sweep
    assert code == 0, err
    run_dir = tmp / "results" / "sw-rehearsal"
    rows = _rows(run_dir)
    cells = {(r["step"], r["weak_step"]) for r in rows}
    assert cells == {("400", ""), ("1200", ""), ("400", "50"), ("400", "100"), ("1200", "50"), ("1200", "100")}
    assert all(r["fd_classifier"] and r["lpips_cond"] for r in rows)
    assert {float(r["lpips_cond"]) for r in rows if r["method"] == "none"} == {0.0}
    report = run_dir / "report"
    for figure in ("sweep_training_fd_classifier.png", "sweep_auxiliary_fd_classifier.png", "lpips_cond.png"):
        assert (report / "figures" / figure).is_file(), figure


def test_sweep_standins_record_their_steps(rehearsed_sweep):
    from sgbench.models.loading import read_checkpoint

    tmp, code, err = rehearsed_sweep
    standins = tmp / "results" / "sw-rehearsal" / "standins"
    made = {"model.sweep[0].checkpoint/m-0000400.safetensors": 400,
            "model.sweep[1].checkpoint/m-0001200.safetensors": 1200,
            "model.weak_sweep[0].checkpoint/step_0000050.pt": 50, "model.weak_sweep[1].checkpoint/step_0000100.pt": 100}
    shapes = set()
    for rel, step in made.items():
        ck = read_checkpoint(standins / rel)
        assert ck.step == step, rel
        shapes.add(tuple(sorted((k, tuple(v.shape)) for k, v in ck.state_dict.items())))
        key = f"suite.{rel.split('/')[0]}"
        (line,) = [ln for ln in err.splitlines() if ln.startswith(f"rehearsal: {key}:")]
        assert f"training step {step} (the step its file name states)" in line and str(standins / rel) in line
    assert len(shapes) == 1  # one training run: the same tensors
    assert "rehearsal: suite.metrics.lpips.weights: torchvision's alex backbone with random weights" in err
    assert "rehearsal: sweeps: model.sweep: 2 checkpoints, the first and the last (suite: 3)" in err


def test_sweep_standin_steps_follow_the_suite_then_the_names(tmp_path):
    from sgbench.config.loader import load_suite
    from sgbench.rehearse.session import Rehearsal

    data = yaml.safe_load(_sweep_suite(tmp_path).read_text())
    data["model"]["weak_sweep"] = [{"checkpoint": "data/aux/a.pt", "step": 7}, "data/aux/b.pt", "data/aux/c.pt"]
    data["model"]["sweep"] = ["data/sweep/early.safetensors", "data/sweep/late.safetensors"]
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    r = Rehearsal(load_suite(tmp_path / "s.yaml", check_files=False), tmp_path / "results", None, False, lambda m: None)
    from sgbench.rehearse.session import sweep_step

    assert sweep_step(r.ctx, "suite.model.weak_sweep[0].checkpoint") == (7, "the suite's step")
    assert sweep_step(r.ctx, "suite.model.sweep[1].checkpoint")[0] == 2  # no step in the names: the position


def test_check_previous_checkpoint_refuses_a_sweep_rehearsal(rehearsed_sweep):
    tmp, code, _ = rehearsed_sweep
    code, err = _run("check", tmp / "results" / "sw-rehearsal", "--previous-checkpoint")
    assert code == 2 and err.count("\n") == 1 and "is a rehearsal" in err


def test_a_sweep_standin_takes_your_files_architecture(tmp_path):
    """Your first checkpoint exists: it is used, and the stand-in for the last one is of the same
    training run (its recorded config and metadata), recording the step its name states."""
    from sgbench.config.loader import load_suite
    from sgbench.models.dit import dit_config
    from sgbench.models.loading import read_checkpoint, read_sgbench_metadata
    from sgbench.rehearse.checkpoints import write_checkpoint
    from sgbench.rehearse.session import Rehearsal

    cfg = dit_config("SiT-S/2", input_size=8, num_classes=10, depth=3, hidden_size=48, num_heads=3,
                     routes=["1-2"]).to_dict()
    mine = write_checkpoint(tmp_path / "data" / "sweep" / "m-0000400.safetensors", "sgbench", "dit", cfg, "rf",
                            seed=5, extra={"dataset": "mine"}, step=400)
    data = yaml.safe_load(_sweep_suite(tmp_path).read_text())
    data["model"].update(arch=None, parametrization=None, options={})
    data["model"]["sweep"] = ["data/sweep/m-0000400.safetensors", "data/sweep/m-0001200.safetensors"]
    (tmp_path / "mix.yaml").write_text(yaml.safe_dump(data))
    lines = []
    r = Rehearsal(load_suite(tmp_path / "mix.yaml", check_files=False), tmp_path / "results", None, False,
                  lines.append)
    r.build(env={"argv": ["test"]})
    assert r.loaded.files.sweep[0] == mine
    standin = r.loaded.files.sweep[1]
    meta = read_sgbench_metadata(standin)
    assert (meta["config"], meta["parametrization"], meta["dataset"], meta["train_steps"]) == (cfg, "rf", "mine", 1200)
    mine_shapes = {k: v.shape for k, v in read_checkpoint(mine).state_dict.items()}
    assert {k: v.shape for k, v in read_checkpoint(standin).state_dict.items()} == mine_shapes
    weak = read_checkpoint(r.loaded.files.weak_sweep[0], trust=False)
    assert weak.fmt == "sgbench-train" and weak.meta["config"] == cfg  # a .pt of a suite without arch
    assert {k: v.shape for k, v in weak.state_dict.items()} == mine_shapes
    assert any("your files: suite.model.sweep[0].checkpoint" in ln for ln in lines)
