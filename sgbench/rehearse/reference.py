"""Reference stand-ins: an ADM reference batch (openai/guided-diffusion's layout: `arr_0` uint8
[N, H, W, 3] images, `mu`/`sigma` pool_3 and `mu_s`/`sigma_s` spatial statistics, float64) whose
statistics come from the extractor the run uses, so FID and sFID read them as ADM's evaluator
does; or a plain `arr_0` batch for other extractors. `subset_reference` keeps a user's own
batch but only its first images, whose features a CPU computes in seconds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

N_IMAGES = 16  # > k = 3 neighbours for precision/recall, a few seconds of Inception on a CPU


def random_images(n: int, side: int, seed: int = 0) -> np.ndarray:
    """uint8 [n, side, side, 3]: smooth random colour fields (8x8 noise, bilinearly upsampled)."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 8, 8, generator=g)
    up = F.interpolate(low, size=(side, side), mode="bilinear", align_corners=False)
    return (up * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _savez(path: Path, **arrays) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return path


def adm_statistics(extractor, images: np.ndarray) -> dict[str, np.ndarray]:
    """ADM's keys for `images` under `extractor`: mu, sigma (pool) and mu_s, sigma_s (spatial)."""
    from sgbench.metrics.reference import ADM_STAT_KEYS, ReferenceSet

    ref = ReferenceSet.from_batches(extractor, [images], max_features=0)
    out = {}
    for kind, (mu_key, sigma_key) in ADM_STAT_KEYS.items():
        if kind in ref.gaussians:
            out[mu_key] = ref.gaussians[kind].mu.astype(np.float64)
            out[sigma_key] = ref.gaussians[kind].sigma.astype(np.float64)
    return out


def write_adm_reference(path, extractor, side: int, n: int = N_IMAGES, seed: int = 0) -> Path:
    images = random_images(n, side, seed)
    return _savez(path, arr_0=images, **adm_statistics(extractor, images))


def write_image_reference(path, side: int, n: int = N_IMAGES, seed: int = 0) -> Path:
    return _savez(path, arr_0=random_images(n, side, seed))


def subset_reference(source, path, n: int = N_IMAGES) -> tuple[Path, int]:
    """The user's .npz with its statistics as they are and only its first `n` images (arr_0);
    returns (path, images in the source). Reads the source through the metrics' own readers."""
    from sgbench.metrics.image_io import count_images, iter_images, npz_keys

    keys = set(npz_keys(source))
    total = count_images(source) if "arr_0" in keys else 0
    arrays = {}
    with np.load(source) as f:
        for key in sorted(keys - {"arr_0"}):
            arrays[key] = f[key]
    if total:
        arrays["arr_0"] = np.concatenate(list(iter_images(source, batch_size=n, limit=n)))
    return _savez(path, **arrays), total
