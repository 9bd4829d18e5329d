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
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

ROW_BATCH = 10000
COL_BATCH = 10000


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
    real = np.asarray(real, dtype=np.float32)
    fake = np.asarray(fake, dtype=np.float32)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be [N, D] with equal D, got {real.shape} and {fake.shape}")
    if radii_real is None:
        radii_real = manifold_radii(real, k, dtype, device, row_batch, col_batch)
    if radii_fake is None:
        radii_fake = manifold_radii(fake, k, dtype, device, row_batch, col_batch)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    r_real = torch.as_tensor(radii_real, device=dev)
    r_fake = torch.as_tensor(radii_fake, device=dev)
    real_t, fake_t = torch.as_tensor(real, device=dev), torch.as_tensor(fake, device=dev)
    real_covered = torch.zeros(len(real), dtype=torch.bool, device=dev)  # -> recall
    fake_covered = torch.zeros(len(fake), dtype=torch.bool, device=dev)  # -> precision
    for r0 in range(0, len(real), row_batch):
        for c0 in range(0, len(fake), col_batch):
            d = _block(real_t[r0 : r0 + row_batch], fake_t[c0 : c0 + col_batch], dtype)
            real_covered[r0 : r0 + row_batch] |= (d <= r_fake[c0 : c0 + col_batch][None, :]).any(dim=1)
            fake_covered[c0 : c0 + col_batch] |= (d <= r_real[r0 : r0 + row_batch][:, None]).any(dim=0)
    return float(fake_covered.double().mean()), float(real_covered.double().mean())
