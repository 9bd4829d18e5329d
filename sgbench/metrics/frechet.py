"""Fréchet distance between two Gaussians, with the numerical handling of ADM's evaluator.

openai/guided-diffusion `evaluations/evaluator.py` (after TTUR): scipy `sqrtm` of the product
of covariances; when the result is not finite, retry with `eps` added to both diagonals; a
complex result is accepted only when its diagonal's imaginary part is within 1e-3 of zero.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg


def _sqrtm(a: np.ndarray) -> np.ndarray:
    # ADM passes disp=False (deprecated since SciPy 1.16); both return the same matrix root.
    # ADM also silences SciPy's "singular matrix" warning: a non-finite root is retried below.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        out = linalg.sqrtm(a)
    return out[0] if isinstance(out, tuple) else out


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), exactly as ADM computes it."""
    return frechet_distance_and_root(mu1, sigma1, mu2, sigma2, eps)[0]


def frechet_distance_and_root(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> tuple[float, np.ndarray]:
    """The distance and the root (S1 S2)^(1/2) it used (its standard error reuses the root)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, dtype=np.float64)), np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64)), np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean vectors have different lengths: {mu1.shape} vs {mu2.shape}")
    if sigma1.shape != sigma2.shape or sigma1.shape != (mu1.shape[0],) * 2:
        raise ValueError(f"covariances have incompatible shapes: {sigma1.shape}, {sigma2.shape}, mean {mu1.shape}")
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        # The product may be (nearly) singular, e.g. fewer samples than dimensions.
        warnings.warn(f"frechet distance: singular product; adding {eps} to the covariance diagonals")
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        # Round-off can leave a small imaginary residue; a large one means the inputs are bad.
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"frechet distance: imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)), covmean
