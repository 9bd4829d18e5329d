"""T2I suite end to end on CPU: tiny T2I DiT checkpoint -> guided sampling -> shapes GenEval."""

import csv
import json

import pytest
import torch

from sgbench.errors import UserError
from sgbench.models.t2i_dit import T2IDiT, t2i_config
from sgbench.models.text_encoders import TextEncoderSpec
from sgbench.t2i.model import load_t2i
from sgbench.t2i.suite import load_t2i_suite, run_t2i_suite
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


def test_checkpoint_round_trip(tmp_path):
    path, model = _checkpoint(tmp_path)
    den, enc, meta = load_t2i(path)
    assert meta["family"] == "t2i" and enc.dim == 16
    x = torch.randn(2, 3, 16, 16)
    c = enc.encode(["a red circle", "a photo of two squares"])
    torch.testing.assert_close(den(x, 0.3, c), model(x, torch.full((2,), 0.3), c.emb, c.mask))
    with pytest.raises(UserError, match="--checkpoint"):
        load_t2i(tmp_path / "missing.safetensors")


def test_quickstart_like_suite_runs_and_tabulates(tmp_path):
    path, _ = _checkpoint(tmp_path)
    suite = tmp_path / "s.yaml"
    suite.write_text(f"""
name: tiny
device: cpu
seeds: [0, 1]
model: {{checkpoint: {path}}}
sampler: {{steps: 2, batch_size: 5, dtype: fp32, images_per_prompt: 2, resolution: 16}}
methods:
  - {{name: unguided, method: none}}
  - {{name: cfg+sg, method: cfg+sg, omega: 2.5, gamma_strong: 0.2, gamma_weak: 0.7}}
benchmark: {{kind: shapes_geneval, n_per_tag: 1, options: {{max_overlap: 0.5}}}}
""")
    icg = tmp_path / "icg.yaml"
    icg.write_text(suite.read_text().replace("name: tiny", "name: icg").replace("seeds: [0, 1]", "seeds: [0]")
                   .replace("method: cfg+sg, omega: 2.5, gamma_strong: 0.2, gamma_weak: 0.7", "method: icg, omega: 2.0"))
    rows = list(csv.DictReader(open(run_t2i_suite(icg, tmp_path / "results", progress=False) / "trials.csv")))
    assert [r["method"] for r in rows] == ["none", "icg"]
    run_dir = run_t2i_suite(suite, tmp_path / "results", progress=False)
    rows = list(csv.DictReader(open(run_dir / "trials.csv")))
    assert [(r["name"], r["seed"]) for r in rows] == [("unguided", "0"), ("cfg+sg", "0"), ("unguided", "1"),
                                                      ("cfg+sg", "1")]
    assert all(r["n_samples"] == "12" and 0.0 <= float(r["geneval"]) <= 1.0 for r in rows)
    res = [json.loads(x) for x in open(run_dir / "cfg+sg" / "seed0" / "results.jsonl")]
    assert len(res) == 12 and {r["tag"] for r in res} == {"single_object", "two_object", "counting", "colors",
                                                          "position", "color_attr"}
    table = (run_dir / "table.md").read_text().splitlines()
    assert table[0] == ("| Method | Overall | Single object | Two object | Counting | Colors | Position | "
                        "Color attribution | images/s |")
    assert table[2].startswith("| unguided |") and table[3].startswith("| cfg+sg |")


def test_suite_errors_name_the_key(tmp_path):
    bad = tmp_path / "b.yaml"
    bad.write_text("name: x\nmodel: {checkpoint: a}\nbenchmark: {kind: shapes_geneval}\nmethods:\n"
                   "  - {name: s, method: sg, omega: 2, gamma_strong: 0.7, gamma_weak: 0.2}\n")
    with pytest.raises(UserError, match="gamma_strong"):
        load_t2i_suite(bad)
    bad.write_text("name: x\nmodel: {checkpoint: a}\nbenchmark: {kind: geneval}\nmethods: [{name: u, method: none}]\n")
    with pytest.raises(UserError, match="suite.benchmark.metadata"):
        run_t2i_suite(bad, tmp_path)
    bad.write_text("name: x\nmodel: {checkpoint: a}\nbenchmark: {kind: shapes_geneval}\nmethods: [{name: u, method: none}]\n"
                   "colour: 1\n")
    with pytest.raises(UserError, match="colour"):
        load_t2i_suite(bad)
