"""Procedural 32x32 RGB shapes: the embedded quickstart dataset (no download).

Ten classes that differ only in *structure* (every class gets the same random hue, size,
position, rotation and background), so a class-conditional model must learn shape, not colour:

    0 disk   1 square   2 triangle   3 plus   4 ring   5 hollow frame   6 three stripes
    7 half-disk   8 pair of distant disks   9 diagonal X

Each shape is a signed distance function (SDF) in the shape's own rotated, size-normalised
frame; one pixel of anti-aliasing comes from clipping the SDF in pixel units. Images are drawn
in chunks of `CHUNK` with a generator seeded by (seed, chunk index), so image i of a seed is the
same whatever n is asked for (prefixes are stable), and labels cycle i % 10 (balanced).
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = (
    "disk",
    "square",
    "triangle",
    "plus",
    "ring",
    "frame",
    "stripes",
    "half_disk",
    "disk_pair",
    "x_cross",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SIZE = 32
CHUNK = 1024
PIXEL_NOISE = 0.02
MAX_ROTATION_DEG = 20.0  # below 22.5 deg so a rotated plus never becomes an X


def _box(u, v, a, b):
    """Approximate SDF of the axis-aligned box |u| <= a, |v| <= b (exact outside the corners)."""
    return np.maximum(np.abs(u) - a, np.abs(v) - b)


def _circle(u, v, cu, cv, r):
    return np.sqrt((u - cu) ** 2 + (v - cv) ** 2) - r


def _sdf(label: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance (in units of the shape size; < 0 inside) of class `label` at (u, v)."""
    if label == 0:  # disk
        return _circle(u, v, 0, 0, 1.0)
    if label == 1:  # square
        return _box(u, v, 0.85, 0.85)
    if label == 2:  # equilateral triangle pointing up (v grows downwards), centroid at 0
        s3 = np.sqrt(3.0) / 2
        d = [v - 0.5, -s3 * u - 0.5 * v - 0.5, s3 * u - 0.5 * v - 0.5]
        return np.maximum(np.maximum(d[0], d[1]), d[2]) * 1.0
    if label == 3:  # thick plus
        return np.minimum(_box(u, v, 1.0, 0.3), _box(u, v, 0.3, 1.0))
    if label == 4:  # ring
        return np.abs(np.sqrt(u**2 + v**2) - 0.75) - 0.25
    if label == 5:  # hollow square frame
        m = np.maximum(np.abs(u), np.abs(v))
        return np.maximum(m - 0.9, 0.55 - m)
    if label == 6:  # block of three horizontal stripes
        stripes = np.minimum(np.minimum(np.abs(v + 0.6), np.abs(v)), np.abs(v - 0.6)) - 0.17
        return np.maximum(np.abs(u) - 0.9, stripes)
    if label == 7:  # half-disk (flat side down), centred on its bounding box
        return np.maximum(_circle(u, v, 0, 0.45, 1.05), v - 0.45)
    if label == 8:  # two distant small disks
        return np.minimum(_circle(u, v, -0.8, 0, 0.38), _circle(u, v, 0.8, 0, 0.38))
    if label == 9:  # thin diagonal X
        a, b = (u + v) / np.sqrt(2.0), (u - v) / np.sqrt(2.0)
        return np.minimum(_box(a, b, 1.15, 0.15), _box(b, a, 1.15, 0.15))
    raise ValueError(f"unknown shape class {label}")


def _hsv_to_rgb(h, s, v):
    """Vectorised HSV -> RGB, all arrays in [0, 1]; returns [..., 3]."""
    i = np.floor(h * 6.0).astype(np.int64) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = np.stack(
        [np.stack(c, -1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))], 0
    )  # [6, N, 3]
    return np.take_along_axis(table, i[None, :, None].repeat(3, axis=2), axis=0)[0]


def _draw_chunk(labels: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Float images [n, size, size, 3] in [0, 1] for the given labels."""
    n = len(labels)
    scale = size / 32.0
    # Every random draw happens for every image, in a fixed order, whatever its class.
    radius = rng.uniform(5.5, 9.5, n) * scale
    cx = rng.uniform(11.0, 21.0, n) * scale
    cy = rng.uniform(11.0, 21.0, n) * scale
    theta = np.deg2rad(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG, n))
    fg = _hsv_to_rgb(rng.uniform(0, 1, n), rng.uniform(0.55, 1.0, n), rng.uniform(0.75, 1.0, n))
    bg1 = rng.uniform(0.0, 0.3, (n, 3))
    bg2 = rng.uniform(0.0, 0.3, (n, 3))
    phi = rng.uniform(0, 2 * np.pi, n)
    noise = rng.normal(0.0, PIXEL_NOISE, (n, size, size, 3))

    pix = np.arange(size, dtype=np.float64) + 0.5
    gy, gx = np.meshgrid(pix, pix, indexing="ij")  # [H, W]
    dx = gx[None] - cx[:, None, None]
    dy = gy[None] - cy[:, None, None]
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    u = (cos * dx + sin * dy) / radius[:, None, None]
    v = (-sin * dx + cos * dy) / radius[:, None, None]

    sdf = np.empty((n, size, size))
    for c in np.unique(labels):
        sel = labels == c
        sdf[sel] = _sdf(int(c), u[sel], v[sel])
    alpha = np.clip(0.5 - sdf * radius[:, None, None], 0.0, 1.0)[..., None]  # 1-pixel edge

    # Background: two dark colours blended along a random direction across the image.
    proj = (gx[None] - size / 2) * np.cos(phi)[:, None, None] + (gy[None] - size / 2) * np.sin(phi)[:, None, None]
    w = np.clip(0.5 + proj / (size * np.sqrt(2.0)), 0.0, 1.0)[..., None]
    bg = (1 - w) * bg1[:, None, None, :] + w * bg2[:, None, None, :]
    img = (1 - alpha) * bg + alpha * fg[:, None, None, :] + noise
    return np.clip(img, 0.0, 1.0)


def make_shapes(n: int, seed: int = 0, size: int = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """`n` images (uint8 NHWC) and labels (int64, i % 10), deterministic in (seed, index)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    labels = np.arange(n, dtype=np.int64) % NUM_CLASSES
    for k, start in enumerate(range(0, n, CHUNK)):
        stop = min(start + CHUNK, n)
        rng = np.random.default_rng([int(seed), k])
        chunk_labels = np.arange(start, start + CHUNK, dtype=np.int64) % NUM_CLASSES
        img = _draw_chunk(chunk_labels, rng, size)[: stop - start]
        # Rounding (not truncation) so uint8 -> [-1, 1] -> uint8 round-trips exactly.
        images[start:stop] = np.rint(img * 255.0).astype(np.uint8)
    return images, labels


# Fixed seeds for the splits so every tool agrees on what "held-out" means.
TRAIN_SEED = 0
HELDOUT_SEED = 1


def shapes_reference_images(n: int, seed: int = HELDOUT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Real reference images for metrics: uint8 NHWC [n, 32, 32, 3] and labels [n].

    Defaults to the held-out split (seed 1), which the quickstart model never saw.
    """
    return make_shapes(n, seed)
