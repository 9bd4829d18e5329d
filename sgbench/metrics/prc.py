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
MAX_COVER = 32  # covering samples kept per reference point (bootstrap of recall, exact up to e^-32)


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


def manifold_radii(
    features, k: int = 3, dtype: str = "float16", device=None, row_batch: int = ROW_BATCH, col_batch: int = COL_BATCH
) -> np.ndarray:
    """Squared distance of each point to its k-th nearest neighbour (self counted at rank 0)."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    x = torch.as_tensor(np.asarray(features, dtype=np.float32), device=dev)
    n = x.shape[0]
    if n <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} points, got {n}")
    radii = np.zeros(n, dtype=np.float32)
    for r0 in range(0, n, row_batch):
        rows = x[r0 : r0 + row_batch]
        dist = torch.cat([_block(rows, x[c0 : c0 + col_batch], dtype) for c0 in range(0, n, col_batch)], dim=1)
        radii[r0 : r0 + len(rows)] = torch.topk(dist, k + 1, dim=1, largest=False).values[:, k].cpu().numpy()
    return radii


@dataclass
class Coverage:
    """The decisions behind precision and recall.

    fake_covered: bool [N], sample i lies in some reference ball (precision = its mean);
    real_cover: int [M, T], for reference point j up to T samples whose ball covers it
    (-1 = none; recall = fraction of rows with any)."""

    fake_covered: np.ndarray
    real_cover: np.ndarray

    @property
    def precision(self) -> float:
        return float(self.fake_covered.mean())

    @property
    def recall(self) -> float:
        return float((self.real_cover >= 0).any(axis=1).mean())


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
                                    max_cover=1)
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
) -> Coverage:
    """`Coverage` of `fake` samples against `real` reference features (see precision_recall)."""
    real = np.asarray(real, dtype=np.float32)
    fake = np.asarray(fake, dtype=np.float32)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be [N, D] with equal D, got {real.shape} and {fake.shape}")
    radii_real = _radii(real, radii_real, k, dtype, device, row_batch, col_batch)
    radii_fake = _radii(fake, radii_fake, k, dtype, device, row_batch, col_batch)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    r_real = torch.as_tensor(radii_real, device=dev)
    r_fake = torch.as_tensor(radii_fake, device=dev)
    real_t, fake_t = torch.as_tensor(real, device=dev), torch.as_tensor(fake, device=dev)
    fake_covered = torch.zeros(len(fake), dtype=torch.bool, device=dev)  # -> precision
    real_cover = []  # -> recall: per row block, [rows, T] covering sample indices (-1: none)
    t = max(1, min(int(max_cover), len(fake)))
    for r0 in range(0, len(real), row_batch):
        best_slack, best_idx = [], []
        for c0 in range(0, len(fake), col_batch):
            d = _block(real_t[r0 : r0 + row_batch], fake_t[c0 : c0 + col_batch], dtype)
            fake_covered[c0 : c0 + col_batch] |= (d <= r_real[r0 : r0 + row_batch][:, None]).any(dim=0)
            # slack <= 0: sample c0+j's ball covers the reference point; keep the t deepest
            slack = d - r_fake[c0 : c0 + col_batch][None, :]
            vals, idx = torch.topk(slack, min(t, slack.shape[1]), dim=1, largest=False)
            best_slack.append(vals)
            best_idx.append(idx + c0)
        vals, idx = torch.cat(best_slack, dim=1), torch.cat(best_idx, dim=1)
        if vals.shape[1] > t:
            vals, pick = torch.topk(vals, t, dim=1, largest=False)
            idx = torch.gather(idx, 1, pick)
        real_cover.append(torch.where(vals <= 0, idx, torch.full_like(idx, -1)))
    return Coverage(fake_covered.cpu().numpy(), torch.cat(real_cover).cpu().numpy())
