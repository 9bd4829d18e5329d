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
    import importlib.machinery
    import types

    try:
        importlib.import_module("mmcv._ext")
        return
    except ImportError:
        pass

    class RaisingOps(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)

            def op(*args, **kwargs):
                raise AssertionError(f"compiled mmcv op {name} called on CPU")

            return op

    stub = RaisingOps("mmcv._ext")
    stub.__spec__ = importlib.machinery.ModuleSpec("mmcv._ext", None)  # pkgutil probes it
    monkeypatch.setitem(sys.modules, "mmcv._ext", stub)


@pytest.mark.slow
def test_mask2former_smoke_with_random_weights(tmp_path, monkeypatch):
    """Needs the optional GenEval extra (mmdet 3.x; mmcv or mmcv-lite): builds GenEval's Swin-S
    Mask2Former with random weights, loads it through MMDetDetector (init_detector) and scores a
    GenEval folder with it, so the DetDataSample adapter runs on a real mmdet 3.x output."""
    mmdet = pytest.importorskip("mmdet")
    _mmcv_ops_or_raising_stub(monkeypatch)
    import os

    import numpy as np
    import torch
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from PIL import Image

    from sgbench.t2i import geneval as ge
    from sgbench.t2i.geneval import COCO_OBJECT_NAMES
    from sgbench.t2i.geneval_backends import MMDetDetector

    register_all_modules()
    cfg_path = os.path.join(os.path.dirname(mmdet.__file__), ".mim", "configs", "mask2former",
                            "mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco.py")
    cfg = Config.fromfile(cfg_path)
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    ckpt = tmp_path / "m2f.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {"dataset_meta": {"classes": COCO_OBJECT_NAMES}}}, ckpt)
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
