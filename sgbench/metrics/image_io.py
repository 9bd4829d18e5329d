"""Read uint8 NHWC image batches from an ADM-style .npz or an image folder, without loading all.

An .npz member is read straight from the zip stream (np.load would materialise 50k x 256 x 256
x 3 = 9.8 GB); compressed archives are inflated on the fly.
"""

from __future__ import annotations

import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from sgbench.errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


@dataclass
class NpzMember:
    shape: tuple
    dtype: np.dtype
    fortran: bool


def npz_keys(path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as z:
            return [n[:-4] for n in z.namelist() if n.endswith(".npy")]
    except (OSError, zipfile.BadZipFile) as e:
        raise UserError(f"cannot read {path} as .npz: {e}") from None


@contextmanager
def _open_member(path, key: str):
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise UserError(f"cannot read {path} as .npz: {e}") from None
    with zf:
        if f"{key}.npy" not in zf.namelist():
            raise UserError(f"{path} has no array {key!r} (has: {', '.join(npz_keys(path)) or 'none'})")
        with zf.open(f"{key}.npy") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise UserError(f"{path}:{key} uses .npy format {version}; re-save it with numpy's np.savez")
            yield f, NpzMember(tuple(shape), np.dtype(dtype), bool(fortran))


def npz_member_info(path, key: str = "arr_0") -> NpzMember:
    with _open_member(path, key) as (_, info):
        return info


def _check_images(info: NpzMember, path, key):
    if len(info.shape) != 4 or info.shape[-1] != 3 or info.dtype != np.uint8:
        raise UserError(
            f"{path}:{key} must be uint8 images [N, H, W, 3] (ADM layout), got {info.dtype} {list(info.shape)}"
        )


def iter_npz_images(path, batch_size: int = 64, key: str = "arr_0", limit: Optional[int] = None) -> Iterator[np.ndarray]:
    """Yield uint8 [b, H, W, 3] batches of `key` in order (at most `limit` images)."""
    with _open_member(path, key) as (f, info):
        _check_images(info, path, key)
        if info.fortran:
            raise UserError(f"{path}:{key} is stored in Fortran order; save it with np.savez from a C-ordered array")
        n = info.shape[0] if limit is None else min(limit, info.shape[0])
        per_image = int(np.prod(info.shape[1:]))
        done = 0
        while done < n:
            b = min(batch_size, n - done)
            buf = f.read(b * per_image)
            if len(buf) != b * per_image:
                raise UserError(f"{path}:{key} is truncated (expected {info.shape[0]} images)")
            yield np.frombuffer(bytearray(buf), dtype=np.uint8).reshape(b, *info.shape[1:])  # writable copy
            done += b


def folder_images(path) -> list[Path]:
    files = sorted(p for p in Path(path).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {path}")
    return files


def iter_folder_images(path, batch_size: int = 64, limit: Optional[int] = None) -> Iterator[np.ndarray]:
    """Yield uint8 [b, H, W, 3] batches of a folder's images (sorted by name; all one size)."""
    from PIL import Image

    files = folder_images(path)[:limit]
    size = None
    for i in range(0, len(files), batch_size):
        batch = []
        for p in files[i : i + batch_size]:
            try:
                with Image.open(p) as im:
                    arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
            except OSError as e:
                raise UserError(f"cannot read image {p}: {e}") from None
            size = size or arr.shape
            if arr.shape != size:
                raise UserError(f"images in {path} differ in size: {p.name} is {arr.shape[:2]}, expected {size[:2]}")
            batch.append(arr)
        yield np.stack(batch)


def count_images(path, key: str = "arr_0") -> int:
    p = Path(path)
    if p.is_dir():
        return len(folder_images(p))
    info = npz_member_info(p, key)
    _check_images(info, p, key)
    return info.shape[0]


def iter_images(path, batch_size: int = 64, limit: Optional[int] = None) -> Iterator[np.ndarray]:
    """Batches from an .npz (`arr_0`) or an image folder."""
    p = Path(path).expanduser()
    if p.is_dir():
        return iter_folder_images(p, batch_size, limit)
    if not p.is_file():
        raise UserError(f"images not found: {p} (expected an .npz with arr_0 or a folder of images)")
    return iter_npz_images(p, batch_size, "arr_0", limit)


def read_npz_labels(path, n: int) -> Optional[np.ndarray]:
    """Class labels stored next to the images (`arr_1` in guided-diffusion and sgbench sample files;
    `labels` in older sgbench files), else None."""
    from sgbench.npz_layout import labels_key

    p = Path(path)
    key = None if p.is_dir() else labels_key(npz_keys(p))
    if key is None:
        return None
    with np.load(p) as f:
        labels = f[key]
    if labels.ndim != 1 or len(labels) != n or not np.issubdtype(labels.dtype, np.integer):
        return None  # arr_1 is something else (e.g. not labels); class accuracy is then skipped
    return labels
