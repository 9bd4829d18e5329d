"""DiT / SiT backbone with TREAD routes, in the state-dict layout of facebookresearch/DiT,
willisma/SiT and CompVis/tread (so their checkpoints load with strict=True).

Sparsity is visible in `forward`: before block `route.start` the kept tokens are gathered,
blocks start..end (inclusive) see only them, and after block `route.end` they are scattered
back into the saved full sequence (dropped tokens pass through unchanged).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from sgbench.errors import UserError
from sgbench.models.routing import (
    GeneratorLike,
    check_keep_indices,
    gather_tokens,
    num_kept,
    sample_keep_indices,
    scatter_tokens,
)


@dataclass(frozen=True)
class Route:
    """TREAD route r_{start->end}: drop before block `start`, re-insert after block `end` (inclusive)."""

    start: int
    end: int

    @classmethod
    def parse(cls, text: str) -> "Route":
        """'2-24' -> Route(2, 24)."""
        try:
            a, b = str(text).split("-")
            return cls(int(a), int(b))
        except ValueError:
            raise UserError(f"route must look like START-END (e.g. 2-24), got {text!r}") from None


@dataclass
class DiTConfig:
    input_size: int = 32  # latent side (256px / 8)
    patch_size: int = 2
    in_channels: int = 4
    hidden_size: int = 1152
    depth: int = 28
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_classes: int = 1000
    class_dropout_prob: float = 0.1  # > 0 adds the null-class row (index num_classes)
    learn_sigma: bool = True
    routes: Sequence[Route] = field(default_factory=tuple)

    def __post_init__(self):
        self.routes = tuple(r if isinstance(r, Route) else Route.parse(r) for r in self.routes)
        if self.input_size % self.patch_size:
            raise UserError(f"input_size {self.input_size} is not divisible by patch_size {self.patch_size}")
        if self.hidden_size % self.num_heads:
            raise UserError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        last = -1
        for r in sorted(self.routes, key=lambda r: r.start):
            if not (0 <= r.start <= r.end < self.depth):
                raise UserError(f"route {r.start}-{r.end} must satisfy 0 <= start <= end < depth={self.depth}")
            if r.start <= last:
                raise UserError(f"routes overlap at block {r.start}")
            last = r.end

    @property
    def num_tokens(self) -> int:
        return (self.input_size // self.patch_size) ** 2

    @property
    def out_channels(self) -> int:
        return self.in_channels * 2 if self.learn_sigma else self.in_channels


# Named sizes as in DiT's `DiT_models` (depth, hidden, heads) x patch size.
_SIZES = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}
DIT_PRESETS = {
    f"{fam}-{size}/{p}": dict(depth=d, hidden_size=h, num_heads=nh, patch_size=p)
    for fam in ("DiT", "SiT")
    for size, (d, h, nh) in _SIZES.items()
    for p in (2, 4, 8)
}


def dit_config(arch: str, **overrides) -> DiTConfig:
    """DiTConfig for a named preset ('SiT-XL/2', 'DiT-B/4', ...) with overrides."""
    if arch not in DIT_PRESETS:
        raise UserError(f"unknown architecture {arch!r}; known: {', '.join(sorted(DIT_PRESETS))}")
    return DiTConfig(**{**DIT_PRESETS[arch], **overrides})


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding as in DiT (cos first, then sin)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class PatchEmbed(nn.Module):
    def __init__(self, patch_size, in_channels, hidden_size):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, hidden_size, patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden_size, frequency_embedding_size=256):
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size)
        )

    def forward(self, t):
        return self.mlp(timestep_embedding(t, self.frequency_embedding_size))


class LabelEmbedder(nn.Module):
    """Class embedding; row `num_classes` is the null class used for CFG."""

    def __init__(self, num_classes, hidden_size, dropout_prob):
        super().__init__()
        self.num_classes = num_classes
        self.dropout_prob = dropout_prob
        self.embedding_table = nn.Embedding(num_classes + int(dropout_prob > 0), hidden_size)

    def forward(self, y):
        # Label dropout for CFG training is the trainer's job (it swaps in the null id).
        return self.embedding_table(y)


class Attention(nn.Module):
    """timm-style multi-head self-attention (keys attn.qkv, attn.proj)."""

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class DiTBlock(nn.Module):
    def __init__(self, hidden_size, num_heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size))

    def forward(self, x, c):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        x = x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x


class FinalLayer(nn.Module):
    def __init__(self, hidden_size, patch_size, out_channels):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


def get_2d_sincos_pos_embed(embed_dim: int, grid_size: int) -> np.ndarray:
    """Fixed 2D sin-cos positional embedding as in MAE/DiT: [grid_size**2, embed_dim]."""
    grid = np.meshgrid(np.arange(grid_size, dtype=np.float32), np.arange(grid_size, dtype=np.float32))
    grid = np.stack(grid, axis=0).reshape(2, 1, grid_size, grid_size)

    def one_d(dim, pos):
        omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    return np.concatenate([one_d(embed_dim // 2, grid[0]), one_d(embed_dim // 2, grid[1])], axis=1)


class DiT(nn.Module):
    """DiT/SiT with optional TREAD routes; gamma and the kept tokens are chosen per call."""

    def __init__(self, config: DiTConfig):
        super().__init__()
        self.config = c = config
        self.num_classes = c.num_classes
        self.in_channels = c.in_channels
        self.out_channels = c.out_channels
        self.patch_size = c.patch_size
        self.num_heads = c.num_heads
        self.routes = tuple(sorted(c.routes, key=lambda r: r.start))
        self.x_embedder = PatchEmbed(c.patch_size, c.in_channels, c.hidden_size)
        self.t_embedder = TimestepEmbedder(c.hidden_size)
        self.y_embedder = LabelEmbedder(c.num_classes, c.hidden_size, c.class_dropout_prob)
        self.pos_embed = nn.Parameter(torch.zeros(1, c.num_tokens, c.hidden_size), requires_grad=False)
        self.blocks = nn.ModuleList([DiTBlock(c.hidden_size, c.num_heads, c.mlp_ratio) for _ in range(c.depth)])
        self.final_layer = FinalLayer(c.hidden_size, c.patch_size, c.out_channels)
        self.initialize_weights()

    @property
    def num_tokens(self) -> int:
        return self.config.num_tokens

    def initialize_weights(self):
        def _basic_init(m):
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

        self.apply(_basic_init)
        grid = int(self.config.num_tokens**0.5)
        self.pos_embed.data.copy_(torch.from_numpy(get_2d_sincos_pos_embed(self.config.hidden_size, grid)).float()[None])
        w = self.x_embedder.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.proj.bias)
        nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def unpatchify(self, x):
        c, p = self.out_channels, self.patch_size
        h = w = int(x.shape[1] ** 0.5)
        x = x.reshape(x.shape[0], h, w, p, p, c)
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(x.shape[0], c, h * p, w * p)

    def route_keep_indices(
        self, batch: int, gamma: float, keep_idx=None, generator: GeneratorLike = None, device=None
    ) -> list[Optional[torch.Tensor]]:
        """Kept indices for each route (None where nothing is dropped, i.e. the dense path)."""
        n, k = self.num_tokens, num_kept(self.num_tokens, gamma)
        if k == n or not self.routes:
            if gamma > 0 and not self.routes:
                raise UserError("gamma > 0 requested but this model has no routes (set routes, e.g. 2-24)")
            return [None] * len(self.routes)
        if keep_idx is not None:
            per_route = list(keep_idx) if isinstance(keep_idx, (list, tuple)) else [keep_idx] * len(self.routes)
            if len(per_route) != len(self.routes):
                raise UserError(f"expected kept indices for {len(self.routes)} routes, got {len(per_route)}")
            for idx in per_route:
                check_keep_indices(idx, batch, n, k)
            return [idx.to(device) for idx in per_route]
        return [sample_keep_indices(batch, n, gamma, generator, device=device) for _ in self.routes]

    def forward(self, x, t, y, gamma: float = 0.0, keep_idx=None, generator: GeneratorLike = None):
        """x [B,C,H,W], t [B] (the network's own time input), y [B] class ids (num_classes = null)."""
        h = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y)
        kept = self.route_keep_indices(h.shape[0], gamma, keep_idx, generator, device=h.device)
        starts = {r.start: (i, r) for i, r in enumerate(self.routes)}
        ends = {r.end: i for i, r in enumerate(self.routes)}
        saved = None
        for i, block in enumerate(self.blocks):
            if i in starts and kept[starts[i][0]] is not None:
                saved = h
                h = gather_tokens(h, kept[starts[i][0]])
            h = block(h, c)
            if i in ends and kept[ends[i]] is not None:
                h = scatter_tokens(saved, h, kept[ends[i]])
                saved = None
        h = self.final_layer(h, c)
        return self.unpatchify(h)
