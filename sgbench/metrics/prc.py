"""Improved precision and recall (Kynkäänniemi et al.) with the semantics of ADM's evaluator.

Mirrors `ManifoldEstimator` / `DistanceBlock` of openai/guided-diffusion:
- distances are *squared* Euclidean, computed as max(|u|^2 - 2 u.v + |v|^2, 0) in float16,
  falling back to float32 for a (row, column) block whose float16 result is not finite;
- blocks of 10000 rows x 10000 columns;
- the radius of a point is its k-th smallest distance within its own set *including itself*
  (index k of the sorted row, self at index 0), k = 3;
- precision = fraction of samples within (<=) the radius of at least one reference point;
  recall = fraction of reference points within the radius of at least one sample.
The matmuls run in torch (float16 on CPU is slow but exact to the recipe; pass device='cuda').
`precision_recall_coverage` also returns which sample each decision rests on, for the
bootstrap standard errors (sgbench.metrics.bootstrap). torch-fidelity calls the metric `prc`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

ROW_BATCH = 10000
COL_BATCH = 10000
MAX_COVER = 16  # candidate covering samples kept per reference point (bootstrap of recall)
NEIGHBOURS = 12  # neighbours kept per sample for the radii of resamples (bootstrap of recall)


def _distances(u: torch.Tensor, v: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    u, v = u.to(dtype), v.to(dtype)
    norm_u = (u * u).sum(dim=1).reshape(-1, 1)
    norm_v = (v * v).sum(dim=1).reshape(1, -1)
    return torch.clamp(norm_u - 2 * (u @ v.T) + norm_v, min=0.0)


def pairwise_sq_distances(u, v, dtype: str = "float16", device=None) -> np.ndarray:
    """[len(u), len(v)] float32 squared distances, float16 with float32 fallback (ADM)."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    u_t = torch.as_tensor(np.asarray(u, dtype=np.float32), device=dev)
    v_t = torch.as_tensor(np.asarray(v, dtype=np.float32), device=dev)
    return _block(u_t, v_t, dtype).cpu().numpy()


def _block(u: torch.Tensor, v: torch.Tensor, dtype: str) -> torch.Tensor:
    if dtype == "float16":
        d = _distances(u, v, torch.float16)
        if bool(torch.isfinite(d).all()):
            return d.float()
    elif dtype != "float32":
        raise ValueError(f"distance dtype must be float16 or float32, got {dtype!r}")
    return _distances(u, v, torch.float32)


def nearest_neighbours(
    features, count: int, dtype: str = "float16", device=None, row_batch: int = ROW_BATCH, col_batch: int = COL_BATCH
) -> tuple[np.ndarray, np.ndarray]:
    """Squared distances [n, count] (ascending) and indices [n, count] of each point's `count`
    nearest points in its own set, itself first (at distance 0)."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    x = torch.as_tensor(np.asarray(features, dtype=np.float32), device=dev)
    n = x.shape[0]
    dists, idx = np.zeros((n, count), dtype=np.float32), np.zeros((n, count), dtype=np.int64)
    for r0 in range(0, n, row_batch):
        rows = x[r0 : r0 + row_batch]
        dist = torch.cat([_block(rows, x[c0 : c0 + col_batch], dtype) for c0 in range(0, n, col_batch)], dim=1)
        top = torch.topk(dist, count, dim=1, largest=False)
        dists[r0 : r0 + len(rows)], idx[r0 : r0 + len(rows)] = top.values.cpu().numpy(), top.indices.cpu().numpy()
    return dists, idx


def manifold_radii(
    features, k: int = 3, dtype: str = "float16", device=None, row_batch: int = ROW_BATCH, col_batch: int = COL_BATCH
) -> np.ndarray:
    """Squared distance of each point to its k-th nearest neighbour (self counted at rank 0)."""
    n = len(features)
    if n <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} points, got {n}")
    return nearest_neighbours(features, k + 1, dtype, device, row_batch, col_batch)[0][:, k].copy()


@dataclass
class Coverage:
    """The decisions behind precision and recall.

    fake_covered: bool [N], sample i lies in some reference ball (precision = its mean);
    real_covered: bool [M], reference point j lies in some sample ball (recall = its mean).
    real_cover, real_cover_d: int/float [M, T], for reference point j up to T samples whose
    ball covers it (-1 = none) and the squared distances to them.
    With neighbours L > 0 (for the bootstrap of recall): `fake_nbr_d`, `fake_nbr_idx` [N, L]
    are each sample's L nearest other samples, and the candidates of real_cover are every
    sample whose L-th neighbour distance reaches the reference point (a resample's radius
    stays within it up to a tail of probability P(Poisson(L) < k))."""

    fake_covered: np.ndarray
    real_covered: np.ndarray
    real_cover: np.ndarray
    real_cover_d: np.ndarray
    radii_fake: np.ndarray
    k: int = 3
    fake_nbr_d: Optional[np.ndarray] = None
    fake_nbr_idx: Optional[np.ndarray] = None

    @property
    def precision(self) -> float:
        return float(self.fake_covered.mean())

    @property
    def recall(self) -> float:
        return float(self.real_covered.mean())


def _radii(features, radii, k, dtype, device, row_batch, col_batch):
    return manifold_radii(features, k, dtype, device, row_batch, col_batch) if radii is None else radii


def precision_recall(
    real,
    fake,
    k: int = 3,
    dtype: str = "float16",
    device=None,
    radii_real: Optional[np.ndarray] = None,
    radii_fake: Optional[np.ndarray] = None,
    row_batch: int = ROW_BATCH,
    col_batch: int = COL_BATCH,
) -> tuple[float, float]:
    """(precision, recall) of `fake` samples against `real` reference features, both [N, D]."""
    cov = precision_recall_coverage(real, fake, k, dtype, device, radii_real, radii_fake, row_batch, col_batch,
                                    max_cover=0)
    return cov.precision, cov.recall


def precision_recall_coverage(
    real,
    fake,
    k: int = 3,
    dtype: str = "float16",
    device=None,
    radii_real: Optional[np.ndarray] = None,
    radii_fake: Optional[np.ndarray] = None,
    row_batch: int = ROW_BATCH,
    col_batch: int = COL_BATCH,
    max_cover: int = MAX_COVER,
    neighbours: int = 0,
) -> Coverage:
    """`Coverage` of `fake` samples against `real` reference features (see precision_recall)."""
    real = np.asarray(real, dtype=np.float32)
    fake = np.asarray(fake, dtype=np.float32)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be [N, D] with equal D, got {real.shape} and {fake.shape}")
    radii_real = _radii(real, radii_real, k, dtype, device, row_batch, col_batch)
    nbr_d = nbr_idx = None
    if neighbours > 0:  # the samples' neighbour lists, for radii of resamples
        count = min(k + 1 + neighbours, len(fake))
        d_all, i_all = nearest_neighbours(fake, count, dtype, device, row_batch, col_batch)
        radii_fake = d_all[:, k].copy()
        nbr_d, nbr_idx = d_all[:, 1:], i_all[:, 1:]  # without the sample itself
        reach = nbr_d[:, -1]
    else:
        radii_fake = _radii(fake, radii_fake, k, dtype, device, row_batch, col_batch)
        reach = radii_fake
    dev = torch.device(device) if device is not None else torch.device("cpu")
    r_real = torch.as_tensor(radii_real, device=dev)
    r_fake = torch.as_tensor(radii_fake, device=dev)
    r_reach = torch.as_tensor(np.maximum(reach, radii_fake), device=dev)  # no resample's ball reaches beyond
    real_t, fake_t = torch.as_tensor(real, device=dev), torch.as_tensor(fake, device=dev)
    fake_covered = torch.zeros(len(fake), dtype=torch.bool, device=dev)  # -> precision
    real_covered = torch.zeros(len(real), dtype=torch.bool, device=dev)  # -> recall
    pairs = []  # -> recall's bootstrap: (reference point, sample, squared distance, slack) within reach
    for r0 in range(0, len(real), row_batch):
        for c0 in range(0, len(fake), col_batch):
            d = _block(real_t[r0 : r0 + row_batch], fake_t[c0 : c0 + col_batch], dtype)
            fake_covered[c0 : c0 + col_batch] |= (d <= r_real[r0 : r0 + row_batch][:, None]).any(dim=0)
            real_covered[r0 : r0 + row_batch] |= (d <= r_fake[c0 : c0 + col_batch][None, :]).any(dim=1)
            if max_cover > 0:
                rows, cols = torch.nonzero(d <= r_reach[c0 : c0 + col_batch][None, :], as_tuple=True)
                dist = d[rows, cols]
                pairs.append((rows + r0, cols + c0, dist, dist - r_fake[c0 + cols]))
    cover, cover_d = _candidates(pairs, len(real), max_cover)
    return Coverage(fake_covered.cpu().numpy(), real_covered.cpu().numpy(), cover, cover_d,
                    np.asarray(radii_fake, dtype=np.float32), k, nbr_d, nbr_idx)


def _candidates(pairs, m: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """[m, T] sample indices (-1: none) and squared distances of each reference point's candidate
    samples: at most t, those whose full-set ball covers it most deeply first."""
    if t <= 0 or not pairs:
        return np.zeros((m, 0), np.int64), np.zeros((m, 0), np.float32)
    rows, cols, dist, slack = (torch.cat(x).cpu().numpy() for x in zip(*pairs))
    order = np.lexsort((slack, rows))
    rows, cols, dist = rows[order], cols[order], dist[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)  # position within its row
    keep = rank < t
    width = int(min(t, rank.max() + 1)) if len(rank) else 0
    cover, cover_d = np.full((m, width), -1, np.int64), np.zeros((m, width), np.float32)
    cover[rows[keep], rank[keep]], cover_d[rows[keep], rank[keep]] = cols[keep], dist[keep]
    return cover, cover_d
