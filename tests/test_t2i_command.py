"""`sgbench t2i` subcommands: exit codes and outputs on the shapes world (no downloads)."""

import json
import sys

import pytest

from sgbench.cli import main
from sgbench.t2i.geneval import write_geneval_folder
from sgbench.t2i.shapes_world import render, sample_scenes


def test_geneval_shapes_and_summary(tmp_path, capsys):
    for i, (objects, meta) in enumerate(sample_scenes(6, seed=5)):
        write_geneval_folder(tmp_path / "imgs", i, meta, [render(objects)])
    assert main(["t2i", "geneval", str(tmp_path / "imgs"), "--detector", "shapes"]) == 0
    out = capsys.readouterr().out
    assert "Overall score (avg. over tasks): 1.00000" in out
    assert main(["t2i", "geneval-summary", str(tmp_path / "imgs" / "results.jsonl"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["overall"] == 1.0


def test_missing_inputs_exit_2_with_one_line(tmp_path, capsys):
    for i, (objects, meta) in enumerate(sample_scenes(1, seed=5)):
        write_geneval_folder(tmp_path / "imgs", i, meta, [render(objects)])
    assert main(["t2i", "geneval", str(tmp_path / "imgs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--detector-config" in err
    assert main(["t2i", "geneval", str(tmp_path / "imgs"), "--detector-config", str(tmp_path / "c.py"),
                 "--detector-checkpoint", str(tmp_path / "m.pth"), "--clip-weights", str(tmp_path / "clip.pt")]) == 2
    assert "CLIP weights not found" in capsys.readouterr().err
    assert main(["t2i", "hpsv3", str(tmp_path / "m.jsonl"), "--hps-python", "x", "--hps-base-model", "y",
                 "--hps-checkpoint", "z"]) == 2
    assert main(["run", str(tmp_path / "none.yaml")]) == 2
    assert main(["t2i", "shapes-prompts", "--n-per-tag", "2", "--out", str(tmp_path / "m.jsonl")]) == 0
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 12


def _mmcv_ops_or_raising_stub(monkeypatch):
    """mmcv-lite (no compiled ops, a 4-second install) is enough for Mask2Former on CPU: mmcv's
    deformable attention takes its pure-PyTorch path off-GPU. mmdet still imports `mmcv._ext`,
    so stand in a module whose every op raises: the test then also proves no compiled op ran."""
    import importlib

    from sgbench.rehearse.geneval import raising_mmcv_ops

    try:
        importlib.import_module("mmcv._ext")
    except ImportError:
        monkeypatch.setitem(sys.modules, "mmcv._ext", raising_mmcv_ops())


def _random_mask2former(tmp_path, monkeypatch):
    """(config path, checkpoint path, config) of GenEval's Swin-S Mask2Former with random weights."""
    pytest.importorskip("mmdet")
    _mmcv_ops_or_raising_stub(monkeypatch)
    from mmengine.config import Config

    from sgbench.rehearse.geneval import mask2former_config, write_mask2former

    cfg_path = mask2former_config()
    return str(cfg_path), write_mask2former(tmp_path / "m2f.pth", cfg_path, seed=0), Config.fromfile(str(cfg_path))


@pytest.mark.slow
def test_mask2former_smoke_with_random_weights(tmp_path, monkeypatch):
    """Needs the optional GenEval extra (mmdet 3.x; mmcv or mmcv-lite): builds GenEval's Swin-S
    Mask2Former with random weights, loads it through MMDetDetector (init_detector) and scores a
    GenEval folder with it, so the DetDataSample adapter runs on a real mmdet 3.x output."""
    import numpy as np
    from PIL import Image

    from sgbench.t2i import geneval as ge
    from sgbench.t2i.geneval_backends import MMDetDetector

    cfg_path, ckpt, cfg = _random_mask2former(tmp_path, monkeypatch)
    det = MMDetDetector(cfg_path, ckpt, "cpu")

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8))
    bbox, segm = det(image)
    assert len(bbox) == len(segm) == 80 and all(b.shape[1] == 5 and b.dtype == np.float32 for b in bbox)
    n = sum(len(b) for b in bbox)
    assert 0 < n <= cfg.model.test_cfg.max_per_image  # random queries still yield scored instances
    assert all(len(s) == len(b) for s, b in zip(segm, bbox))
    assert all(m.shape == (64, 96) and m.dtype == bool for s in segm for m in s)
    for b in bbox:
        assert np.all((b[:, 4] >= 0) & (b[:, 4] <= 1)) and np.all(b[:, 2] >= b[:, 0])

    # the whole scoring path on the real detector's output (colour by a stand-in: no CLIP here)
    meta = {"tag": "two_object", "include": [{"class": "person", "count": 1}, {"class": "dog", "count": 1}],
            "prompt": "a photo of a person and a dog"}
    ge.write_geneval_folder(tmp_path / "imgs", 0, meta, [np.asarray(image)])
    results = ge.evaluate_images(ge.iter_geneval_folder(tmp_path / "imgs"), det,
                                 lambda img, objs, cls: ["red"] * len(objs))
    assert len(results) == 1 and results[0]["tag"] == "two_object" and results[0]["correct"] in (True, False)


@pytest.mark.slow
def test_geneval_suite_with_mask2former_and_open_clip(tmp_path, monkeypatch):
    """`sgbench run` on a GenEval suite with the real backends: a random-weight Mask2Former
    (mmdet) and a tiny random open_clip model loaded from a weights file, over a tiny T2I DiT."""
    import csv

    import yaml

    pytest.importorskip("open_clip")
    from sgbench.models.t2i_dit import T2IDiT, t2i_config
    from sgbench.models.text_encoders import TextEncoderSpec
    from sgbench.rehearse.geneval import CLIP_ARCH, write_tiny_clip
    from sgbench.run.main import run_suite
    from sgbench.train.export import save_sgbench_model

    cfg_path, ckpt, _ = _random_mask2former(tmp_path, monkeypatch)
    write_tiny_clip(tmp_path / "clip.pt")

    cfg = t2i_config("T2I-tiny", input_size=32, patch_size=4, in_channels=3, text_dim=16)
    meta = {"family": "t2i", "config": cfg.to_dict(), "parametrization": "velocity", "image_size": 32,
            "text_encoder": TextEncoderSpec(kind="tiny", dim=16, max_length=12).to_dict(), "task": "t2i"}
    save_sgbench_model(tmp_path / "t2i.safetensors", T2IDiT(cfg), meta)
    prompts = [{"tag": "single_object", "include": [{"class": "dog", "count": 1}], "prompt": "a photo of a dog"},
               {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "red"}],
                "prompt": "a photo of a red car"}]
    (tmp_path / "meta.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    suite = {"name": "geneval_tiny", "device": "cpu", "model": {"checkpoint": str(tmp_path / "t2i.safetensors")},
             "sampler": {"steps": 2, "batch_size": 2, "dtype": "fp32", "images_per_prompt": 2},
             "methods": [{"name": "cfg+sg", "method": "cfg+sg", "omega": 2.5, "gamma_strong": 0.2, "gamma_weak": 0.7}],
             "benchmark": {"kind": "geneval", "metadata": str(tmp_path / "meta.jsonl"), "detector_config": cfg_path,
                           "detector_checkpoint": str(ckpt), "clip_weights": str(tmp_path / "clip.pt"),
                           "clip_arch": CLIP_ARCH, "options": {"threshold": 0.0}},
             "report": {"enabled": False}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(suite))
    from sgbench.t2i import geneval_backends

    calls = []
    real_call = geneval_backends.ClipColorClassifier.__call__
    monkeypatch.setattr(geneval_backends.ClipColorClassifier, "__call__",
                        lambda self, image, objects, cls: calls.append(cls) or real_call(self, image, objects, cls))
    run_dir = run_suite(tmp_path / "s.yaml", out=tmp_path / "results", progress=False, log=lambda m: None).run_dir
    row = next(csv.DictReader(open(run_dir / "trials.csv")))
    assert row["status"] == "complete" and row["n_samples"] == "4" and 0.0 <= float(row["geneval"]) <= 1.0
    assert {"geneval_single_object", "geneval_colors"} <= set(row) and float(row["gflops"]) > 0
    records = [json.loads(x) for x in open(run_dir / "images" / "b-cfg+sg" / "seed0" / "results.jsonl")]
    assert len(records) == 4 and {r["tag"] for r in records} == {"single_object", "colors"}
    assert all(isinstance(r["correct"], bool) and "reason" in r for r in records)
    # threshold 0: the random detector's cars count, so the red-car prompts reach CLIP's colour check
    assert calls and set(calls) == {"car"}
