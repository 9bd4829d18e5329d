"""Token selection for TREAD routing and MaskDiT masking.

How many of N tokens a sparsity rate gamma keeps is each family's rule (its registry entry's
`kept_tokens`): TREAD drops `int(N * gamma)` (`num_kept`, used by DiT/SiT and the T2I DiT);
MaskDiT keeps `int(N * (1 - gamma))` (`sgbench.models.maskdit.masked_num_kept`), one token
fewer whenever N * gamma is not whole. The functions below take the rule as `kept_rule`.
Which tokens are kept comes either
from an explicit kept-index tensor or from random generators. Kept indices are sorted so a
routed forward depends only on the kept *set*. With a list of per-sample generators the
selection of sample i depends only on its own generator, never on batch composition.
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

import torch

from sgbench.errors import UserError

GeneratorLike = Union[None, torch.Generator, Sequence[torch.Generator]]
KeptRule = Callable[[int, float], int]  # (n_tokens, gamma) -> tokens kept


def num_dropped(n_tokens: int, gamma: float) -> int:
    """Tokens dropped at rate gamma (TREAD's convention: int(N * gamma))."""
    if not 0.0 <= float(gamma) < 1.0:
        raise UserError(f"sparsity rate gamma must lie in [0, 1), got {gamma}")
    return int(n_tokens * float(gamma))


def num_kept(n_tokens: int, gamma: float) -> int:
    """Tokens TREAD keeps at rate gamma: N - int(N * gamma)."""
    return n_tokens - num_dropped(n_tokens, gamma)


def sample_keep_indices(
    batch: int, n_tokens: int, gamma: float, generator: GeneratorLike = None, device=None,
    kept_rule: KeptRule = num_kept,
) -> torch.Tensor:
    """Sorted kept indices [batch, n_kept] (int64), drawn like TREAD (argsort of uniform noise).

    `generator` may be one torch.Generator for the whole batch, or a sequence of `batch`
    generators (one per sample) so that each sample's selection is reproducible on its own.
    """
    k = kept_rule(n_tokens, gamma)
    if isinstance(generator, (list, tuple)):
        if len(generator) != batch:
            raise ValueError(f"expected {batch} generators, got {len(generator)}")
        noise = torch.stack([torch.rand(n_tokens, generator=g, device=g.device) for g in generator])
    else:
        gdev = generator.device if generator is not None else device
        noise = torch.rand(batch, n_tokens, generator=generator, device=gdev)
    idx = noise.argsort(dim=1)[:, :k]
    idx = idx.sort(dim=1).values
    return idx.to(device) if device is not None else idx


def gather_tokens(x: torch.Tensor, keep_idx: torch.Tensor) -> torch.Tensor:
    """x [B, N, D], keep_idx [B, K] -> [B, K, D]."""
    return torch.gather(x, 1, keep_idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def scatter_tokens(full: torch.Tensor, kept: torch.Tensor, keep_idx: torch.Tensor) -> torch.Tensor:
    """Write `kept` [B, K, D] back into a copy of `full` [B, N, D] at keep_idx."""
    idx = keep_idx.unsqueeze(-1).expand(-1, -1, full.shape[-1])
    return full.scatter(1, idx, kept.to(full.dtype))


def check_keep_indices(keep_idx: torch.Tensor, batch: int, n_tokens: int, n_kept: int) -> torch.Tensor:
    """Validate explicit kept indices and return them sorted (so only the kept *set* matters)."""
    if not isinstance(keep_idx, torch.Tensor) or keep_idx.dtype not in (torch.int64, torch.int32):
        raise UserError(f"keep_idx must be an integer tensor of shape [{batch}, {n_kept}]")
    if keep_idx.dim() != 2 or keep_idx.shape[0] != batch or keep_idx.shape[1] != n_kept:
        raise UserError(
            f"keep_idx must have shape [{batch}, {n_kept}] for {n_tokens} tokens, got {tuple(keep_idx.shape)}"
        )
    if keep_idx.numel() and (int(keep_idx.min()) < 0 or int(keep_idx.max()) >= n_tokens):
        raise UserError(f"keep_idx values must lie in [0, {n_tokens})")
    idx = keep_idx.long().sort(dim=1).values
    if n_kept > 1 and bool((idx[:, 1:] == idx[:, :-1]).any()):
        raise UserError("keep_idx must not repeat a token within a sample")
    return idx


def resolve_keep_indices(
    batch: int,
    n_tokens: int,
    gamma: float,
    count: int,
    keep_idx=None,
    generator: GeneratorLike = None,
    device=None,
    kept_rule: KeptRule = num_kept,
) -> list:
    """Kept indices for `count` sparse sections (routes, or MaskDiT's one mask).

    Returns a list of `count` sorted [batch, K] tensors, or of `None`s where gamma drops no
    token (the dense path, bit-identical to a model without sparsity). `keep_idx` may be one
    tensor (shared by all sections) or a list with one tensor per section; otherwise each section
    draws its own selection from `generator` (one generator, or one per sample), in order.
    `kept_rule` is the family's kept-token count.
    """
    k = kept_rule(n_tokens, gamma)
    if k == n_tokens or count == 0:
        return [None] * count
    if keep_idx is not None:
        per = list(keep_idx) if isinstance(keep_idx, (list, tuple)) else [keep_idx] * count
        if len(per) != count:
            raise UserError(f"expected kept indices for {count} sparse sections (routes), got {len(per)}")
        return [check_keep_indices(idx, batch, n_tokens, k).to(device) for idx in per]
    return [sample_keep_indices(batch, n_tokens, gamma, generator, device, kept_rule) for _ in range(count)]
