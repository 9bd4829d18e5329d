"""The sample grid of a trial, as `sgbench run` writes it and `sgbench report` reads it:

    samples/<trial>.png    the first `report.sample_grid` images of the trial's first seed at full
                           resolution, GRID_COLUMNS a row
    samples/<trial>.json   {"tile": [h, w], "grid": [rows, cols], "n": N, "seed": s,
                            "labels": [...], "captions": [...]}: the layout, and each sample's
                           label (class id; T2I: sample id) and caption (T2I: its prompt; [] for
                           class-conditional samples)

Both are written atomically; the report cuts, scales and captions the grid from the JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GRID_COLUMNS = 8  # samples per row of samples/<trial>.png


def images_to_grid(images: np.ndarray, cols: int = GRID_COLUMNS) -> np.ndarray:
    """uint8 [N, H, W, C] -> one uint8 [rows*H, cols*W, C] image."""
    n, h, w, c = images.shape
    cols = min(cols, n)
    rows = -(-n // cols)
    grid = np.zeros((rows * h, cols * w, c), dtype=np.uint8)
    for i, img in enumerate(images):
        r, q = divmod(i, cols)
        grid[r * h : (r + 1) * h, q * w : (q + 1) * w] = img
    return grid


@dataclass(frozen=True)
class GridLayout:
    """samples/<trial>.json: one sample's size, the grid's shape, and each sample's caption."""

    tile: tuple[int, int]  # (height, width) of one sample
    shape: tuple[int, int]  # (rows, columns)
    n: int
    captions: tuple[str, ...] = ()


def write_grid(png: Path, images: np.ndarray, labels=(), captions=(), seed: int = 0) -> GridLayout:
    """Write `png` and its JSON layout beside it (atomically: never a half-written file)."""
    from PIL import Image

    from sgbench.run.rundir import write_atomic

    images = np.asarray(images)
    grid = images_to_grid(images)
    tmp = png.with_name(f".{png.name}.tmp.png")
    Image.fromarray(grid.squeeze(-1) if grid.shape[-1] == 1 else grid).save(tmp)
    tmp.replace(png)
    n, h, w = images.shape[:3]
    cols = min(GRID_COLUMNS, n)
    layout = GridLayout((int(h), int(w)), (-(-n // cols), cols), int(n), tuple(str(c) for c in captions))
    meta = {"tile": list(layout.tile), "grid": list(layout.shape), "n": layout.n, "seed": int(seed),
            "labels": [int(x) for x in labels], "captions": list(layout.captions)}
    write_atomic(png.with_suffix(".json"), json.dumps(meta, ensure_ascii=False) + "\n")
    return layout


def read_layout(png: Path) -> GridLayout | None:
    """The layout beside a grid, or None when absent or not what `write_grid` writes."""
    try:
        meta = json.loads(Path(png).with_suffix(".json").read_text(encoding="utf-8"))
        tile = tuple(int(x) for x in meta["tile"])
        shape = tuple(int(x) for x in meta["grid"])
        n = int(meta["n"])
        captions = tuple(str(c) for c in meta.get("captions") or ())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if len(tile) != 2 or len(shape) != 2 or min(*tile, *shape, n) < 1 or n > shape[0] * shape[1]:
        return None
    return GridLayout(tile, shape, n, captions if len(captions) == n else ())
