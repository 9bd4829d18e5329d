"""Standard errors of the quality metrics, from what is already in memory (no regeneration).

Resampling is over samples only (the reference is the same for every trial it is compared
with), by the Poisson bootstrap: replicate b weights sample i by w_bi ~ Poisson(1), drawn from
(seed, i) alone (`poisson_weights`), so a standard error does not depend on the batch size, on
how the stream is split into pruning rungs or workers, and is reproducible. Per metric:
- precision, class accuracy: weighted means of per-sample indicators (`mean_se`);
- recall: the reference points covered by the union of the samples' k-NN balls, each sample's
  radius fixed at its full-set value; the reference radii are never recomputed (`coverage_se`);
- Inception Score: per ADM split, weighted sums of p log p and of p, streamed
  (`sgbench.metrics.isc.InceptionScoreStream(replicates=B)`);
- GenEval and HPSv3: whole prompts (all images of one) resampled (`group_means_se`);
- Fréchet distance (FID, sFID, FD_<extractor>): the bootstrap of its linearisation, whose
  variance has the closed form sum_i IF_i^2 / n^2 with IF the influence function of the
  distance (`frechet_distance_se`). Resampling the distance itself is ~D^3 per replicate and
  overstates its noise when the feature dimension is not small next to n (a resample's
  duplicates act as fewer samples); benchmarks/bench_bootstrap.py measures both against the
  spread over independent sample sets (docs/standard-errors.md).
"""

from __future__ import annotations

import warnings

import numpy as np

CHUNK = 4096  # positions per seeded block of weights
_BOOTSTRAP_STREAM = 0xB007  # keeps these draws apart from any other use of (seed, block)


def poisson_weights(seed: int, start: int, stop: int, replicates: int) -> np.ndarray:
    """uint8 [replicates, stop - start]: the bootstrap weights of sample positions start..stop-1.

    Column i depends only on (seed, start + i) and row b on nothing but b (the first B rows
    are the same for any `replicates` >= B)."""
    if replicates < 1 or stop <= start:
        return np.zeros((max(replicates, 0), max(stop - start, 0)), dtype=np.uint8)
    blocks = []
    for c in range(start // CHUNK, (stop - 1) // CHUNK + 1):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), c, _BOOTSTRAP_STREAM]))
        block = rng.poisson(1.0, (replicates, CHUNK))
        lo, hi = max(start - c * CHUNK, 0), min(stop - c * CHUNK, CHUNK)
        blocks.append(block[:, lo:hi])
    return np.minimum(np.concatenate(blocks, axis=1), 255).astype(np.uint8)


def replicate_se(replicates) -> float:
    """Standard deviation (ddof=1) of bootstrap replicates; nan with fewer than 2."""
    r = np.asarray(replicates, dtype=np.float64)
    r = r[np.isfinite(r)]
    return float(r.std(ddof=1)) if len(r) >= 2 else float("nan")


def mean_se(values, weights: np.ndarray) -> float:
    """Bootstrap standard error of mean(values): replicate b is sum_i w_bi v_i / sum_i w_bi."""
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return replicate_se((w @ v) / w.sum(axis=1))


def coverage_se(cover_idx: np.ndarray, weights: np.ndarray) -> float:
    """Bootstrap standard error of a coverage fraction (recall).

    cover_idx: int [M, T], for each of M points up to T sample indices whose ball covers it
    (-1 = none). A point is covered in replicate b when one of them has weight > 0. Keeping at
    most T covering samples per point is exact up to e^-T (all T weights 0)."""
    idx = np.asarray(cover_idx)
    if idx.size == 0:
        return float("nan")
    valid = idx >= 0
    safe = np.where(valid, idx, 0)
    reps = np.empty(len(weights))
    for b, w in enumerate(weights):  # [M, T] per replicate keeps memory at M * T
        reps[b] = ((w[safe] > 0) & valid).any(axis=1).mean()
    return replicate_se(reps)


def sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a covariance (negative round-off eigenvalues set to 0)."""
    s = np.asarray(sigma, dtype=np.float64)
    lam, vec = np.linalg.eigh((s + s.T) / 2)
    return (vec * np.sqrt(np.clip(lam, 0, None))) @ vec.T


def frechet_influence(features, mu_ref, sqrt_sigma_ref, sigma=None) -> np.ndarray:
    """Influence of each sample on the Fréchet distance to a fixed reference Gaussian [n].

    FD = |mu - mu_r|^2 + Tr S + Tr S_r - 2 Tr (A S A)^(1/2) with A = S_r^(1/2). A sample x
    (centred: c = x - mu) moves it by 2 (mu - mu_r).c + |c|^2 - c' A M^-1/2 A c (M = A S A),
    centred over the samples; directions where M vanishes get no weight (S has rank < D when
    n <= D, and resampling never leaves the span of the samples)."""
    x = np.asarray(features, dtype=np.float64)
    n = x.shape[0]
    mu = x.mean(axis=0)
    xc = x - mu
    if sigma is None:
        sigma = xc.T @ xc / (n - 1)
    a = np.asarray(sqrt_sigma_ref, dtype=np.float64)
    # float32 for the O(D^3) and O(n D^2) products: an error bar needs ~3 digits, and it is 4x faster
    a32 = a.astype(np.float32)
    m = a32 @ np.asarray(sigma, dtype=np.float32) @ a32
    lam, vec = np.linalg.eigh(((m + m.T) / 2).astype(np.float64))
    keep = lam > max(lam.max(), 0.0) * 1e-6 if lam.size else lam > 0
    quad = (xc * xc).sum(axis=1)
    if keep.any():
        u = a32 @ vec[:, keep].astype(np.float32)
        y = (xc.astype(np.float32) @ u).astype(np.float64)
        quad -= (y * y) @ (1.0 / np.sqrt(lam[keep]))
    infl = 2.0 * xc @ (mu - np.asarray(mu_ref, dtype=np.float64)) + quad
    return infl - infl.mean()


def frechet_distance_se(features, mu_ref, sqrt_sigma_ref, sigma=None) -> float:
    """Standard error of the Fréchet distance of `features` [n, D] to a reference (see module)."""
    x = np.asarray(features)
    if x.shape[0] < 2:
        return float("nan")
    infl = frechet_influence(x, mu_ref, sqrt_sigma_ref, sigma)
    return float(np.sqrt((infl * infl).sum()) / x.shape[0])


def group_means_se(values, groups, clusters, weights: np.ndarray) -> tuple[dict, float]:
    """Standard errors of per-group means and of their mean (GenEval's overall over tags, HPSv3's
    over categories), resampling whole clusters (the images of one prompt) with `weights`
    [B, number of clusters]. Returns ({group: se}, se of the mean over groups)."""
    v = np.asarray(values, dtype=np.float64)
    c = np.asarray(clusters, dtype=np.int64)
    g = list(groups)
    w = np.asarray(weights, dtype=np.float64)[:, c]
    per_group, reps = {}, []
    for label in dict.fromkeys(g):
        mask = np.array([x == label for x in g])
        den = w[:, mask].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (w[:, mask] @ v[mask]) / den
        per_group[label] = replicate_se(r)
        reps.append(r)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a replicate that drew no prompt of a group
        overall = np.nanmean(np.stack(reps), axis=0) if reps else np.zeros(0)
    return per_group, replicate_se(overall)
