"""The built-in datasets: procedural shapes, precomputed latents, image folders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sgbench.data import shapes
from sgbench.data.arrays import ArrayDataset
from sgbench.data.registry import DataSplits, register_dataset
from sgbench.errors import UserError


@dataclass
class ShapesOptions:
    n_train: int = 20000
    n_heldout: int = 2000
    train_seed: int = shapes.TRAIN_SEED
    heldout_seed: int = shapes.HELDOUT_SEED

    def check(self, path):
        if self.n_train <= 0 or self.n_heldout < 0:
            raise UserError(f"{path}: n_train must be > 0 and n_heldout >= 0")
        if self.train_seed == self.heldout_seed:
            raise UserError(f"{path}: train_seed and heldout_seed must differ (held-out images must be unseen)")


def _nchw(images_nhwc: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2))


@register_dataset("shapes", ShapesOptions, "procedural 32x32 RGB shapes, 10 structural classes")
def build_shapes(o: ShapesOptions) -> DataSplits:
    x, y = shapes.make_shapes(o.n_train, o.train_seed)
    train = ArrayDataset(_nchw(x), y, shapes.NUM_CLASSES, "pixel", "shapes", {"image_size": shapes.IMAGE_SIZE})
    heldout = None
    if o.n_heldout:
        hx, hy = shapes.make_shapes(o.n_heldout, o.heldout_seed)
        heldout = ArrayDataset(_nchw(hx), hy, shapes.NUM_CLASSES, "pixel", "shapes", {"image_size": shapes.IMAGE_SIZE})
    return DataSplits(train, heldout)


@dataclass
class LatentOptions:
    """Precomputed SD-VAE latents, already multiplied by the VAE scale (0.18215) unless `scale` says.

    `path` is one of: a `.npz` file with arrays `latents` [N, C, H, W] and `labels` [N]; a folder
    of such `.npz` shards (concatenated in name order); or a folder with `latents.npy` and
    `labels.npy` (memory-mapped, for datasets larger than RAM).
    """

    path: str
    num_classes: int = 1000
    scale: float = 1.0  # multiply stored latents by this (0.18215 for raw VAE means)
    heldout_fraction: float = 0.0  # last fraction of the data kept out of training
    image_size: int = 256  # pixel side the latents decode to (recorded in exported metadata)


def _load_npz(p: Path):
    try:
        with np.load(p) as f:
            if "latents" not in f or "labels" not in f:
                raise UserError(f"{p}: expected arrays 'latents' and 'labels', found {', '.join(f.files)}")
            return f["latents"], f["labels"]
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read latents {p}: {e}") from None


def _check_latents(x, y, where, num_classes):
    if x.ndim != 4:
        raise UserError(f"{where}: latents must be [N, C, H, W], got shape {tuple(x.shape)}")
    if y.ndim != 1 or len(y) != len(x):
        raise UserError(f"{where}: labels must be [N] with N = {len(x)}, got shape {tuple(y.shape)}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise UserError(f"{where}: labels must lie in [0, {num_classes}), got [{int(y.min())}, {int(y.max())}]")


@register_dataset("latents", LatentOptions, "precomputed VAE latents (.npz, folder of .npz shards, or latents.npy+labels.npy)")
def build_latents(o: LatentOptions) -> DataSplits:
    p = Path(o.path).expanduser()
    if p.is_file():
        x, y = _load_npz(p)
    elif p.is_dir() and (p / "latents.npy").is_file():
        if not (p / "labels.npy").is_file():
            raise UserError(f"{p}: latents.npy found but labels.npy is missing")
        x = np.load(p / "latents.npy", mmap_mode="r")
        y = np.load(p / "labels.npy")
    elif p.is_dir():
        shards = sorted(p.glob("*.npz"))
        if not shards:
            raise UserError(f"{p}: no .npz shards and no latents.npy in this folder")
        parts = [_load_npz(s) for s in shards]
        x = np.concatenate([a for a, _ in parts])
        y = np.concatenate([b for _, b in parts])
    else:
        raise UserError(f"latents not found: {p}")
    _check_latents(x, y, p, o.num_classes)
    if o.scale != 1.0:
        x = (np.asarray(x, dtype=np.float32) * o.scale).astype(np.float32)
    y = np.asarray(y, dtype=np.int64)
    n_held = int(len(x) * o.heldout_fraction)
    meta = {"image_size": o.image_size}
    train = ArrayDataset(x[: len(x) - n_held], y[: len(x) - n_held], o.num_classes, "latent", "latents", meta)
    held = ArrayDataset(x[len(x) - n_held :], y[len(x) - n_held :], o.num_classes, "latent", "latents", meta) if n_held else None
    return DataSplits(train, held)


@dataclass
class ImageFolderOptions:
    """Class subfolders of images (`root/<class>/*.png|jpg`), classes in sorted folder-name order."""

    path: str
    image_size: int = 32  # images are resized (bicubic) to image_size x image_size
    heldout_fraction: float = 0.0


_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


@register_dataset("image_folder", ImageFolderOptions, "class subfolders of images, resized to image_size")
def build_image_folder(o: ImageFolderOptions) -> DataSplits:
    from PIL import Image

    root = Path(o.path).expanduser()
    if not root.is_dir():
        raise UserError(f"image folder not found: {root}")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not classes:
        raise UserError(f"{root}: no class subfolders")
    xs, ys = [], []
    for ci, c in enumerate(classes):
        for f in sorted((root / c).iterdir()):
            if f.suffix.lower() not in _IMAGE_EXT:
                continue
            try:
                im = Image.open(f).convert("RGB")
            except OSError as e:
                raise UserError(f"cannot read image {f}: {e}") from None
            if im.size != (o.image_size, o.image_size):
                im = im.resize((o.image_size, o.image_size), Image.BICUBIC)
            xs.append(np.asarray(im, dtype=np.uint8))
            ys.append(ci)
    if not xs:
        raise UserError(f"{root}: no images ({', '.join(sorted(_IMAGE_EXT))}) in the class subfolders")
    x = _nchw(np.stack(xs))
    y = np.asarray(ys, dtype=np.int64)
    # Deterministic shuffle so a held-out tail covers every class.
    perm = np.random.default_rng(0).permutation(len(x))
    x, y = x[perm], y[perm]
    n_held = int(len(x) * o.heldout_fraction)
    meta = {"image_size": o.image_size, "classes": classes}
    train = ArrayDataset(x[: len(x) - n_held], y[: len(x) - n_held], len(classes), "pixel", "image_folder", meta)
    held = ArrayDataset(x[len(x) - n_held :], y[len(x) - n_held :], len(classes), "pixel", "image_folder", meta) if n_held else None
    return DataSplits(train, held)
