"""T2I suites through `sgbench run`: tiny T2I DiT checkpoint -> guided sampling -> GenEval on the
shapes world (or HPSv3 through a fake-scorer worker) -> trials.csv, images, report."""

import csv
import html
import json
import sys

import numpy as np
import pytest
import torch
import yaml

from sgbench.cli import main
from sgbench.config import load_suite
from sgbench.errors import UserError
from sgbench.models.t2i_dit import T2IDiT, t2i_config
from sgbench.models.text_encoders import TextEncoderSpec
from sgbench.run.main import run_suite
from sgbench.guidance import GuidanceConfig
from sgbench.run.t2i_stages import T2IStages
from sgbench.t2i.model import load_t2i
from sgbench.t2i.scoring import BenchmarkPrompts
from sgbench.train.export import save_sgbench_model


def _checkpoint(tmp_path):
    cfg = t2i_config("T2I-tiny", input_size=16, patch_size=4, in_channels=3, text_dim=16)
    torch.manual_seed(0)
    model = T2IDiT(cfg)
    meta = {"family": "t2i", "config": cfg.to_dict(), "parametrization": "velocity", "image_size": 16,
            "text_encoder": TextEncoderSpec(kind="tiny", dim=16, max_length=12).to_dict(), "task": "t2i"}
    path = tmp_path / "tiny.safetensors"
    save_sgbench_model(path, model, meta)
    return path, model


def _suite(tmp_path, name="tiny", **changes) -> dict:
    path, _ = _checkpoint(tmp_path)
    suite = {
        "name": name, "device": "cpu", "seeds": [0, 1],
        "model": {"checkpoint": str(path)},
        "sampler": {"steps": 2, "batch_size": 5, "dtype": "fp32", "images_per_prompt": 2, "resolution": 16},
        "methods": [{"name": "unguided", "method": "none"},
                    {"name": "cfg+sg", "method": "cfg+sg", "omega": 2.5, "gamma_strong": 0.2, "gamma_weak": 0.7}],
        "benchmark": {"kind": "shapes_geneval", "n_per_tag": 1, "options": {"max_overlap": 0.5}},
        "report": {"enabled": False},
    }
    suite.update(changes)
    return suite


def _write(tmp_path, suite: dict):
    p = tmp_path / f"{suite['name']}.yaml"
    p.write_text(yaml.safe_dump(suite))
    return p


def _rows(run_dir):
    return list(csv.DictReader(open(run_dir / "trials.csv")))


def test_checkpoint_round_trip(tmp_path):
    path, model = _checkpoint(tmp_path)
    den, enc, meta = load_t2i(path)
    assert meta["family"] == "t2i" and enc.dim == 16
    x = torch.randn(2, 3, 16, 16)
    c = enc.encode(["a red circle", "a photo of two squares"])
    torch.testing.assert_close(den(x, 0.3, c), model(x, torch.full((2,), 0.3), c.emb, c.mask))
    with pytest.raises(UserError, match="--checkpoint"):
        load_t2i(tmp_path / "missing.safetensors")


def test_prompt_order_round_robins_over_groups():
    items = [{"prompt": str(i), "tag": t} for i, t in enumerate("aaabbc")]
    bp = BenchmarkPrompts(items, 2, "tag")
    assert bp.prompt_order() == [0, 3, 5, 1, 4, 2]
    assert bp.sample_order().tolist() == [0, 1, 6, 7, 10, 11, 2, 3, 8, 9, 4, 5]
    assert bp.locate(7) == (3, 1) and bp.total == 12


def test_geneval_suite_runs_baselines_and_search_and_keeps_images(tmp_path, capsys):
    suite = _suite(tmp_path, search={"method": "sg", "sampler": "grid",
                                     "space": {"gamma_strong": [0.0], "gamma_weak": [0.5], "omega": [2.0, 3.0]},
                                     "pruning": {"fidelities": [4]}},
                   report={"enabled": True, "out": str(tmp_path / "report")})
    run_dir = run_suite(_write(tmp_path, suite), out=tmp_path / "results", progress=False, log=lambda m: None).run_dir
    rows = _rows(run_dir)
    assert [(r["trial_id"], r["seed"]) for r in rows[:4]] == [("b-unguided", "0"), ("b-unguided", "1"),
                                                              ("b-cfg+sg", "0"), ("b-cfg+sg", "1")]
    assert {r["trial_id"] for r in rows[4:]} <= {"s-0000", "s-0001"} and len(rows) >= 6
    done = [r for r in rows if r["status"] == "complete"]
    assert all(r["n_samples"] == "12" and 0.0 <= float(r["geneval"]) <= 1.0 for r in done)
    # standard errors over prompts for the overall score and every tag
    assert all(float(r["geneval_se"]) >= 0 and float(r["geneval_counting_se"]) >= 0 for r in done)
    assert all(float(r["gflops"]) > 0 and float(r["images_per_s"]) > 0 for r in done)
    # cfg+sg (1 strong + 1 weak pass at gammas 0.2 / 0.7) costs less than two dense passes
    by = {r["trial_id"]: float(r["gflops"]) for r in done}
    assert by["b-unguided"] < by["b-cfg+sg"] < 2 * by["b-unguided"]
    # images in GenEval's folder layout, re-scored by `sgbench t2i geneval` to the same records
    folder = run_dir / "images" / "b-cfg+sg" / "seed0"
    res = [json.loads(x) for x in open(folder / "results.jsonl")]
    assert len(res) == 12 and {r["tag"] for r in res} == {"single_object", "two_object", "counting", "colors",
                                                          "position", "color_attr"}
    assert len(list(folder.glob("*/samples/*.png"))) == 12
    rescored = tmp_path / "rescore"
    import shutil

    shutil.copytree(folder, rescored, ignore=shutil.ignore_patterns("results.jsonl"))
    assert main(["t2i", "geneval", str(rescored), "--detector", "shapes", "--options", "max_overlap=0.5"]) == 0
    again = {(r["filename"].split("/")[-3], r["filename"].split("/")[-1]): r["correct"]
             for r in map(json.loads, open(rescored / "results.jsonl"))}
    ours = {(r["filename"].split("/")[-3], r["filename"].split("/")[-1]): r["correct"] for r in res}
    assert again == ours
    mean = np.mean([float(r["geneval"]) for r in rows if r["trial_id"] == "b-cfg+sg"])
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## GenEval per tag" in report and f"{mean:.2f}" in report
    assert main(["check", str(run_dir), "--baseline", str(run_dir)]) == 0  # the gate reads T2I runs too
    # each sample of a grid carries its prompt (sample id s renders prompt s // images_per_prompt),
    # and the report captions the samples with them
    layout = json.loads((run_dir / "samples" / "b-cfg+sg.json").read_text())
    prompt_of = {int(r["filename"].split("/")[-3]): r["prompt"] for r in res}
    assert layout["captions"] == [prompt_of[s // 2] for s in layout["labels"]] and layout["n"] == 12
    page = (tmp_path / "report" / "report.html").read_text()
    assert "with each sample&#x27;s prompt" in page and html.escape(layout["captions"][0]) in page
    assert (tmp_path / "report" / "figures" / "samples_b-cfg-sg_full.png").is_file()


def test_stream_is_independent_of_fidelity_and_batch(tmp_path):
    loaded = load_suite(_write(tmp_path, _suite(tmp_path)))
    stages = T2IStages(loaded, "cpu", log=lambda m: None)
    stages.load()
    setting = GuidanceConfig("cfg+sg", 2.0, 0.2, 0.7)
    whole = list(stages.stream(setting, 3, 0, 12))
    stages = T2IStages(loaded.derive({"suite.sampler.batch_size": 4}), "cpu", log=lambda m: None)
    stages.load()
    parts = list(stages.stream(setting, 3, 0, 5)) + list(stages.stream(setting, 3, 5, 12))
    cat = lambda bs, i: np.concatenate([b[i] for b in bs])  # noqa: E731
    np.testing.assert_array_equal(cat(whole, 0), np.arange(12))
    np.testing.assert_array_equal(cat(whole, 2), cat(parts, 2))  # same sample ids in the same order
    np.testing.assert_array_equal(cat(whole, 1), cat(parts, 1))  # and the same pixels
    assert sorted(cat(whole, 2).tolist()) == list(range(12))


def test_icg_uses_the_benchmark_prompts_as_random_conditions(tmp_path):
    suite = _suite(tmp_path, name="icg", seeds=[0], methods=[{"name": "icg", "method": "icg", "omega": 2.0}])
    rows = _rows(run_suite(_write(tmp_path, suite), out=tmp_path / "r", progress=False, log=lambda m: None).run_dir)
    assert [r["method"] for r in rows] == ["icg"] and rows[0]["status"] == "complete"


def test_hpsv3_suite_scores_through_the_worker(tmp_path, monkeypatch):
    """The whole HPSv3 path with the worker's deterministic fake scorer (mu = 10 * mean pixel)."""
    prompts = tmp_path / "hpdv3.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"a red circle {i}", "category": c}) + "\n"
                               for i, c in enumerate(["Animals", "Arts", "Animals", "Food"])))
    (tmp_path / "qwen").mkdir()
    (tmp_path / "qwen" / "config.json").write_text("{}")
    (tmp_path / "hps.safetensors").write_bytes(b"x")
    suite = _suite(tmp_path, name="hps", seeds=[0], methods=[{"name": "unguided", "method": "none"}],
                   benchmark={"kind": "hpsv3", "prompts": str(prompts), "hps_python": sys.executable,
                              "hps_base_model": str(tmp_path / "qwen"), "hps_checkpoint": str(tmp_path / "hps.safetensors")})

    class FakeScorer(T2IStages):
        def _load_scorer(self):
            super()._load_scorer()
            self.worker.scorer = "fake"

    monkeypatch.setattr("sgbench.run.t2i_stages.T2IStages", FakeScorer)
    run_dir = run_suite(_write(tmp_path, suite), out=tmp_path / "r", progress=False, log=lambda m: None).run_dir
    row = _rows(run_dir)[0]
    scores = [json.loads(x) for x in open(run_dir / "images" / "b-unguided" / "seed0" / "scores.jsonl")]
    assert len(scores) == 8
    from PIL import Image

    for s in scores:  # the fake scorer's mu, recomputed from the saved image
        img = np.asarray(Image.open(run_dir / "images" / "b-unguided" / "seed0" / s["image"]), np.float64)
        assert s["hpsv3"] == pytest.approx(10 * img.mean() / 255, abs=1e-6)
    animals = np.mean([s["hpsv3"] for s in scores if s["category"] == "Animals"])
    assert float(row["hpsv3_animals"]) == pytest.approx(animals)
    per_cat = [float(row[k]) for k in ("hpsv3_animals", "hpsv3_arts", "hpsv3_food")]
    assert float(row["hpsv3"]) == pytest.approx(np.mean(per_cat))  # overall = mean over categories


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda s: s["metrics"].update(n_samples=100), "exceeds the benchmark's 6 prompts x 2 images = 12"),
        (lambda s: s.update(search={"method": "sg", "space": {"gamma_strong": [0.0], "gamma_weak": [0.5],
                                                               "omega": [2.0]},
                                    "pruning": {"fidelities": [12]}}), "suite.search.pruning.fidelities[0]"),
        (lambda s: s["sampler"].update(resolution=32), "does not match the model (16 px)"),
        (lambda s: s["methods"].append({"name": "ag", "method": "ag", "omega": 2.0}), "not supported for text-to-image"),
        (lambda s: s["methods"].append({"name": "s", "method": "sg", "omega": 2, "gamma_strong": 0.7,
                                        "gamma_weak": 0.2}), "sg needs gamma_strong < gamma_weak (the weak branch is the sparser one), got 0.7 >= 0.2"),
        (lambda s: s["benchmark"]["options"].update(nms=0.5),
         "suite.benchmark.options.nms: unknown key (known: threshold, counting_threshold, max_objects, max_overlap"),
        (lambda s: s["benchmark"]["options"].update(threshold=1.5), "suite.benchmark.options.threshold: must be in [0, 1]"),
        (lambda s: s["benchmark"]["options"].update(crop="no"), "suite.benchmark.options.crop: expected true or false"),
        (lambda s: s["benchmark"].update(kind="hpsv3", prompts="p", hps_python="py", hps_base_model="b",
                                         hps_checkpoint="c"),
         "suite.benchmark.options: GenEval's options; kind hpsv3 is scored by the HPSv3 reward model, which takes none "
         "(remove max_overlap)"),
    ],
)
def test_bad_t2i_suites_exit_2_with_one_line(tmp_path, capsys, change, expected):
    suite = _suite(tmp_path, metrics={})
    change(suite)
    code = main(["run", str(_write(tmp_path, suite)), "--out", str(tmp_path / "results")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and expected in err, err


def test_benchmark_options_are_parsed_once_and_snapshot_as_given(tmp_path):
    from sgbench.metrics.benchmarks import GenEvalOptions

    loaded = load_suite(_write(tmp_path, _suite(tmp_path, metrics={})))
    assert loaded.suite.benchmark.options == GenEvalOptions(max_overlap=0.5)
    # the snapshot lists what differs from GenEval's defaults, as runs made before the options were typed
    assert loaded.snapshot()["benchmark"]["options"] == {"max_overlap": 0.5}
    assert loaded.derive({}).suite == loaded.suite


def test_the_shipped_t2i_quickstart_suite_is_valid():
    from pathlib import Path

    from sgbench.models.loading import read_sgbench_metadata

    loaded = load_suite(Path(__file__).resolve().parents[1] / "suites" / "t2i_quickstart.yaml")
    s = loaded.suite
    assert s.benchmark.kind == "shapes_geneval" and s.metrics.extractor == "geneval"
    meta = read_sgbench_metadata(loaded.files.checkpoint)
    assert meta["family"] == "t2i" and meta["image_size"] == s.sampler.resolution == 32


@pytest.mark.slow
def test_the_t2i_quickstart_runs_end_to_end(tmp_path):
    """The shipped T2I quickstart (about 4 minutes on 2 CPU cores): `make test-slow`."""
    from pathlib import Path

    suite = Path(__file__).resolve().parents[1] / "suites" / "t2i_quickstart.yaml"
    assert main(["run", str(suite), "--out", str(tmp_path / "results"), "--no-progress"]) == 0
    rows = _rows(tmp_path / "results" / "t2i_quickstart")
    assert [r["trial_id"] for r in rows[:4]] == ["b-unguided", "b-cfg", "b-sg", "b-cfg+sg"]
    assert len(rows) == 4 + 8 and {r["status"] for r in rows} <= {"complete", "pruned"}
    for r in rows:
        assert 0 <= float(r["geneval"]) <= 1 and float(r["gflops"]) > 0
    by_id = {r["trial_id"]: r for r in rows}
    # SG with gamma_strong = 0: one dense and one sparse pass, between 1 and 2 dense passes
    assert float(by_id["b-unguided"]["gflops"]) < float(by_id["b-sg"]["gflops"]) < float(by_id["b-cfg"]["gflops"])
    assert len(list((tmp_path / "results" / "t2i_quickstart" / "images" / "b-sg" / "seed0").glob("*/samples/*.png"))) == 268
    report = (tmp_path / "results" / "t2i_quickstart" / "report" / "report.md").read_text()
    assert "## GenEval per tag" in report


def test_an_interrupted_t2i_run_resumes(tmp_path, monkeypatch):
    """T2I suites fill in metrics.n_samples from the prompts: --resume compares the same snapshot."""
    from sgbench.run.t2i_stages import T2IStages

    suite = _write(tmp_path, _suite(tmp_path))
    real = T2IStages.stream
    calls = []

    def stream(self, *a):
        calls.append(a)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *a)

    monkeypatch.setattr(T2IStages, "stream", stream)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, out=tmp_path / "results", progress=False, log=lambda m: None)
    monkeypatch.setattr(T2IStages, "stream", real)
    result = run_suite(suite, out=tmp_path / "results", progress=False, log=lambda m: None, resume=True)
    assert result.exit_code == 0 and {r["status"] for r in _rows(result.run_dir)} == {"complete"}
