"""GenEval scoring, reproducing djghosh13/geneval `evaluation/evaluate_images.py` and
`evaluation/summary_scores.py` rule for rule, with the detector kept apart from the scoring.

Pure part (no detector, no CLIP):
- `select_objects(bbox, segm, tag, options, classnames)`: per-class detections (mmdet 2.x
  layout: bbox[k] is [n, 5] (x1, y1, x2, y2, score), segm[k] a list of n HxW bool masks or
  None) -> {classname: [(box, mask), ...]}: confidence threshold (0.3; 0.9 for counting), at
  most 16 objects per class by descending score, optional greedy NMS (`max_overlap`, off at 1.0).
- `evaluate(objects, metadata, classify_colors, position_threshold)`: 'include' clauses are
  ANDed (count, CLIP colour, relative position to an earlier group), 'exclude' clauses ORed.
- `summarize(results)`: accuracy per tag (in order of first appearance) and the overall score =
  mean over tags, plus GenEval's "% correct images" and "% correct prompts".

Backends (`sgbench.t2i.geneval_backends`): mmdet 3.x Mask2Former adapted to the per-class
layout, and the CLIP colour classifier; the shapes world has an exact analytic detector.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

import numpy as np

from sgbench.errors import UserError
# GenEvalOptions lives with the benchmarks' plain data: the suite schema parses a suite's options
# without importing sgbench.t2i
from sgbench.metrics.benchmarks import GENEVAL, GENEVAL_TAG, GENEVAL_TAGS, GenEvalOptions

COLORS = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white"]
TAGS = list(GENEVAL_TAGS)  # GenEval's task tags; display names (paper Table 5) in GENEVAL_TAGS
COLOR_TEMPLATES = ["a photo of a {c} {classname}", "a photo of a {c}-colored {classname}", "a photo of a {c} object"]

# GenEval's object_names.txt: the 80 COCO classes in COCO/mmdet label order, with GenEval's names.
COCO_OBJECT_NAMES = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "computer mouse", "tv remote",
    "computer keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
]


# ----------------------------------------------------------------------------- pure scoring


def compute_iou(box_a, box_b) -> float:
    """IoU with GenEval's inclusive-pixel (+1) areas."""

    def area(b):
        return max(b[2] - b[0] + 1, 0) * max(b[3] - b[1] + 1, 0)

    inter = area([max(box_a[0], box_b[0]), max(box_a[1], box_b[1]), min(box_a[2], box_b[2]), min(box_a[3], box_b[3])])
    union = area(box_a) + area(box_b) - inter
    return inter / union if union else 0


def relative_position(obj_a, obj_b, position_threshold: float = 0.1) -> set:
    """Relations of A to B ('left of', 'right of', 'above', 'below'), factoring in box sizes:
    the centre offset is shrunk by threshold * (summed box sizes) per axis, then a relation
    holds where the shrunk offset along an axis exceeds half the full offset's length."""
    boxes = np.array([obj_a[0], obj_b[0]])[:, :4].reshape(2, 2, 2)
    center_a, center_b = boxes.mean(axis=-2)
    dim_a, dim_b = np.abs(np.diff(boxes, axis=-2))[..., 0, :]
    offset = center_a - center_b
    revised = np.maximum(np.abs(offset) - position_threshold * (dim_a + dim_b), 0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    relations = set()
    if dx < -0.5:
        relations.add("left of")
    if dx > 0.5:
        relations.add("right of")
    if dy < -0.5:
        relations.add("above")
    if dy > 0.5:
        relations.add("below")
    return relations


def select_objects(bbox, segm, tag: str, options: GenEvalOptions, classnames: Sequence[str]) -> dict:
    """Per-class detections -> {classname: [(box[5], mask or None), ...]} in descending score."""
    if len(bbox) != len(classnames):
        raise UserError(f"detector returned {len(bbox)} classes, expected {len(classnames)} (object names)")
    threshold = options.threshold if tag != "counting" else options.counting_threshold
    detected = {}
    for index, classname in enumerate(classnames):
        boxes = np.asarray(bbox[index], dtype=np.float32).reshape(-1, 5)
        ordering = np.argsort(boxes[:, 4])[::-1]
        ordering = ordering[boxes[ordering, 4] > threshold]
        ordering = ordering[: options.max_objects].tolist()
        found = []
        while ordering:
            best = ordering.pop(0)
            found.append((boxes[best], None if segm is None else segm[index][best]))
            ordering = [
                o for o in ordering
                if options.max_overlap == 1 or compute_iou(boxes[best], boxes[o]) < options.max_overlap
            ]
        if found:
            detected[classname] = found
    return detected


ColorFn = Callable[[list, str], list]  # (objects [(box, mask)], classname) -> colour names


def evaluate(objects: dict, metadata: dict, classify_colors: ColorFn, position_threshold: float = 0.1):
    """GenEval's rule: include clauses ANDed, exclude clauses ORed -> (correct, reason)."""
    correct = True
    reason = []
    matched_groups = []
    for req in metadata.get("include", []):
        classname = req["class"]
        matched = True
        found = objects.get(classname, [])[: req["count"]]
        if len(found) < req["count"]:
            correct = matched = False
            reason.append(f"expected {classname}>={req['count']}, found {len(found)}")
        else:
            if "color" in req:
                colors = classify_colors(found, classname)
                if colors.count(req["color"]) < req["count"]:
                    correct = matched = False
                    reason.append(
                        f"expected {req['color']} {classname}>={req['count']}, found "
                        + f"{colors.count(req['color'])} {req['color']}; and "
                        + ", ".join(f"{colors.count(c)} {c}" for c in COLORS if c in colors)
                    )
            if "position" in req and matched:
                expected_rel, target_group = req["position"]
                if matched_groups[target_group] is None:
                    correct = matched = False
                    reason.append(f"no target for {classname} to be {expected_rel}")
                else:
                    for obj in found:
                        for target in matched_groups[target_group]:
                            true_rels = relative_position(obj, target, position_threshold)
                            if expected_rel not in true_rels:
                                correct = matched = False
                                reason.append(
                                    f"expected {classname} {expected_rel} target, found "
                                    + f"{' and '.join(true_rels)} target"
                                )
                                break
                        if not matched:
                            break
        matched_groups.append(found if matched else None)
    for req in metadata.get("exclude", []):
        classname = req["class"]
        if len(objects.get(classname, [])) >= req["count"]:
            correct = False
            reason.append(f"expected {classname}<{req['count']}, found {len(objects[classname])}")
    return correct, "\n".join(reason)


def score_detections(bbox, segm, metadata: dict, classify_colors: ColorFn, options: GenEvalOptions,
                     classnames: Sequence[str] = COCO_OBJECT_NAMES, filename: str = "") -> dict:
    """One image: GenEval's result record (same keys as its results.jsonl)."""
    detected = select_objects(bbox, segm, metadata["tag"], options, classnames)
    correct, reason = evaluate(detected, metadata, classify_colors, options.position_threshold)
    return {
        "filename": filename,
        "tag": metadata["tag"],
        "prompt": metadata["prompt"],
        "correct": bool(correct),
        "reason": reason,
        "metadata": json.dumps(metadata),
        "details": json.dumps({k: [np.asarray(b).tolist() for b, _ in v] for k, v in detected.items()}),
    }


def summarize(results: Sequence[dict]) -> dict:
    """summary_scores.py: per-tag accuracy (first-appearance order), overall = mean over tags."""
    if not results:
        raise UserError("no GenEval results to summarize")
    by_tag: dict = {}
    by_prompt: dict = {}
    for r in results:
        by_tag.setdefault(r["tag"], []).append(bool(r["correct"]))
        by_prompt.setdefault(r["metadata"], []).append(bool(r["correct"]))
    tags = {tag: float(np.mean(v)) for tag, v in by_tag.items()}
    return {
        "overall": float(np.mean(list(tags.values()))),
        "tags": tags,
        "counts": {tag: (int(sum(v)), len(v)) for tag, v in by_tag.items()},
        "images": len(results),
        "prompts": len(by_prompt),
        "correct_images": float(np.mean([bool(r["correct"]) for r in results])),
        "correct_prompts": float(np.mean([any(v) for v in by_prompt.values()])),
    }


def summary_columns(summary: dict) -> dict:
    """trials.csv columns: geneval, geneval_<tag> (sgbench.metrics.benchmarks)."""
    cols = {GENEVAL.key: summary["overall"]}
    cols.update({GENEVAL_TAG.key(tag): score for tag, score in summary["tags"].items()})
    return cols


def format_summary(summary: dict) -> str:
    """Text like summary_scores.py prints."""
    lines = [
        "Summary", "=======",
        f"Total images: {summary['images']}",
        f"Total prompts: {summary['prompts']}",
        f"% correct images: {summary['correct_images']:.2%}",
        f"% correct prompts: {summary['correct_prompts']:.2%}",
        "", "Task breakdown", "==============",
    ]
    for tag, score in summary["tags"].items():
        ok, n = summary["counts"][tag]
        lines.append(f"{tag:<16} = {score:.2%} ({ok} / {n})")
    lines += ["", f"Overall score (avg. over tasks): {summary['overall']:.5f}"]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- files


def validate_metadata(meta: dict, classnames: Sequence[str], where: str = "") -> dict:
    """Check one GenEval metadata record; UserError naming the problem."""
    at = f" ({where})" if where else ""
    if not isinstance(meta, dict) or "tag" not in meta or "prompt" not in meta:
        raise UserError(f"GenEval metadata needs 'tag' and 'prompt'{at}")
    known = set(classnames)
    for kind in ("include", "exclude"):
        for req in meta.get(kind, []):
            if not isinstance(req, dict) or "class" not in req or "count" not in req:
                raise UserError(f"GenEval {kind} clause needs 'class' and 'count'{at}")
            if req["class"] not in known:
                raise UserError(f"GenEval class {req['class']!r} is not in the detector's object names{at}")
            if "color" in req and req["color"] not in COLORS:
                raise UserError(f"GenEval colour {req['color']!r} is not one of {', '.join(COLORS)}{at}")
            if "position" in req:
                rel, group = req["position"]
                if rel not in ("left of", "right of", "above", "below") or not 0 <= int(group) < len(meta["include"]):
                    raise UserError(f"bad GenEval position clause {req['position']!r}{at}")
    return meta


def read_metadata_jsonl(path, classnames: Sequence[str] = COCO_OBJECT_NAMES) -> list[dict]:
    """GenEval's evaluation_metadata.jsonl: one JSON object per line."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"GenEval metadata not found: {p} (set suite.benchmark.metadata to evaluation_metadata.jsonl from djghosh13/geneval prompts/)")
    out = []
    for i, line in enumerate(p.read_text().splitlines(), 1):
        if line.strip():
            try:
                meta = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{p}:{i}: not JSON ({e.msg})") from None
            out.append(validate_metadata(meta, classnames, f"{p.name}:{i}"))
    if not out:
        raise UserError(f"GenEval metadata file is empty: {p}")
    return out


def write_geneval_folder(outdir, index: int, metadata: dict, images: Sequence[np.ndarray]) -> Path:
    """Write one prompt's samples in GenEval's layout: <outdir>/<00000>/metadata.jsonl, samples/<0000>.png."""
    from PIL import Image

    folder = Path(outdir) / f"{index:05d}"
    (folder / "samples").mkdir(parents=True, exist_ok=True)
    tmp = folder / "metadata.jsonl.tmp"
    tmp.write_text(json.dumps(metadata))
    os.replace(tmp, folder / "metadata.jsonl")
    for j, img in enumerate(images):
        Image.fromarray(np.asarray(img, dtype=np.uint8)).save(folder / "samples" / f"{j:04d}.png")
    return folder


def iter_geneval_folder(imagedir) -> Iterator[tuple[str, dict]]:
    """(image path, metadata) in GenEval's layout (numeric subfolders, samples/<digits>.png)."""
    root = Path(imagedir).expanduser()
    if not root.is_dir():
        raise UserError(f"GenEval image folder not found: {root}")
    found = False
    for sub in sorted(os.listdir(root)):
        folder = root / sub
        if not folder.is_dir() or not sub.isdigit():
            continue
        meta_path = folder / "metadata.jsonl"
        if not meta_path.is_file():
            raise UserError(f"missing {meta_path} (GenEval layout: <dir>/<00000>/metadata.jsonl + samples/)")
        try:
            metadata = json.loads(meta_path.read_text())
        except json.JSONDecodeError as e:
            raise UserError(f"{meta_path}: not JSON ({e.msg})") from None
        samples = folder / "samples"
        for name in sorted(os.listdir(samples)) if samples.is_dir() else []:
            path = samples / name
            if path.is_file() and re.match(r"\d+\.png", name):
                found = True
                yield str(path), metadata
    if not found:
        raise UserError(f"no images in GenEval layout under {root} (<00000>/samples/0000.png)")


def write_results_jsonl(results: Sequence[dict], path) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    with open(tmp, "w") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    os.replace(tmp, p)


def read_results_jsonl(path) -> list[dict]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"GenEval results not found: {p}")
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


class Detector:
    """Interface: `classnames` and `__call__(image: PIL RGB) -> (bbox, segm)` per class."""

    classnames: Sequence[str]

    def __call__(self, image):
        raise NotImplementedError


def evaluate_images(items: Iterable[tuple[str, dict]], detector: Detector, color_classifier,
                    options: Optional[GenEvalOptions] = None, progress: bool = False) -> list[dict]:
    """Score images (paths + metadata) with a detector and a colour classifier
    (`color_classifier(image, objects, classname) -> colours`)."""
    from PIL import Image, ImageOps

    options = options or GenEvalOptions()
    results = []
    items = list(items)
    from sgbench.progress import bar

    for path, metadata in bar(len(items), "geneval", enabled=progress, iterable=items):  # on a terminal only
        validate_metadata(metadata, detector.classnames, path)
        image = ImageOps.exif_transpose(Image.open(path))
        bbox, segm = detector(image.convert("RGB"))
        results.append(score_detections(
            bbox, segm, metadata, lambda objs, cls: color_classifier(image, objs, cls), options,
            detector.classnames, filename=path,
        ))
    return results
