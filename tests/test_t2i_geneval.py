"""GenEval scoring on constructed detections (exact expectations from GenEval's rules)."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sgbench.errors import UserError
from sgbench.t2i.geneval import (
    COCO_OBJECT_NAMES,
    GenEvalOptions,
    compute_iou,
    evaluate,
    format_summary,
    iter_geneval_folder,
    relative_position,
    score_detections,
    select_objects,
    summarize,
    write_geneval_folder,
)
from sgbench.t2i.geneval_backends import ClipColorClassifier, instances_to_per_class

NAMES = ["cat", "dog", "car"]


def _det(per_class):
    """{'cat': [(x1, y1, x2, y2, score), ...]} -> per-class bbox arrays for NAMES."""
    return [np.array(per_class.get(n, []), dtype=np.float32).reshape(-1, 5) for n in NAMES]


def test_iou_and_relative_position():
    assert compute_iou([0, 0, 9, 9], [0, 0, 9, 9]) == 1.0
    assert compute_iou([0, 0, 9, 9], [5, 0, 14, 9]) == pytest.approx(50 / 150)
    b = (np.array([0, 0, 10, 10, 1.0]), None)
    assert relative_position((np.array([30, 0, 40, 10, 1.0]), None), b) == {"right of"}
    assert relative_position((np.array([0, 30, 10, 40, 1.0]), None), b) == {"below"}
    assert relative_position((np.array([0, -30, 10, -20, 1.0]), None), b) == {"above"}
    # diagonal: both components of the unit offset are 0.707 > 0.5
    assert relative_position((np.array([-30, -30, -20, -20, 1.0]), None), b) == {"left of", "above"}
    # overlapping centres within 0.1 * (w_a + w_b): no relation at all
    assert relative_position((np.array([1, 0, 11, 10, 1.0]), None), b) == set()
    # a big box shrinks the offset: 25 px right, minus 0.1 * (10 + 200) = 21 -> dx = 4/25 < 0.5
    big = (np.array([0, 0, 200, 10, 1.0]), None)
    assert relative_position((np.array([120, 0, 130, 10, 1.0]), None), big) == set()


def test_select_objects_thresholds_cap_and_nms():
    opts = GenEvalOptions()
    bbox = _det({"cat": [(0, 0, 9, 9, 0.95), (20, 0, 29, 9, 0.5), (40, 0, 49, 9, 0.3)],
                 "dog": [(0, 0, 9, 9, 0.2)]})
    sel = select_objects(bbox, None, "two_object", opts, NAMES)
    assert list(sel) == ["cat"] and [float(b[4]) for b, _ in sel["cat"]] == pytest.approx([0.95, 0.5])  # float32 0.3 is not > 0.3
    sel = select_objects(bbox, None, "counting", opts, NAMES)
    assert [float(b[4]) for b, _ in sel["cat"]] == pytest.approx([0.95])
    many = _det({"car": [(i, 0, i + 5, 5, 0.4 + i / 100) for i in range(20)]})
    sel = select_objects(many, None, "single_object", opts, NAMES)
    assert len(sel["car"]) == 16 and float(sel["car"][0][0][4]) == pytest.approx(0.59)
    dup = _det({"dog": [(0, 0, 9, 9, 0.9), (1, 0, 10, 9, 0.8), (30, 30, 39, 39, 0.7)]})
    assert len(select_objects(dup, None, "two_object", opts, NAMES)["dog"]) == 3
    nms = GenEvalOptions(max_overlap=0.5)
    assert [float(b[4]) for b, _ in select_objects(dup, None, "two_object", nms, NAMES)["dog"]] == \
        pytest.approx([0.9, 0.7])
    masks = [[], [np.zeros((4, 4), bool)] * 3, []]
    assert select_objects(dup, masks, "two_object", opts, NAMES)["dog"][0][1].shape == (4, 4)


def _never(objs, cls):
    raise AssertionError("colour must not be checked")


def test_evaluate_include_exclude_colour_position():
    cat = [(np.array([0, 0, 10, 10, 0.9]), None)]
    dog_right = [(np.array([40, 0, 50, 10, 0.9]), None)]
    two = {"tag": "two_object", "prompt": "a cat and a dog",
           "include": [{"class": "cat", "count": 1}, {"class": "dog", "count": 1}]}
    assert evaluate({"cat": cat, "dog": dog_right}, two, _never) == (True, "")
    ok, reason = evaluate({"cat": cat}, two, _never)
    assert not ok and reason == "expected dog>=1, found 0"

    count = {"tag": "counting", "prompt": "two cats", "include": [{"class": "cat", "count": 2}],
             "exclude": [{"class": "cat", "count": 3}]}
    three = cat + dog_right + cat
    assert evaluate({"cat": three[:2]}, count, _never)[0]
    ok, reason = evaluate({"cat": three}, count, _never)
    assert not ok and reason == "expected cat<3, found 3"

    colour = {"tag": "colors", "prompt": "a red car", "include": [{"class": "car", "count": 1, "color": "red"}]}
    seen = []

    def colours(objs, cls):
        seen.append((len(objs), cls))
        return ["blue", "red"][: len(objs)]

    ok, reason = evaluate({"car": cat + cat}, colour, colours)  # only the top-1 object is classified
    assert not ok and seen == [(1, "car")]
    assert reason == "expected red car>=1, found 0 red; and 1 blue"

    pos = {"tag": "position", "prompt": "a dog right of a cat",
           "include": [{"class": "cat", "count": 1}, {"class": "dog", "count": 1, "position": ["right of", 0]}]}
    assert evaluate({"cat": cat, "dog": dog_right}, pos, _never) == (True, "")
    ok, reason = evaluate({"cat": dog_right, "dog": cat}, pos, _never)
    assert not ok and reason == "expected dog right of target, found left of target"
    ok, reason = evaluate({"dog": dog_right}, pos, _never)
    assert reason == "expected cat>=1, found 0\nno target for dog to be right of"


def test_score_and_summary_mean_over_tags():
    meta = [
        {"tag": "single_object", "prompt": "a cat", "include": [{"class": "cat", "count": 1}]},
        {"tag": "single_object", "prompt": "a dog", "include": [{"class": "dog", "count": 1}]},
        {"tag": "counting", "prompt": "two cars", "include": [{"class": "car", "count": 2}],
         "exclude": [{"class": "car", "count": 3}]},
    ]
    det = _det({"cat": [(0, 0, 5, 5, 0.5)], "car": [(0, 0, 5, 5, 0.95), (9, 9, 15, 15, 0.92), (20, 0, 25, 5, 0.5)]})
    res = [score_detections(det, None, m, _never, GenEvalOptions(), NAMES, f"{i}.png") for i, m in enumerate(meta)]
    assert [r["correct"] for r in res] == [True, False, True]
    assert json.loads(res[0]["details"])["cat"][0] == [0.0, 0.0, 5.0, 5.0, 0.5]
    s = summarize(res + [dict(res[1])])  # a second image of prompt 2
    assert s["tags"] == {"single_object": pytest.approx(1 / 3), "counting": 1.0}
    assert s["overall"] == pytest.approx((1 / 3 + 1) / 2)  # mean over tags, not images (2/4)
    assert s["correct_images"] == 0.5 and s["correct_prompts"] == pytest.approx(2 / 3) and s["prompts"] == 3
    assert "Overall score (avg. over tasks): 0.66667" in format_summary(s)


def test_options_and_folder_layout(tmp_path):
    opts = GenEvalOptions.parse(["max_overlap=0.5", "counting_threshold=0.8", "crop=0"])
    assert (opts.max_overlap, opts.counting_threshold, opts.crop, opts.threshold) == (0.5, 0.8, False, 0.3)
    with pytest.raises(UserError):
        GenEvalOptions.parse(["nope=1"])
    meta = {"tag": "single_object", "prompt": "a photo of a cat", "include": [{"class": "cat", "count": 1}]}
    write_geneval_folder(tmp_path, 3, meta, [np.zeros((4, 4, 3), np.uint8)] * 2)
    items = list(iter_geneval_folder(tmp_path))
    assert [p.split("/")[-1] for p, _ in items] == ["0000.png", "0001.png"] and items[0][1] == meta
    assert "computer keyboard" in COCO_OBJECT_NAMES and len(COCO_OBJECT_NAMES) == 80
    with pytest.raises(UserError):
        list(iter_geneval_folder(tmp_path / "missing"))


def test_mmdet3_instances_adapter():
    inst = SimpleNamespace(
        bboxes=torch.tensor([[0, 0, 4, 4], [1, 1, 2, 2], [3, 3, 5, 5]], dtype=torch.float32),
        scores=torch.tensor([0.9, 0.4, 0.7]), labels=torch.tensor([2, 0, 2]),
        masks=torch.zeros(3, 6, 6, dtype=torch.bool))
    bbox, segm = instances_to_per_class(inst, 3)
    assert [b.shape for b in bbox] == [(1, 5), (0, 5), (2, 5)]
    np.testing.assert_allclose(bbox[2][:, 4], [0.9, 0.7])
    assert len(segm[2]) == 2 and segm[2][0].dtype == bool
    with pytest.raises(UserError):
        instances_to_per_class(SimpleNamespace(bboxes=inst.bboxes, scores=inst.scores,
                                               labels=torch.tensor([0, 1, 7])), 3)


def test_clip_colour_classifier_crops_and_zero_shot():
    """A fake CLIP whose image features are mean RGB and text features one-hot colours."""
    from PIL import Image

    class FakeClip(torch.nn.Module):
        def encode_text(self, tokens):  # token id = colour index + 1 (templates agree)
            return torch.nn.functional.one_hot(tokens[:, 0] - 1, 10).float() + 0.01

        def encode_image(self, x):  # red -> 0, blue -> 4, via mean RGB
            r, b = x[:, 0].mean((1, 2)), x[:, 2].mean((1, 2))
            out = torch.zeros(len(x), 10)
            out[:, 0], out[:, 4] = r, b
            return out

    from sgbench.t2i.geneval import COLORS

    def tok(texts):
        return torch.tensor([[next(i for i, c in enumerate(COLORS) if f" {c}" in t) + 1] for t in texts])

    def pre(img):
        return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)[:, :4, :4]

    img = np.zeros((8, 8, 3), np.uint8)
    img[:4, :4] = (255, 0, 0)
    img[4:, 4:] = (0, 0, 255)
    mask = np.zeros((8, 8), bool)
    mask[4:, 4:] = True
    clf = ClipColorClassifier(FakeClip(), pre, tok)
    objs = [(np.array([0, 0, 4, 4, 1.0]), None), (np.array([4, 4, 8, 8, 1.0]), mask)]
    assert clf(Image.fromarray(img), objs, "car") == ["red", "blue"]
    crop = clf.crops(Image.fromarray(img), [(np.array([0, 0, 8, 8, 1.0]), mask)])[0]
    assert np.asarray(crop)[0, 0].tolist() == [153, 153, 153]  # '#999' background outside the mask


def test_clip_loader_from_local_weights_file(tmp_path):
    """load_clip_color_classifier with a tiny open_clip architecture saved by the test."""
    open_clip = pytest.importorskip("open_clip")
    from PIL import Image

    from sgbench.t2i.geneval import COLORS
    from sgbench.t2i.geneval_backends import load_clip_color_classifier

    cfg = {"embed_dim": 16, "quick_gelu": True,
           "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "sgbench-tiny-clip.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "cfg")
    torch.manual_seed(0)
    model = open_clip.create_model("sgbench-tiny-clip")
    torch.save(model.state_dict(), tmp_path / "tiny.pt")
    with pytest.raises(UserError, match="--clip-weights"):
        load_clip_color_classifier(tmp_path / "none.pt", arch="sgbench-tiny-clip")
    clf = load_clip_color_classifier(tmp_path / "tiny.pt", arch="sgbench-tiny-clip")
    for a, b in zip(clf.model.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    objs = [(np.array([0, 0, 20, 20, 1.0]), None), (np.array([10, 10, 40, 40, 1.0]), np.ones((40, 40), bool))]
    colours = clf(img, objs, "car")
    assert len(colours) == 2 and set(colours) <= set(COLORS)
    assert clf.text_classifier("car").shape == (16, 10)
    w = clf.text_classifier("car")
    torch.testing.assert_close(w.norm(dim=0), torch.ones(10))  # normalised mean of normalised templates
