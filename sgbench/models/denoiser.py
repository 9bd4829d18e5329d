"""The one interface guidance and samplers see: velocity in the paper's convention.

Paper / SiT convention: x_t = (1 - t) * z + t * x, t = 0 is noise, t = 1 is data, v = x - z.
Whatever the backbone predicts natively (SiT velocity, tread's rectified flow with t = 1 as
noise, EDM's denoised D(x; sigma)), a Denoiser converts it, so guidance rules and samplers never
care where a model came from.

Conditions: for class-conditional models `cond` is a LongTensor of class ids and the id
`num_classes` is the null (unconditional) condition. Other condition types (text) implement
`null_condition` / `random_condition` themselves.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from sgbench.models.routing import GeneratorLike


class Denoiser(nn.Module):
    """Base class: wraps a backbone; `forward` returns the velocity v(x_t, t | cond; gamma)."""

    #: the network's native parametrization, for records and error messages
    parametrization: str = "velocity"

    def __init__(self, backbone: nn.Module, num_classes: int, latent_shape: Sequence[int]):
        super().__init__()
        self.backbone = backbone
        self.num_classes = int(num_classes)
        self.latent_shape = tuple(int(s) for s in latent_shape)  # (C, H, W) of x_t

    @property
    def num_tokens(self) -> int:
        return int(self.backbone.num_tokens)

    @property
    def null_id(self) -> int:
        return self.num_classes

    def null_condition(self, cond: torch.Tensor) -> torch.Tensor:
        return torch.full_like(cond, self.null_id)

    def random_condition(self, cond: torch.Tensor, generators: GeneratorLike = None) -> torch.Tensor:
        """Independently drawn real classes (never the null id), one per sample (for ICG)."""
        if isinstance(generators, (list, tuple)):
            ids = [int(torch.randint(self.num_classes, (1,), generator=g, device=g.device)) for g in generators]
            return torch.tensor(ids, dtype=cond.dtype, device=cond.device)
        return torch.randint(self.num_classes, cond.shape, generator=generators, device=cond.device).to(cond.dtype)

    def forward(self, x, t, cond, gamma: float = 0.0, keep_idx=None, generator: GeneratorLike = None):
        raise NotImplementedError


class VelocityDenoiser(Denoiser):
    """Backbone already predicts v = x - z with t = 0 noise (SiT, sgbench's own training).

    With learn_sigma (DiT/SiT checkpoints) the output has 2C channels; the first C are v.
    """

    parametrization = "velocity"

    def forward(self, x, t, cond, gamma: float = 0.0, keep_idx=None, generator: GeneratorLike = None):
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(x.shape[0])
        out = self.backbone(x, t, cond, gamma=gamma, keep_idx=keep_idx, generator=generator)
        return out[:, : x.shape[1]]
