"""Streaming Gaussian statistics of feature vectors (float64 sums and outer-product sums).

`FeatureStats` sees features batch by batch, so 50k samples never sit in memory; its mean and
covariance equal `np.mean(x, 0)` and `np.cov(x, rowvar=False)` of the concatenated batches
(the estimator ADM's evaluator uses).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from sgbench.errors import UserError


@dataclass
class GaussianStats:
    """Mean and covariance of a feature set (precomputed, e.g. ADM's `mu`/`sigma`)."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int = 0  # 0 = unknown (precomputed statistics)


class FeatureStats:
    """Running count, sum and sum of outer products of D-dimensional features."""

    def __init__(self, dim: int):
        self.dim = int(dim)
        self.n = 0
        self.sum = np.zeros(self.dim, dtype=np.float64)
        self.sum_outer = np.zeros((self.dim, self.dim), dtype=np.float64)

    def update(self, features) -> "FeatureStats":
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected features of shape [N, {self.dim}], got {x.shape}")
        self.n += x.shape[0]
        self.sum += x.sum(axis=0)
        self.sum_outer += x.T @ x
        return self

    def merge(self, other: "FeatureStats") -> "FeatureStats":
        """Add another accumulator's data (e.g. from another sampling shard)."""
        if other.dim != self.dim:
            raise ValueError(f"cannot merge stats of dim {other.dim} into dim {self.dim}")
        self.n += other.n
        self.sum += other.sum
        self.sum_outer += other.sum_outer
        return self

    @property
    def mean(self) -> np.ndarray:
        if self.n < 1:
            raise ValueError("no features accumulated")
        return self.sum / self.n

    @property
    def cov(self) -> np.ndarray:
        """Unbiased covariance (divides by n - 1), like np.cov(rowvar=False)."""
        if self.n < 2:
            raise ValueError(f"covariance needs at least 2 samples, got {self.n}")
        mu = self.mean
        return (self.sum_outer - self.n * np.outer(mu, mu)) / (self.n - 1)

    def gaussian(self) -> GaussianStats:
        return GaussianStats(self.mean, self.cov, self.n)

    # -- persistence -------------------------------------------------------------------------
    def save(self, path) -> None:
        """Atomic .npz write of the raw sums (so shards can be merged later)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, n=np.int64(self.n), sum=self.sum, sum_outer=self.sum_outer)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path) -> "FeatureStats":
        try:
            with np.load(path) as f:
                n, s, so = int(f["n"]), f["sum"], f["sum_outer"]
        except (OSError, KeyError, ValueError) as e:
            raise UserError(f"cannot read feature statistics {path}: {e}") from None
        out = cls(s.shape[0])
        out.n, out.sum, out.sum_outer = n, s.astype(np.float64), so.astype(np.float64)
        return out


def gaussian_from_features(features: np.ndarray) -> GaussianStats:
    """Batch statistics exactly as ADM's `compute_statistics` (np.mean, np.cov(rowvar=False))."""
    x = np.asarray(features)
    return GaussianStats(np.mean(x, axis=0), np.cov(x, rowvar=False), x.shape[0])


def as_gaussian(stats) -> Optional[GaussianStats]:
    if stats is None or isinstance(stats, GaussianStats):
        return stats
    if isinstance(stats, FeatureStats):
        return stats.gaussian()
    raise TypeError(f"expected GaussianStats or FeatureStats, got {type(stats).__name__}")
