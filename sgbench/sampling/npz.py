"""Atomic, byte-reproducible `.npz` writing (the ADM sample-batch format).

ADM's layout (openai/guided-diffusion `image_sample.py` writes it, its `evaluator.py` reads it):
`arr_0` uint8 images [N, H, W, 3], `arr_1` int64 class labels [N]. sgbench's sample files use
exactly these names (`IMAGES`, `LABELS`, from `sgbench.npz_layout`); files of older sgbench versions stored labels as
`labels` and are still read (`npz_labels`).

`np.savez` stamps the wall-clock time into the zip headers, so two identical runs give
different bytes. Here every member has a fixed date and no compression (like np.savez), and
arrays can be streamed chunk by chunk, so merging 50k 256x256 images never holds them all in
memory. Files are written to a hidden temporary in the same directory, fsync'ed, then
`os.replace`d: a final name never holds a partial file.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Union

import numpy as np

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
TMP_SUFFIX = ".tmp"
from sgbench.npz_layout import IMAGES, LABELS, LEGACY_LABELS, labels_key  # noqa: F401 (re-exported)


class Streamed:
    """An array given as dtype, shape and an iterable of C-ordered chunks along axis 0."""

    def __init__(self, dtype, shape, chunks: Iterable[np.ndarray]):
        self.dtype, self.shape, self.chunks = np.dtype(dtype), tuple(int(s) for s in shape), chunks


ArrayLike = Union[np.ndarray, Streamed]


def tmp_name(final: Path) -> str:
    """Prefix of the temporaries of `final`: hidden, so globs of final names never see them."""
    return f".{final.name}."


def atomic_write(path: Path, write: Callable[[object], None]) -> Path:
    """Write through `write(fileobj)` into a temporary next to `path`, then rename onto it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=tmp_name(path), suffix=TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _write_member(zf: zipfile.ZipFile, name: str, arr: ArrayLike) -> None:
    info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    with zf.open(info, "w", force_zip64=True) as f:
        if isinstance(arr, np.ndarray):
            np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)
            return
        header = {"descr": np.lib.format.dtype_to_descr(arr.dtype), "fortran_order": False, "shape": arr.shape}
        np.lib.format.write_array_header_1_0(f, header)
        written, expected = 0, int(np.prod(arr.shape))
        for chunk in arr.chunks:
            chunk = np.ascontiguousarray(chunk, dtype=arr.dtype)
            f.write(chunk.tobytes())
            written += chunk.size
        if written != expected:
            raise ValueError(f"{name}: streamed {written} elements, header promises {expected}")


def write_npz(path, arrays: Mapping[str, ArrayLike]) -> Path:
    """Atomically write `arrays` (name -> ndarray or Streamed) as an uncompressed .npz."""

    def write(f):
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, arr in arrays.items():
                _write_member(zf, name, arr)

    return atomic_write(Path(path), write)
