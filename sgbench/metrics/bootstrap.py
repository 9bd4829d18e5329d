"""Standard errors of the quality metrics, from what is already in memory (no regeneration).

Resampling is over samples only (the reference is the same for every trial it is compared
with), by the Poisson bootstrap: replicate b weights sample i by w_bi ~ Poisson(1), drawn from
(seed, i) alone (`poisson_weights`), so a standard error does not depend on the batch size, on
how the stream is split into pruning rungs or workers, and is reproducible. Per metric:
- precision, class accuracy: weighted means of per-sample indicators (`mean_se`);
- recall: the reference points covered by the union of the samples' k-NN balls, each sample's
  radius that of the resample (from its nearest-neighbour list); the reference radii are never
  recomputed (`recall_se`);
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

CHUNK = 256  # positions per seeded block of weights
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


def recall_se(coverage, weights: np.ndarray) -> float:
    """Bootstrap standard error of recall (the reference points inside some sample's k-NN ball).

    In replicate b a sample present w_i times has the radius of the multiset: its own w_i - 1
    copies count as neighbours at distance 0, then each neighbour j as w_bj copies (the
    ordinary bootstrap, copies as points), read off its neighbour list; a reference point is
    covered when a present candidate sample reaches it. `coverage`: prc.Coverage computed with
    neighbours > 0. The reference radii play no part."""
    idx, nbr_idx, nbr_d, k = coverage.real_cover, coverage.fake_nbr_idx, coverage.fake_nbr_d, coverage.k
    if nbr_idx is None:
        return float("nan")
    weights = np.asarray(weights)
    valid = idx >= 0
    if not valid.any():
        return replicate_se(np.zeros(len(weights)))
    safe = np.where(valid, idx, 0)
    # a pair is covered when the sample's radius reaches rank q of its neighbour list (-1: d = 0)
    q = np.where(valid, _ranks(nbr_d, safe, coverage.real_cover_d), np.int8(127))
    last = nbr_idx.shape[1] - 1
    chunk = max(1, 8_000_000 // idx.size)  # replicates per vectorised step
    reps = []
    for b0 in range(0, len(weights), chunk):  # replicates on the last axis: contiguous gathers
        w = np.ascontiguousarray(weights[b0 : b0 + chunk].T, dtype=np.int16)  # [N, c]
        need = k - w + 1  # neighbour copies needed beyond the sample's own copies
        cum, pos = np.zeros_like(w), np.zeros_like(w)
        for col in nbr_idx.T:  # pos = the first neighbour rank whose copies reach `need`
            cum += w[col]
            pos += cum < need
        # rank reached by each sample's radius: -2 absent, -1 radius 0 (its own copies suffice)
        state = np.where(w == 0, -2, np.where(need <= 0, -1, np.minimum(pos, last))).astype(np.int8)
        covered = state[safe] >= q[..., None]  # [M, T, c]
        reps.append(covered.any(axis=1).sum(axis=0) / idx.shape[0])
    return replicate_se(np.concatenate(reps))


def _ranks(nbr_d: np.ndarray, cand: np.ndarray, cand_d: np.ndarray) -> np.ndarray:
    """For (sample, squared distance) pairs (arrays of one shape), the first rank of the sample's
    sorted neighbour distances that reaches the distance (-1 for distance 0, reached by a radius 0)."""
    q = (nbr_d[cand] < cand_d[..., None]).sum(axis=-1)
    return np.where(cand_d <= 0, -1, q).astype(np.int8)


def sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a covariance (negative round-off eigenvalues set to 0)."""
    s = np.asarray(sigma, dtype=np.float64)
    lam, vec = np.linalg.eigh((s + s.T) / 2)
    return (vec * np.sqrt(np.clip(lam, 0, None))) @ vec.T


def frechet_influence(features, mu_ref, sigma_ref, sigma=None, root=None, sqrt_sigma_ref=None) -> np.ndarray:
    """Influence of each sample on the Fréchet distance to a fixed reference Gaussian [n].

    FD = |mu - mu_r|^2 + Tr S + Tr S_r - 2 Tr (S S_r)^(1/2). A sample x (centred: c = x - mu)
    moves it by 2 (mu - mu_r).c + |c|^2 - c' H c with H = S_r (S S_r)^-1/2, centred over the
    samples. H comes from the root (S S_r)^(1/2) the distance itself computed (`root`), when it
    is well conditioned; otherwise from the eigenvectors of M = A S A (A = S_r^(1/2),
    `sqrt_sigma_ref`) as A M^-1/2 A, where directions with M = 0 get no weight (S has rank < D
    when n <= D, and resampling never leaves the span of the samples)."""
    x = np.asarray(features, dtype=np.float32)
    n, dim = x.shape
    mu = x.mean(axis=0, dtype=np.float64)
    xc = x - mu.astype(np.float32)
    if sigma is None:
        xd = xc.astype(np.float64)
        sigma = xd.T @ xd / (n - 1)
    quad = np.einsum("ij,ij->i", xc, xc, dtype=np.float64)
    h = _h_from_root(root, sigma_ref) if root is not None and n > dim else None
    if h is not None:
        quad -= np.einsum("ij,ij->i", xc @ h, xc, dtype=np.float64)
    else:
        if callable(sqrt_sigma_ref):  # computed only when needed (the reference caches it)
            sqrt_sigma_ref = sqrt_sigma_ref()
        a = np.asarray(sqrt_psd(sigma_ref) if sqrt_sigma_ref is None else sqrt_sigma_ref, dtype=np.float32)
        # float32 for the O(D^3) and O(n D^2) steps: an error bar needs ~3 digits, and it is ~2x faster
        m = a @ np.asarray(sigma, dtype=np.float32) @ a
        lam, vec = _eigh32((m + m.T) / 2)
        keep = lam > max(float(lam.max()), 0.0) * 1e-6 if lam.size else lam > 0
        if keep.any():
            y = xc @ (a @ vec[:, keep])
            quad -= (y.astype(np.float64) ** 2) @ (1.0 / np.sqrt(lam[keep].astype(np.float64)))
    infl = 2.0 * (xc @ (mu - np.asarray(mu_ref, dtype=np.float64)).astype(np.float32)).astype(np.float64) + quad
    return infl - infl.mean()


def _h_from_root(root, sigma_ref):
    """H = S_r C^-1 for the root C = (S S_r)^(1/2), symmetrised, float32; None if C is singular."""
    c = np.asarray(root, dtype=np.float64)
    try:
        ht = np.linalg.solve(c.T, np.asarray(sigma_ref, dtype=np.float64).T)  # = C^-T S_r = H^T
    except np.linalg.LinAlgError:
        return None
    if not np.isfinite(ht).all():
        return None
    return ((ht + ht.T) / 2).astype(np.float32)


def _eigh32(m):
    from scipy import linalg

    return linalg.eigh(m.astype(np.float32), driver="evd")


def frechet_distance_se(features, mu_ref, sigma_ref, sigma=None, root=None, sqrt_sigma_ref=None) -> float:
    """Standard error of the Fréchet distance of `features` [n, D] to a reference (see module);
    `sigma`: the samples' covariance and `root`: (sigma sigma_ref)^(1/2), when already computed;
    `sqrt_sigma_ref`: sigma_ref^(1/2) (or a function returning it) for the eigenvector path."""
    x = np.asarray(features)
    if x.shape[0] < 2:
        return float("nan")
    infl = frechet_influence(x, mu_ref, sigma_ref, sigma, root, sqrt_sigma_ref)
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
