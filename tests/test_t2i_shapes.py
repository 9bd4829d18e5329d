"""Shapes world: GenEval-format prompts, exact analytic detector feeding GenEval's scoring."""

import json

import numpy as np
import pytest

from sgbench.t2i.geneval import TAGS, iter_geneval_folder, summarize, validate_metadata, write_geneval_folder
from sgbench.t2i.shapes_world import (
    PALETTE,
    SHAPES,
    ShapesColorClassifier,
    ShapesDetector,
    evaluation_metadata,
    render,
    sample_scenes,
    score_images,
    shape_mask,
)


def test_prompts_follow_geneval_grammar_and_format():
    scenes = sample_scenes(12, seed=1)
    metas = [m for _, m in scenes]
    assert [m["tag"] for m in metas] == TAGS * 2
    for objects, m in scenes:
        validate_metadata(json.loads(json.dumps(m)), SHAPES)
        assert m["prompt"].startswith("a photo of ")
    count = next(m for m in metas if m["tag"] == "counting")
    k = count["include"][0]["count"]
    assert count["exclude"] == [{"class": count["include"][0]["class"], "count": k + 1}]
    assert count["prompt"].split()[3] == ["two", "three"][k - 2]
    pos = next(m for m in metas if m["tag"] == "position")
    assert pos["include"][1]["position"][1] == 0 and pos["include"][1]["position"][0] in pos["prompt"]
    assert sample_scenes(12, seed=1) == scenes  # deterministic
    meta = evaluation_metadata(3, seed=43)
    assert len(meta) == 18 and len({m["prompt"] for m in meta}) == 18


def test_detector_is_exact_on_rendered_scenes():
    scenes = sample_scenes(240, seed=0)
    res = score_images([render(o) for o, _ in scenes], [m for _, m in scenes])
    s = summarize(res)
    assert s["tags"] == {t: 1.0 for t in TAGS} and s["overall"] == 1.0
    objects, _ = scenes[3]  # a counting scene: every object found with its exact box
    bbox, segm = ShapesDetector()(render(objects))
    found = sorted(tuple(int(v) for v in b[:4]) for cls in bbox for b in cls)
    assert found == sorted(o["box"] for o in objects)
    assert all(float(b[4]) == pytest.approx(1.0) for cls in bbox for b in cls)


def test_wrong_images_fail_for_the_right_reason():
    scenes = sample_scenes(60, seed=2)
    # every prompt scored against the next scene's image (different content)
    imgs = [render(scenes[(i + 6) % 60][0]) for i in range(60)]
    res = score_images(imgs, [m for _, m in scenes])
    assert summarize(res)["overall"] < 0.6
    blank = np.zeros((32, 32, 3), np.uint8)
    r = score_images([blank], [scenes[0][1]])[0]
    assert not r["correct"] and r["reason"].startswith("expected ")


def test_colour_classifier_and_noise_robustness():
    img = render([{"shape": "square", "color": "blue", "box": (2, 2, 10, 10)},
                  {"shape": "circle", "color": "yellow", "box": (14, 14, 24, 24)}])
    noisy = np.clip(img.astype(int) + np.random.default_rng(0).integers(-25, 26, img.shape), 0, 255).astype(np.uint8)
    bbox, segm = ShapesDetector()(noisy)
    assert [len(b) for b in bbox] == [1, 1, 0]
    objs = [(bbox[1][0], segm[1][0]), (bbox[0][0], segm[0][0])]
    assert ShapesColorClassifier()(noisy, objs, "any") == ["blue", "yellow"]
    assert shape_mask("triangle", 8)[0].sum() >= 1 and set(PALETTE) <= {"red", "green", "blue", "yellow"}


def test_rendered_folder_round_trip(tmp_path):
    scenes = sample_scenes(6, seed=3)
    for i, (objects, meta) in enumerate(scenes):
        write_geneval_folder(tmp_path, i, meta, [render(objects)])
    from PIL import Image

    items = list(iter_geneval_folder(tmp_path))
    imgs = [np.asarray(Image.open(p)) for p, _ in items]
    assert summarize(score_images(imgs, [m for _, m in items]))["overall"] == 1.0
