"""DiT / SiT backbone with TREAD routes, in the state-dict layout of facebookresearch/DiT,
willisma/SiT and CompVis/tread (so their checkpoints load with strict=True).

Sparsity is visible in `forward`: before block `route.start` the kept tokens are gathered,
blocks start..end (inclusive) see only them, and after block `route.end` they are scattered
back into the saved full sequence (dropped tokens pass through unchanged).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from typing import Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from sgbench.errors import UserError
from sgbench.models.flop_count import (ForwardAt, attention_score_flops, block_affine, fvcore_flops,
                                       routed_token_counts, traced_component_model)
from sgbench.models.registry import BackboneFamily, FlopCount, register_backbone
from sgbench.models.routing import GeneratorLike, gather_tokens, num_kept, resolve_keep_indices, scatter_tokens


@dataclass(frozen=True)
class Route:
    """TREAD route r_{start->end}: drop before block `start`, re-insert after block `end` (inclusive)."""

    start: int
    end: int

    @classmethod
    def parse(cls, value) -> "Route":
        """'2-24', (2, 24) or tread's {'start_layer_idx': 2, 'end_layer_idx': 24} -> Route(2, 24).

        Indices are 0-based block indices, both inclusive, exactly as in CompVis/tread's
        `dit.py` (compared with `enumerate(self.blocks)`) and the paper's r_{i->j} over layers
        L_0..L_{B-1}: r_{2->24} on DiT-XL/2 (28 blocks) routes blocks 2..24 and leaves 25..27 dense.
        """
        if isinstance(value, Route):
            return value
        try:
            if isinstance(value, dict):
                return cls(int(value["start_layer_idx"]), int(value["end_layer_idx"]))
            if isinstance(value, (list, tuple)):
                a, b = value
            else:
                a, b = str(value).split("-")
            return cls(int(a), int(b))
        except (ValueError, KeyError, TypeError):
            raise UserError(f"route must look like START-END (e.g. 2-24), got {value!r}") from None

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


def parse_routes(routes, depth: int) -> tuple[Route, ...]:
    """Parse one route or a sequence of routes and check they fit `depth` blocks without overlap."""
    if isinstance(routes, (str, dict, Route)):
        routes = [routes]
    parsed = tuple(Route.parse(r) for r in routes)
    last = -1
    for r in sorted(parsed, key=lambda r: r.start):
        if not (0 <= r.start <= r.end < depth):
            raise UserError(f"route {r.start}-{r.end} must satisfy 0 <= start <= end < depth={depth}")
        if r.start <= last:
            raise UserError(f"routes overlap at block {r.start}")
        last = r.end
    return parsed


class PatchGridConfig:
    """Shared by DiT-like configs: a square latent cut into patch_size x patch_size tokens."""

    _positive = ("input_size", "patch_size", "in_channels", "hidden_size", "depth", "num_heads", "num_classes")
    _heads = (("hidden_size", "num_heads"),)

    def check_grid(self) -> None:
        for name in self._positive:
            if int(getattr(self, name)) < 1:
                raise UserError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.input_size % self.patch_size:
            raise UserError(f"input_size {self.input_size} is not divisible by patch_size {self.patch_size}")
        for width, heads in self._heads:
            if getattr(self, width) % getattr(self, heads):
                raise UserError(f"{width} {getattr(self, width)} is not divisible by {heads} {getattr(self, heads)}")

    @property
    def num_tokens(self) -> int:
        return (self.input_size // self.patch_size) ** 2

    @property
    def out_channels(self) -> int:
        return self.in_channels * 2 if self.learn_sigma else self.in_channels


@dataclass
class DiTConfig(PatchGridConfig):
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
        self.routes = parse_routes(self.routes, self.depth)
        self.check_grid()

    def to_dict(self) -> dict:
        """JSON-able dict (routes as 'START-END'); `DiTConfig(**d)` rebuilds it."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["routes"] = [str(r) for r in self.routes]
        return d

    def describe(self) -> str:
        """One-line summary used in error messages."""
        routes = ",".join(str(r) for r in self.routes) or "none"
        return (
            f"DiT(depth {self.depth}, hidden {self.hidden_size}, heads {self.num_heads}, patch {self.patch_size}, "
            f"input {self.input_size}x{self.input_size}x{self.in_channels}, {self.num_classes} classes"
            f"{' + null' if self.class_dropout_prob > 0 else ''}, learn_sigma {self.learn_sigma}, routes {routes})"
        )


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
    """adaLN-Zero block. `cond_size` differs from `hidden_size` only in MaskDiT's decoder."""

    def __init__(self, hidden_size, num_heads, mlp_ratio=4.0, cond_size=None):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_size or hidden_size, 6 * hidden_size))

    def forward(self, x, c):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        x = x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x


class FinalLayer(nn.Module):
    def __init__(self, hidden_size, patch_size, out_channels, cond_size=None):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_size or hidden_size, 2 * hidden_size))

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


def unpatchify(x: torch.Tensor, patch_size: int, channels: int) -> torch.Tensor:
    """[B, N, p*p*C] tokens of a square grid -> [B, C, H, W] (DiT's order)."""
    h = w = int(x.shape[1] ** 0.5)
    x = x.reshape(x.shape[0], h, w, patch_size, patch_size, channels)
    x = torch.einsum("nhwpqc->nchpwq", x)
    return x.reshape(x.shape[0], channels, h * patch_size, w * patch_size)


def init_dit_weights(model: nn.Module, adaln: Sequence[nn.Module], zeroed: Sequence[nn.Linear]) -> None:
    """DiT's initialisation (shared by MaskDiT): xavier Linears, fixed sin-cos `*pos_embed`s,
    N(0, 0.02) label/time embeddings, adaLN-Zero (`adaln` modules' last Linear and the `zeroed`
    output Linears start at 0)."""

    def _basic_init(m):
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    model.apply(_basic_init)
    grid = int(model.num_tokens**0.5)
    for name, param in model.named_parameters():
        if name.endswith("pos_embed") and not param.is_meta:  # meta: a shape check before loading
            param.data.copy_(torch.from_numpy(get_2d_sincos_pos_embed(param.shape[-1], grid)).float()[None])
    w = model.x_embedder.proj.weight.data
    nn.init.xavier_uniform_(w.view(w.shape[0], -1))  # like a Linear, not a Conv2d
    nn.init.zeros_(model.x_embedder.proj.bias)
    nn.init.normal_(model.y_embedder.embedding_table.weight, std=0.02)
    nn.init.normal_(model.t_embedder.mlp[0].weight, std=0.02)
    nn.init.normal_(model.t_embedder.mlp[2].weight, std=0.02)
    for layer in [m.adaLN_modulation[-1] for m in adaln] + list(zeroed):
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)


class DiT(nn.Module):
    """DiT/SiT with optional TREAD routes; gamma and the kept tokens are chosen per call."""

    family = "dit"  # key in the backbone registry and in sgbench checkpoint metadata

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
        init_dit_weights(self, adaln=[*self.blocks, self.final_layer], zeroed=[self.final_layer.linear])

    def unpatchify(self, x):
        return unpatchify(x, self.patch_size, self.out_channels)

    def route_keep_indices(
        self, batch: int, gamma: float, keep_idx=None, generator: GeneratorLike = None, device=None
    ) -> list[Optional[torch.Tensor]]:
        """Kept indices for each route (None where nothing is dropped, i.e. the dense path)."""
        if gamma > 0 and not self.routes and num_kept(self.num_tokens, gamma) < self.num_tokens:
            raise UserError("gamma > 0 requested but this model has no routes (set routes, e.g. 2-24)")
        return resolve_keep_indices(batch, self.num_tokens, gamma, len(self.routes), keep_idx, generator, device)

    def forward(self, x, t, y, gamma: float = 0.0, keep_idx=None, generator: GeneratorLike = None):
        """x [B,C,H,W], t [B] (the network's own time input), y [B] class ids (num_classes = null)."""
        h = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y)
        kept = self.route_keep_indices(h.shape[0], gamma, keep_idx, generator, device=h.device)
        start_of = {r.start: i for i, r in enumerate(self.routes)}  # block index -> route index
        end_of = {r.end: i for i, r in enumerate(self.routes)}
        saved = None
        for i, block in enumerate(self.blocks):
            if i in start_of and kept[start_of[i]] is not None:
                saved = h  # full sequence; dropped tokens resume from here after the route
                h = gather_tokens(h, kept[start_of[i]])
            h = block(h, c)
            if i in end_of and kept[end_of[i]] is not None:
                h = scatter_tokens(saved, h, kept[end_of[i]])
                saved = None
        h = self.final_layer(h, c)
        return self.unpatchify(h)


def build_dit(config: dict) -> DiT:
    return DiT(DiTConfig(**config))


# ---- the family's registry entry: weights -> config, kept tokens (TREAD's), FLOP model ----------

def infer_patch_grid(sd: Mapping[str, torch.Tensor], patch: int) -> dict:
    """Config fields the patch embedder, positions and output layer determine (DiT and MaskDiT)."""
    out = {}
    w = sd.get("x_embedder.proj.weight")
    if w is not None and w.dim() == 4:
        out["in_channels"] = int(w.shape[1])
    pos = sd.get("pos_embed")
    if pos is not None and pos.dim() == 3:
        side = int(round(pos.shape[1] ** 0.5))
        if side * side == pos.shape[1]:
            out["input_size"] = side * patch
    lin = sd.get("final_layer.linear.weight")
    if lin is not None and "in_channels" in out:
        out["learn_sigma"] = int(lin.shape[0]) == 2 * patch * patch * out["in_channels"]
    return out


def dit_config_from_weights(base: dict, sd: Mapping[str, torch.Tensor]) -> dict:
    """Fields of a DiT/SiT/tread state dict's config that its tensors determine."""
    inferred = infer_patch_grid(sd, int(base["patch_size"]))
    emb = sd.get("y_embedder.embedding_table.weight")
    if emb is not None and emb.dim() == 2:
        inferred["num_classes"] = int(emb.shape[0]) - 1  # DiT/SiT/tread always carry the null row
    return inferred


def class_inputs(config, batch: int = 1) -> tuple:
    """Example (x, t, y) of a class-conditional config, for tracing."""
    x = torch.zeros(batch, config.in_channels, config.input_size, config.input_size)
    return x, torch.full((batch,), 0.5), torch.zeros(batch, dtype=torch.long)


def _arch_key(config: DiTConfig) -> tuple:
    d = asdict(config)
    d.pop("routes")
    d.pop("depth")
    return tuple(sorted(d.items()))


@lru_cache(maxsize=32)
def _components(arch_key: tuple) -> tuple[int, int, int]:
    """(non-block FLOPs, block per-token a, block per-image b) of one architecture: the non-block
    part is a dense depth-1 model minus its block (DiTConfig needs depth >= 1)."""
    cfg = DiTConfig(**dict(arch_key), depth=1, routes=())
    model = traced_component_model(lambda: DiT(cfg))
    at_n, a, b = block_affine(model.blocks[0], cfg.num_tokens, cfg.hidden_size, cfg.hidden_size)
    return fvcore_flops(ForwardAt(model, 0.0), class_inputs(cfg)) - at_n, a, b


def _attention(config: DiTConfig, gamma: float) -> int:
    return sum(attention_score_flops(n, n, config.hidden_size)
               for n in routed_token_counts(config, gamma, num_kept))


def dit_forward_flops(config: DiTConfig, gamma: float) -> FlopCount:
    """Routed blocks see TREAD's N - int(N * gamma) kept tokens, all others the N tokens."""
    rest, a, b = _components(_arch_key(config))
    blocks = sum(a * n + b for n in routed_token_counts(config, gamma, num_kept))
    return FlopCount(rest + blocks, _attention(config, gamma))


def dit_trace_flops(model: DiT, gamma: float) -> FlopCount:
    return FlopCount(fvcore_flops(ForwardAt(model, gamma), class_inputs(model.config)), _attention(model.config, gamma))


register_backbone(BackboneFamily(
    name="dit", config_class=DiTConfig, build=build_dit, presets=DIT_PRESETS, make_config=dit_config,
    kept_tokens=num_kept, forward_flops=dit_forward_flops, trace_flops=dit_trace_flops,
    config_from_weights=dit_config_from_weights,
))
