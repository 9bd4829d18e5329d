"""`sgbench t2i` subcommands: exit codes and outputs on the shapes world (no downloads)."""

import json

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
    assert main(["t2i", "run", str(tmp_path / "none.yaml")]) == 2
    assert main(["t2i", "shapes-prompts", "--n-per-tag", "2", "--out", str(tmp_path / "m.jsonl")]) == 0
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 12


@pytest.mark.slow
def test_mask2former_smoke_with_random_weights(tmp_path):
    """Needs the optional GenEval extra (mmdet 3.x + mmcv); builds Swin-S Mask2Former randomly."""
    mmdet = pytest.importorskip("mmdet")
    import os

    import numpy as np
    import torch
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    from sgbench.t2i.geneval import COCO_OBJECT_NAMES
    from sgbench.t2i.geneval_backends import MMDetDetector

    register_all_modules()
    cfg_path = os.path.join(os.path.dirname(mmdet.__file__), ".mim", "configs", "mask2former",
                            "mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco.py")
    cfg = Config.fromfile(cfg_path)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    ckpt = tmp_path / "m2f.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {"dataset_meta": {"classes": COCO_OBJECT_NAMES}}}, ckpt)
    det = MMDetDetector(cfg_path, ckpt, "cpu")
    from PIL import Image

    bbox, segm = det(Image.fromarray(np.zeros((64, 64, 3), np.uint8)))
    assert len(bbox) == 80 and all(b.shape[1] == 5 for b in bbox)
