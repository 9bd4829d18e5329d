"""Flow-matching math as pure functions (paper / SiT convention: t = 0 noise, t = 1 data).

    x_t = (1 - t) z + t x,   target velocity v* = x - z.
"""

from __future__ import annotations

import torch


def sample_t(batch: int, kind: str, device=None, mean: float = 0.0, std: float = 1.0, generator=None) -> torch.Tensor:
    """Training times in (0, 1): 'uniform' or 'logit_normal' (sigmoid of N(mean, std))."""
    if kind == "uniform":
        return torch.rand(batch, device=device, generator=generator)
    if kind == "logit_normal":
        return torch.sigmoid(mean + std * torch.randn(batch, device=device, generator=generator))
    raise ValueError(f"unknown time sampling {kind!r}")


def interpolate(x: torch.Tensor, z: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_t, v*) for data x, noise z and per-sample times t [B]."""
    tb = t.view(-1, *([1] * (x.dim() - 1)))
    return (1 - tb) * z + tb * x, x - z


def flow_matching_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared velocity error (over all elements)."""
    return (pred.float() - target.float()).pow(2).mean()


def token_mask(keep_idx: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """Kept indices [B, K] -> float mask [B, N] with 1 for *masked* (dropped) tokens."""
    m = torch.ones(keep_idx.shape[0], n_tokens, device=keep_idx.device)
    return m.scatter(1, keep_idx, 0.0)


def patch_mask_to_pixels(mask: torch.Tensor, side: int, patch: int) -> torch.Tensor:
    """Token mask [B, N] (row-major grid side x side) -> per-pixel mask [B, 1, side*p, side*p]."""
    m = mask.view(-1, 1, side, side)
    return m.repeat_interleave(patch, dim=2).repeat_interleave(patch, dim=3)


def masked_flow_matching_loss(
    pred: torch.Tensor, target: torch.Tensor, t: torch.Tensor, pixel_mask: torch.Tensor, mae_lambda: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flow-matching loss with MaskDiT's auxiliary MAE term (paper appendix C, eq. A4).

    Visible tokens: ||v_theta - v*||^2. Masked tokens: lambda (1 - t)^2 ||v_theta - v*||^2, i.e. the
    MAE reconstruction error ||D_theta - x||^2 rewritten with D - x = (1 - t)(v_theta - v*)
    (eq. A1 + A2). The printed eq. A3/A4 drops v* inside the masked norm; the derivation it
    follows from (A1, A2) keeps it, and without it the term would push v_theta to 0.
    Each term is averaged over its own tokens. Returns (total, visible term, masked term).
    """
    err = (pred.float() - target.float()).pow(2)
    vis = 1.0 - pixel_mask
    per_elem = vis.expand_as(err)
    fm = (err * per_elem).sum() / per_elem.sum().clamp_min(1.0)
    w = (1 - t.float()).pow(2).view(-1, 1, 1, 1)
    masked = pixel_mask.expand_as(err)
    mae = (err * w * masked).sum() / masked.sum().clamp_min(1.0)
    return fm + mae_lambda * mae, fm, mae
