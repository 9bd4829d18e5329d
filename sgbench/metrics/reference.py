"""Reference sets: Gaussian statistics (+ features for precision/recall) of real images.

Accepted inputs
- ADM reference batch `.npz` (`VIRTUAL_imagenet256_labeled.npz`): `arr_0` images and
  precomputed Inception `mu`, `sigma` (pool_3) and `mu_s`, `sigma_s` (spatial). The precomputed
  statistics are used for FID/sFID as ADM does; features for precision/recall come from `arr_0`.
- `.npz` with `arr_0` uint8 [N, H, W, 3] images, or a folder of images: statistics computed.
Computed results are cached under `cache_dir` keyed by (input path + size + mtime, extractor
name + weights file fingerprint, feature cap), so the second run reads one small file.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Optional

import numpy as np

from sgbench.errors import UserError
from sgbench.progress import bar as progress_bar
from sgbench.progress import counted
from sgbench.metrics.extractors import cache_digest, file_fingerprint
from sgbench.metrics.image_io import count_images, folder_images, iter_images, npz_keys
from sgbench.metrics.stats import FeatureStats, GaussianStats

DEFAULT_MAX_FEATURES = 50000  # reference features kept for precision/recall (ADM's batch has 10k)
ADM_STAT_KEYS = {"pool": ("mu", "sigma"), "spatial": ("mu_s", "sigma_s")}


def default_cache_dir() -> Path:
    return Path(os.environ.get("SGBENCH_CACHE_DIR", Path.home() / ".cache" / "sgbench")) / "refstats"


@dataclass
class ReferenceSet:
    """Statistics per feature kind ('pool', 'spatial') and optional pool features [M, D] for P/R."""

    gaussians: Dict[str, GaussianStats]
    features: Optional[np.ndarray] = None
    source: str = ""
    _radii: Dict[tuple, np.ndarray] = field(default_factory=dict, repr=False)
    _sqrt_sigma: Dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def radii(self, k: int, dtype: str, device=None) -> np.ndarray:
        """k-NN radii of the reference features, computed once per (k, dtype)."""
        from sgbench.metrics.prc import manifold_radii

        if (k, dtype) not in self._radii:
            self._radii[(k, dtype)] = manifold_radii(self.features, k, dtype, device)
        return self._radii[(k, dtype)]

    def sqrt_sigma(self, kind: str) -> np.ndarray:
        """Symmetric square root of the `kind` covariance, computed once (for FD standard errors)."""
        from sgbench.metrics.bootstrap import sqrt_psd

        if kind not in self._sqrt_sigma:
            self._sqrt_sigma[kind] = sqrt_psd(self.gaussians[kind].sigma)
        return self._sqrt_sigma[kind]

    @classmethod
    def from_batches(cls, extractor, batches: Iterable[np.ndarray], max_features: Optional[int] = DEFAULT_MAX_FEATURES, source: str = ""):
        """Stream uint8 NHWC batches through `extractor`: statistics of all, features of the first `max_features`."""
        import torch

        stats = {k: FeatureStats(d) for k, d in extractor.feature_dims.items() if k in ("pool", "spatial")}
        kept, n_kept = [], 0
        for batch in batches:
            for i in range(0, len(batch), extractor.batch_size):
                x = torch.from_numpy(np.ascontiguousarray(batch[i : i + extractor.batch_size])).permute(0, 3, 1, 2)
                out = extractor(x)
                for k, s in stats.items():
                    s.update(out[k].double().numpy())
                if max_features is None or n_kept < max_features:
                    take = out["pool"].numpy()[: None if max_features is None else max_features - n_kept]
                    kept.append(take.astype(np.float32))
                    n_kept += len(take)
        if not stats or next(iter(stats.values())).n < 2:
            raise UserError(f"reference {source or '(batches)'} needs at least 2 images")
        feats = np.concatenate(kept) if kept else None
        return cls({k: s.gaussian() for k, s in stats.items()}, feats, source)


def _input_fingerprint(path: Path) -> str:
    if path.is_dir():
        files = folder_images(path)
        st = [f.stat() for f in files]
        return f"{path.resolve()}|dir|{len(files)}|{sum(s.st_size for s in st)}|{max(s.st_mtime_ns for s in st)}"
    return file_fingerprint(path)


def _save_cache(path: Path, ref: ReferenceSet) -> None:
    arrays = {}
    for kind, g in ref.gaussians.items():
        mu_key, sigma_key = ADM_STAT_KEYS.get(kind, (f"mu_{kind}", f"sigma_{kind}"))
        arrays[mu_key], arrays[sigma_key] = g.mu, g.sigma
        arrays[f"n_{kind}"] = np.int64(g.n)
    if ref.features is not None:
        arrays["features"] = ref.features
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _load_cache(path: Path, kinds, need_features: bool) -> Optional[ReferenceSet]:
    try:
        with np.load(path) as f:
            keys = set(f.keys())
            if need_features and "features" not in keys:
                return None
            gauss = {}
            for kind in kinds:
                mu_key, sigma_key = ADM_STAT_KEYS.get(kind, (f"mu_{kind}", f"sigma_{kind}"))
                if mu_key not in keys:
                    return None
                gauss[kind] = GaussianStats(f[mu_key], f[sigma_key], int(f[f"n_{kind}"]) if f"n_{kind}" in keys else 0)
            feats = f["features"] if "features" in keys else None
    except (OSError, ValueError, KeyError):
        return None  # unreadable cache: recompute
    return ReferenceSet(gauss, feats, str(path))


def _finite(ref: ReferenceSet) -> ReferenceSet:
    """A reference with a NaN or infinite mean or covariance gives NaN metrics: refuse it."""
    for kind, g in ref.gaussians.items():
        if not (np.all(np.isfinite(g.mu)) and np.all(np.isfinite(g.sigma))):
            raise UserError(f"reference {ref.source}: its {kind} statistics contain NaN or infinite values")
    return ref


def load_reference(
    path,
    extractor,
    cache_dir=None,
    need_features: bool = True,
    max_features: Optional[int] = DEFAULT_MAX_FEATURES,
    batch_size: int = 64,
    use_cache: bool = True,
    log=None,
    progress: bool = False,
) -> ReferenceSet:
    """Reference statistics (and P/R features when `need_features`) for `extractor`.
    progress: a bar of the images whose features are computed (on a terminal; not for a cache hit)."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"reference not found: {p} (expected an ADM reference .npz, an .npz with arr_0, or an image folder)")
    kinds = [k for k in ("pool", "spatial") if k in extractor.feature_dims]
    keys = set() if p.is_dir() else set(npz_keys(p))
    adm_stats = extractor.name == "inception" and {"mu", "sigma"} <= keys
    has_images = p.is_dir() or "arr_0" in keys

    precomputed: Dict[str, GaussianStats] = {}
    if adm_stats:
        with np.load(p) as f:
            for kind in kinds:
                mu_key, sigma_key = ADM_STAT_KEYS[kind]
                if mu_key in keys and sigma_key in keys:
                    precomputed[kind] = GaussianStats(f[mu_key], f[sigma_key])
    elif not has_images:
        raise UserError(
            f"reference {p} has no images (arr_0); statistics-only files are accepted for the Inception extractor only"
        )
    if adm_stats and (not has_images or (set(precomputed) == set(kinds) and not need_features)):
        if not has_images:
            missing = [k for k in kinds if k not in precomputed] + (["precision/recall"] if need_features else [])
            if missing:
                log(f"reference {p.name}: statistics only (no arr_0 images); unavailable: {', '.join(missing)}")
        return _finite(ReferenceSet(precomputed, None, str(p)))

    cache_file = None
    if use_cache:
        digest = cache_digest(_input_fingerprint(p), extractor.cache_key, f"max_features={max_features}")
        cache_file = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        cache_file = cache_file / f"{p.stem}-{extractor.name}-{digest}.npz"
        if cache_file.is_file():
            cached = _load_cache(cache_file, kinds, need_features)
            if cached is not None:
                cached.gaussians.update(precomputed)  # ADM's own statistics win, as in its evaluator
                return _finite(cached)

    n = count_images(p)
    log(f"computing reference features of {n} images from {p.name} with {extractor.name} ...")
    batches = counted(iter_images(p, batch_size), progress_bar(n, "reference features", enabled=progress))
    ref = ReferenceSet.from_batches(extractor, batches, max_features, str(p))
    if cache_file is not None:
        _save_cache(cache_file, ref)
    ref.gaussians.update(precomputed)
    return _finite(ref)
