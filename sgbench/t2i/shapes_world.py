"""A procedurally generated text-to-image world for CPU runs without downloads.

Scenes are flat-coloured circles, squares and triangles on a black canvas; prompts and
metadata follow GenEval's generator grammar and `evaluation_metadata.jsonl` format exactly,
with the three shapes as object classes and four of GenEval's colours:

    single_object  "a photo of a circle"
    two_object     "a photo of a circle and a square"
    counting       "a photo of three triangles"            (include 3, exclude 4)
    colors         "a photo of a red square"
    position       "a photo of a circle left of a square"   (position clause on group 0)
    color_attr     "a photo of a red circle and a blue triangle"

`ShapesDetector` reads objects back from pixels: each pixel goes to the nearest palette colour
(or the background), connected components of one colour are objects, and a component's score
for a class is exp(-((1 - IoU) / 0.1)^2) with IoU between its mask and that class's ideal mask
drawn in the component's box, times a penalty for non-square boxes.
On rendered scenes it is exact (tests check GenEval = 1.0 on every tag), and its output feeds
the same GenEval scoring code as Mask2Former's; `ShapesColorClassifier` replaces CLIP by the
nearest palette colour of the mask's mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np

from sgbench.t2i.geneval import TAGS, relative_position

SHAPES = ("circle", "square", "triangle")
PALETTE = {"red": (230, 30, 30), "green": (30, 190, 40), "blue": (40, 70, 235), "yellow": (240, 220, 30)}
BACKGROUND = (0, 0, 0)
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
POSITIONS = ["left of", "right of", "above", "below"]


def with_article(name: str) -> str:
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def make_plural(name: str) -> str:
    return f"{name}es" if name[-1] == "s" else f"{name}s"


@dataclass(frozen=True)
class WorldConfig:
    image_size: int = 32
    min_size: int = 7  # object box side in pixels
    max_size: int = 12
    gap: int = 2  # minimum empty pixels between object boxes
    max_count: int = 3  # counting prompts use 2..max_count objects


# ----------------------------------------------------------------------------- rendering


def shape_mask(shape: str, h: int, w: Optional[int] = None) -> np.ndarray:
    """Boolean h x w mask of a filled shape (ellipse / rectangle / apex-up triangle) in its box."""
    w = h if w is None else w
    yy, xx = np.meshgrid((np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w, indexing="ij")  # pixel centres
    if shape == "square":
        return np.ones((h, w), bool)
    if shape == "circle":
        return (xx - 0.5) ** 2 + (yy - 0.5) ** 2 <= 0.25
    if shape == "triangle":
        return np.abs(xx - 0.5) <= yy / 2 + 0.25 / w  # a quarter pixel of slack keeps the apex
    raise ValueError(f"unknown shape {shape!r}")


def render(objects: Sequence[dict], cfg: WorldConfig = WorldConfig()) -> np.ndarray:
    """objects [{'shape', 'color', 'box': (x1, y1, x2, y2)}] -> uint8 [H, W, 3]."""
    n = cfg.image_size
    img = np.empty((n, n, 3), np.uint8)
    img[:] = BACKGROUND
    for o in objects:
        x1, y1, x2, y2 = o["box"]
        m = shape_mask(o["shape"], x2 - x1)
        img[y1:y2, x1:x2][m] = PALETTE[o["color"]]
    return img


def _free(box, boxes, gap) -> bool:
    x1, y1, x2, y2 = box
    return all(x2 + gap <= b[0] or b[2] + gap <= x1 or y2 + gap <= b[1] or b[3] + gap <= y1 for b in boxes)


def _place(rng, cfg, boxes, tries=200, accept=None):
    for _ in range(tries):
        s = int(rng.integers(cfg.min_size, cfg.max_size + 1))
        x, y = (int(v) for v in rng.integers(0, cfg.image_size - s + 1, size=2))
        box = (x, y, x + s, y + s)
        if _free(box, boxes, cfg.gap) and (accept is None or accept(box)):
            return box
    return None


def _obj(shape, color, box):
    return {"shape": shape, "color": color, "box": box}


def sample_scene(rng: np.random.Generator, tag: str, cfg: WorldConfig = WorldConfig()):
    """One (objects, GenEval metadata) pair for `tag`; retries until the layout fits."""
    colors = list(PALETTE)
    while True:
        shapes = [SHAPES[i] for i in rng.permutation(len(SHAPES))]
        cols = [colors[i] for i in rng.permutation(len(colors))]
        a, b, ca, cb = shapes[0], shapes[1], cols[0], cols[1]
        if tag == "single_object":
            plan = [(a, ca)]
            meta = dict(include=[{"class": a, "count": 1}], prompt=f"a photo of {with_article(a)}")
        elif tag == "two_object":
            plan = [(a, ca), (b, cb)]
            meta = dict(include=[{"class": a, "count": 1}, {"class": b, "count": 1}],
                        prompt=f"a photo of {with_article(a)} and {with_article(b)}")
        elif tag == "counting":
            k = int(rng.integers(2, cfg.max_count + 1))
            plan = [(a, colors[int(rng.integers(len(colors)))]) for _ in range(k)]
            meta = dict(include=[{"class": a, "count": k}], exclude=[{"class": a, "count": k + 1}],
                        prompt=f"a photo of {NUMBERS[k]} {make_plural(a)}")
        elif tag == "colors":
            plan = [(a, ca)]
            meta = dict(include=[{"class": a, "count": 1, "color": ca}], prompt=f"a photo of {with_article(ca)} {a}")
        elif tag == "position":
            rel = POSITIONS[int(rng.integers(len(POSITIONS)))]
            plan = [(b, cb), (a, ca)]  # target first, as GenEval's include order
            meta = dict(include=[{"class": b, "count": 1}, {"class": a, "count": 1, "position": [rel, 0]}],
                        prompt=f"a photo of {with_article(a)} {rel} {with_article(b)}")
        elif tag == "color_attr":
            plan = [(a, ca), (b, cb)]
            meta = dict(include=[{"class": a, "count": 1, "color": ca}, {"class": b, "count": 1, "color": cb}],
                        prompt=f"a photo of {with_article(ca)} {a} and {with_article(cb)} {b}")
        else:
            raise ValueError(f"unknown tag {tag!r}")
        boxes, objects = [], []
        for i, (shape, color) in enumerate(plan):
            accept = None
            if tag == "position" and i == 1:
                target = (np.array([*boxes[0], 1.0]), None)
                accept = lambda box, t=target, r=rel: r in relative_position((np.array([*box, 1.0]), None), t)
            box = _place(rng, cfg, boxes, accept=accept)
            if box is None:
                break
            boxes.append(box)
            objects.append(_obj(shape, color, box))
        if len(objects) == len(plan):
            return objects, {"tag": tag, **meta}


def sample_scenes(n: int, seed: int, cfg: WorldConfig = WorldConfig(), tags: Sequence[str] = TAGS):
    """n scenes, tags cycling in GenEval's order; deterministic in (n, seed)."""
    rng = np.random.default_rng(seed)
    return [sample_scene(rng, tags[i % len(tags)], cfg) for i in range(n)]


def evaluation_metadata(n_per_tag: int, seed: int = 43, cfg: WorldConfig = WorldConfig()) -> list[dict]:
    """A GenEval-style prompt set: n_per_tag prompts per tag, de-duplicated like GenEval's."""
    out, seen = [], set()
    rng = np.random.default_rng(seed)
    for tag in TAGS:
        count, attempts = 0, 0
        while count < n_per_tag and attempts < 50 * n_per_tag:
            attempts += 1
            _, meta = sample_scene(rng, tag, cfg)
            if meta["prompt"] not in seen:
                seen.add(meta["prompt"])
                out.append(meta)
                count += 1
    return out


# ----------------------------------------------------------------------------- detection


def _nearest_palette(img: np.ndarray) -> np.ndarray:
    """[H, W] index into [background] + palette colours (nearest in RGB)."""
    refs = np.array([BACKGROUND, *PALETTE.values()], dtype=np.float32)
    d = ((img.astype(np.float32)[:, :, None, :] - refs[None, None]) ** 2).sum(-1)
    return d.argmin(-1)


class ShapesDetector:
    """Analytic detector for shapes-world images with GenEval's per-class output layout."""

    classnames = list(SHAPES)

    def __init__(self, min_area: int = 9, iou_width: float = 0.1):
        self.min_area, self.iou_width = min_area, iou_width

    def class_scores(self, mask: np.ndarray) -> np.ndarray:
        """Per-class confidence in [0, 1] of a component mask cropped to its box."""
        h, w = mask.shape
        squareness = math.exp(-(math.log(w / h) / 0.25) ** 2)
        scores = []
        for s in SHAPES:
            ideal = shape_mask(s, h, w)
            iou = (mask & ideal).sum() / (mask | ideal).sum()
            scores.append(math.exp(-((1 - iou) / self.iou_width) ** 2) * squareness)
        return np.array(scores)

    def __call__(self, image):
        from scipy import ndimage

        img = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
        labels = _nearest_palette(img)
        bbox = [[] for _ in SHAPES]
        segm = [[] for _ in SHAPES]
        for c in range(1, len(PALETTE) + 1):
            comps, n = ndimage.label(labels == c)
            for sl, k in zip(ndimage.find_objects(comps), range(1, n + 1)):
                mask = comps[sl] == k
                area = int(mask.sum())
                if area < self.min_area:
                    continue
                y1, y2, x1, x2 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
                scores = self.class_scores(mask)
                best = int(scores.argmax())
                full = np.zeros(labels.shape, bool)
                full[sl] = mask
                bbox[best].append([x1, y1, x2, y2, scores[best]])
                segm[best].append(full)
        return [np.array(b, np.float32).reshape(-1, 5) for b in bbox], segm


class ShapesColorClassifier:
    """Colour of an object = nearest palette colour to the mean RGB under its mask (or box)."""

    def __call__(self, image, objects, classname: str) -> list[str]:
        img = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image).astype(np.float32)
        names = list(PALETTE)
        refs = np.array([PALETTE[c] for c in names], np.float32)
        out = []
        for box, mask in objects:
            if mask is None:
                x1, y1, x2, y2 = (int(round(float(v))) for v in box[:4])
                pix = img[y1:y2, x1:x2].reshape(-1, 3)
            else:
                pix = img[np.asarray(mask, bool)]
            mean = pix.mean(0) if len(pix) else np.zeros(3, np.float32)
            out.append(names[int(((refs - mean) ** 2).sum(1).argmin())])
        return out


def score_images(images: Iterable[np.ndarray], metadata: Sequence[dict], options=None,
                 filenames: Optional[Sequence[str]] = None, progress: bool = False) -> list[dict]:
    """GenEval records for shapes-world images (uint8 HWC, any iterable: a generator reads files
    one at a time) with the analytic models; progress: a bar of the images scored (on a terminal)."""
    from PIL import Image

    from sgbench.progress import bar
    from sgbench.t2i.geneval import GenEvalOptions, score_detections, validate_metadata

    options = options or GenEvalOptions()
    det, colors = ShapesDetector(), ShapesColorClassifier()
    out = []
    pairs = bar(len(metadata), "geneval", enabled=progress, iterable=zip(images, metadata))
    for i, (img, meta) in enumerate(pairs):
        validate_metadata(meta, SHAPES)
        pil = Image.fromarray(np.asarray(img, np.uint8))
        bbox, segm = det(pil)
        name = filenames[i] if filenames is not None else str(i)
        out.append(score_detections(bbox, segm, meta, lambda o, c, p=pil: colors(p, o, c), options, SHAPES, name))
    return out
