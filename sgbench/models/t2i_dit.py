"""Llama-style text-to-image DiT with TREAD routes (paper appendix A.1, Table A1).

Architecture, as the paper describes it:
- pre-normalisation with RMSNorm, no bias in any linear layer;
- axial 2D rotary position embeddings following Crowson et al. (HDiT): positions on a
  [-1, 1] grid, per-head log-spaced frequencies in [pi, 10 pi], rotating the first half of
  each head's dimensions (one quarter for y, one quarter for x);
- SwiGLU feed-forward with hidden width 8/3 of the model width;
- self-attention over image tokens, then cross-attention to text tokens (with a key padding
  mask), then the feed-forward;
- a trainable 2-layer transformer adapter between the frozen text encoder and the
  cross-attention (Ma et al., as the paper uses it), owned by this module so that it is
  trained and saved with the DiT.

Timestep conditioning is not described in the paper. We use adaLN-single (PixArt-alpha): one
shared bias-free projection of the timestep embedding to 6 modulation vectors plus a learned
per-block table. Per-block adaLN (as in DiT) would add 6 d^2 weights per block (0.86 B at the
2.5 B setting), which cannot fit the paper's stated 2.5 B parameters; adaLN-single does.

TREAD: before block `route.start` the kept tokens *and their 2D positions* are gathered;
blocks start..end (inclusive) see only them (rotary phases follow the true positions); after
block `route.end` they are scattered back into the saved full sequence.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from sgbench.errors import UserError
from sgbench.models.denoiser import Denoiser
from sgbench.models.dit import Route, parse_routes, timestep_embedding
from sgbench.models.flop_count import (ForwardAt, affine_in_tokens, attention_score_flops, fvcore_flops,
                                       routed_token_counts, traced_component_model)
from sgbench.models.registry import BackboneFamily, FlopCount, register_backbone
from sgbench.models.routing import GeneratorLike, gather_tokens, num_kept, resolve_keep_indices, scatter_tokens


@dataclass
class T2IDiTConfig:
    input_size: int = 64  # latent side (512 px / 8)
    patch_size: int = 2
    in_channels: int = 4
    hidden_size: int = 2048
    depth: int = 34
    num_heads: int = 16
    text_dim: int = 1536  # width of the frozen text encoder's hidden states (InternVL3-2B's LM)
    adapter_layers: int = 2  # trainable transformer layers between text encoder and DiT
    ffn_ratio: float = 8.0 / 3.0
    ffn_multiple_of: int = 1  # round the SwiGLU width up to a multiple of this (Llama uses 256)
    norm_eps: float = 1e-6
    routes: Sequence[Route] = field(default_factory=tuple)
    train_gamma: float = 0.0  # routing rate used in training (inference chooses its own)

    def __post_init__(self):
        if self.input_size % self.patch_size:
            raise UserError(f"input_size {self.input_size} is not divisible by patch_size {self.patch_size}")
        if self.hidden_size % self.num_heads:
            raise UserError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if (self.hidden_size // self.num_heads) % 8:
            raise UserError(f"head dim {self.hidden_size // self.num_heads} must be a multiple of 8 (axial rotary)")
        if not 0.0 <= self.train_gamma < 1.0:
            raise UserError(f"train_gamma must lie in [0, 1), got {self.train_gamma}")
        self.routes = parse_routes(self.routes, self.depth)

    @property
    def grid_size(self) -> int:
        return self.input_size // self.patch_size

    @property
    def num_tokens(self) -> int:
        return self.grid_size**2

    @property
    def ffn_hidden(self) -> int:
        h = int(self.hidden_size * self.ffn_ratio)
        m = max(1, self.ffn_multiple_of)
        return m * ((h + m - 1) // m)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["routes"] = [f"{r.start}-{r.end}" for r in self.routes]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "T2IDiTConfig":
        return dataclass_from_dict(cls, d, "T2I DiT config")


def dataclass_from_dict(cls, d: dict, what: str):
    """cls(**d) with a one-line error naming unknown keys (checkpoint metadata, YAML sections)."""
    if not isinstance(d, dict):
        raise UserError(f"{what} must be a mapping, got {type(d).__name__}")
    unknown = sorted(set(d) - {f.name for f in fields(cls)})
    if unknown:
        raise UserError(f"unknown {what} keys: {', '.join(unknown)}")
    return cls(**d)


# Named sizes. 'TR-DiT-2.5B' is the paper's Table A1 model (512 px, SD-VAE latents 64x64x4).
T2I_PRESETS = {
    "T2I-tiny": dict(input_size=8, patch_size=2, in_channels=4, hidden_size=64, depth=4, num_heads=4,
                     text_dim=32, routes=("1-2",), train_gamma=0.5),
    # the shipped T2I quickstart model (suites/train_t2i_shapes.yaml)
    "T2I-shapes": dict(input_size=32, patch_size=4, in_channels=3, hidden_size=128, depth=6, num_heads=4,
                       text_dim=64, routes=("1-4",), train_gamma=0.5),
    "T2I-S": dict(input_size=32, patch_size=2, hidden_size=384, depth=12, num_heads=6, text_dim=384,
                  routes=("1-9",), train_gamma=0.5),
    "T2I-B": dict(input_size=32, patch_size=2, hidden_size=768, depth=12, num_heads=12, text_dim=768,
                  routes=("1-9",), train_gamma=0.5),
    "TR-DiT-2.5B": dict(input_size=64, patch_size=2, in_channels=4, hidden_size=2048, depth=34, num_heads=16,
                        text_dim=1536, routes=("2-30",), train_gamma=0.5, ffn_multiple_of=256),
}


def t2i_config(arch: str, **overrides) -> T2IDiTConfig:
    if arch not in T2I_PRESETS:
        raise UserError(f"unknown T2I architecture {arch!r}; known: {', '.join(sorted(T2I_PRESETS))}")
    return T2IDiTConfig(**{**T2I_PRESETS[arch], **overrides})


# ----------------------------------------------------------------------------- rotary


def axial_positions(grid: int, device=None) -> torch.Tensor:
    """[grid*grid, 2] (y, x) patch centres on [-1, 1], row-major like the patch sequence."""
    edges = torch.linspace(-1.0, 1.0, grid + 1, device=device)
    centres = (edges[:-1] + edges[1:]) / 2
    yy, xx = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([yy.reshape(-1), xx.reshape(-1)], dim=-1)


def axial_rope_freqs(head_dim: int, num_heads: int) -> torch.Tensor:
    """[num_heads, head_dim // 8] log-spaced in [pi, 10 pi), interleaved over heads (HDiT)."""
    n = head_dim // 8
    f = torch.exp(torch.linspace(math.log(math.pi), math.log(10 * math.pi), num_heads * n + 1)[:-1])
    return f.view(n, num_heads).T.contiguous()


def apply_axial_rope(x: torch.Tensor, pos: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Rotate x [B, N, H, Dh] by the angles of positions pos [B, N, 2] (first Dh/2 dims rotate)."""
    theta = torch.cat([pos[..., None, 0:1] * freqs, pos[..., None, 1:2] * freqs], dim=-1)  # [B,N,H,Dh/4]
    d = theta.shape[-1]
    cos, sin = theta.cos().to(x.dtype), theta.sin().to(x.dtype)
    x1, x2, rest = x[..., :d], x[..., d : 2 * d], x[..., 2 * d :]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest], dim=-1)


# ----------------------------------------------------------------------------- layers


def rms_norm(dim: int, eps: float, affine: bool = True) -> nn.RMSNorm:
    return nn.RMSNorm(dim, eps=eps, elementwise_affine=affine)


def key_mask_for_sdpa(mask: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """Bool key-padding mask [B, L] (True = token) -> [B, 1, 1, L] for scaled_dot_product_attention.

    A row without any valid key would give NaNs; such rows attend to key 0 instead.
    """
    if mask is None:
        return None
    mask = mask.bool()
    empty = ~mask.any(dim=1)
    if bool(empty.any()):
        mask = mask.clone()
        mask[empty, 0] = True
    return mask[:, None, None, :]


class SelfAttention(nn.Module):
    """Bias-free multi-head self-attention, optional axial rotary and key padding mask."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x, pos=None, freqs=None, key_mask=None):
        B, N, C = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.num_heads, C // self.num_heads).unbind(2)
        if pos is not None:
            q, k = apply_axial_rope(q, pos, freqs), apply_axial_rope(k, pos, freqs)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=key_mask_for_sdpa(key_mask)
        )
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class CrossAttention(nn.Module):
    """Image tokens (queries) attend to text tokens (keys/values) under a key padding mask."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(dim, 2 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x, text, text_mask):
        B, N, C = x.shape
        L, H = text.shape[1], self.num_heads
        q = self.q(x).view(B, N, H, C // H).transpose(1, 2)
        k, v = self.kv(text).view(B, L, 2, H, C // H).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask_for_sdpa(text_mask))
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class SwiGLU(nn.Module):
    """Llama feed-forward: w2(silu(w1 x) * w3 x), no biases."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class LlamaLayer(nn.Module):
    """Plain pre-norm transformer layer over a token sequence with a padding mask (text adapter)."""

    def __init__(self, dim: int, num_heads: int, ffn_hidden: int, eps: float):
        super().__init__()
        self.norm1 = rms_norm(dim, eps)
        self.attn = SelfAttention(dim, num_heads)
        self.norm2 = rms_norm(dim, eps)
        self.ffn = SwiGLU(dim, ffn_hidden)

    def forward(self, x, mask=None):
        x = x + self.attn(self.norm1(x), key_mask=mask)
        return x + self.ffn(self.norm2(x))


class TextAdapter(nn.Module):
    """The paper's trainable 2-layer transformer between the frozen text encoder and the DiT.

    Projects encoder states [B, L, text_dim] to the DiT width and refines them; padded positions
    are zeroed in the output so they carry nothing even where a mask is ignored.
    """

    def __init__(self, text_dim: int, dim: int, num_layers: int, num_heads: int, ffn_hidden: int, eps: float):
        super().__init__()
        self.proj = nn.Linear(text_dim, dim, bias=False)
        self.layers = nn.ModuleList([LlamaLayer(dim, num_heads, ffn_hidden, eps) for _ in range(num_layers)])
        self.norm = rms_norm(dim, eps)

    def forward(self, text, mask):
        h = self.proj(text)
        for layer in self.layers:
            h = layer(h, mask)
        return self.norm(h) * mask[..., None].to(h.dtype)


class T2IBlock(nn.Module):
    """Self-attention (rotary) -> cross-attention to text -> SwiGLU; adaLN-single modulation."""

    def __init__(self, dim: int, num_heads: int, ffn_hidden: int, eps: float):
        super().__init__()
        self.norm1 = rms_norm(dim, eps, affine=False)
        self.attn = SelfAttention(dim, num_heads)
        self.norm2 = rms_norm(dim, eps)
        self.cross_attn = CrossAttention(dim, num_heads)
        self.norm3 = rms_norm(dim, eps, affine=False)
        self.ffn = SwiGLU(dim, ffn_hidden)
        self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / dim**0.5)

    def forward(self, x, t6, pos, freqs, text, text_mask):
        mod = self.scale_shift_table[None] + t6  # [B, 6, D]
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mod.unbind(1)
        h = self.norm1(x) * (1 + scale_msa[:, None]) + shift_msa[:, None]
        x = x + gate_msa[:, None] * self.attn(h, pos, freqs)
        x = x + self.cross_attn(self.norm2(x), text, text_mask)
        h = self.norm3(x) * (1 + scale_mlp[:, None]) + shift_mlp[:, None]
        return x + gate_mlp[:, None] * self.ffn(h)


class T2IDiT(nn.Module):
    """forward(x [B,C,H,W], t [B], text_emb [B,L,text_dim], text_mask [B,L]) -> velocity [B,C,H,W]."""

    family = "t2i"  # the 'family' of sgbench checkpoint metadata

    def __init__(self, config: T2IDiTConfig):
        super().__init__()
        self.config = c = config
        D = c.hidden_size
        self.patch_size = c.patch_size
        self.in_channels = self.out_channels = c.in_channels
        self.routes = tuple(sorted(c.routes, key=lambda r: r.start))
        self.x_embedder = nn.Linear(c.in_channels * c.patch_size**2, D, bias=False)
        self.t_embedder = nn.Sequential(nn.Linear(256, D, bias=False), nn.SiLU(), nn.Linear(D, D, bias=False))
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(D, 6 * D, bias=False))
        self.text_adapter = TextAdapter(c.text_dim, D, c.adapter_layers, c.num_heads, c.ffn_hidden, c.norm_eps)
        self.blocks = nn.ModuleList([T2IBlock(D, c.num_heads, c.ffn_hidden, c.norm_eps) for _ in range(c.depth)])
        self.final_norm = rms_norm(D, c.norm_eps, affine=False)
        self.final_table = nn.Parameter(torch.randn(2, D) / D**0.5)
        self.final_linear = nn.Linear(D, c.patch_size**2 * c.in_channels, bias=False)
        self.register_buffer("rope_freqs", axial_rope_freqs(D // c.num_heads, c.num_heads), persistent=False)
        self.register_buffer("positions", axial_positions(c.grid_size), persistent=False)
        self.initialize_weights()

    @property
    def num_tokens(self) -> int:
        return self.config.num_tokens

    def initialize_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
        nn.init.normal_(self.t_embedder[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder[2].weight, std=0.02)
        nn.init.normal_(self.t_block[1].weight, std=0.02)
        for block in self.blocks:  # blocks start as identities on the image stream
            nn.init.zeros_(block.cross_attn.proj.weight)
        nn.init.zeros_(self.final_linear.weight)

    def patchify(self, x):
        B, C, H, W = x.shape
        p = self.patch_size
        x = x.reshape(B, C, H // p, p, W // p, p)
        return torch.einsum("bchpwq->bhwpqc", x).reshape(B, (H // p) * (W // p), p * p * C)

    def unpatchify(self, x):
        p, c, g = self.patch_size, self.out_channels, self.config.grid_size
        x = x.reshape(x.shape[0], g, g, p, p, c)
        return torch.einsum("bhwpqc->bchpwq", x).reshape(x.shape[0], c, g * p, g * p)

    def route_keep_indices(self, batch, gamma, keep_idx=None, generator: GeneratorLike = None, device=None):
        """Kept indices per route (None where nothing is dropped), as in sgbench.models.dit."""
        if gamma > 0 and not self.routes:
            raise UserError("gamma > 0 requested but this model has no routes (set routes, e.g. 2-30)")
        return resolve_keep_indices(batch, self.num_tokens, gamma, len(self.routes), keep_idx, generator, device)

    def forward(self, x, t, text_emb, text_mask, gamma: float = 0.0, keep_idx=None, generator: GeneratorLike = None):
        B = x.shape[0]
        if x.shape[1:] != (self.in_channels, self.config.input_size, self.config.input_size):
            raise UserError(
                f"T2I DiT expects latents [B, {self.in_channels}, {self.config.input_size}, "
                f"{self.config.input_size}], got {list(x.shape)}"
            )
        if text_emb.shape[-1] != self.config.text_dim:
            raise UserError(f"text embeddings have width {text_emb.shape[-1]}, the model expects {self.config.text_dim}")
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(B)
        text_mask = text_mask.to(x.device).bool()
        text = self.text_adapter(text_emb.to(x.dtype), text_mask)
        temb = self.t_embedder(timestep_embedding(t, 256).to(x.dtype))
        t6 = self.t_block(temb).view(B, 6, -1)
        h = self.x_embedder(self.patchify(x))
        pos = self.positions.to(h.dtype).expand(B, -1, -1)
        kept = self.route_keep_indices(B, gamma, keep_idx, generator, device=h.device)
        starts = {r.start: i for i, r in enumerate(self.routes)}
        ends = {r.end: i for i, r in enumerate(self.routes)}
        saved = saved_pos = None
        for i, block in enumerate(self.blocks):
            if i in starts and kept[starts[i]] is not None:
                saved, saved_pos = h, pos
                h, pos = gather_tokens(h, kept[starts[i]]), gather_tokens(pos, kept[starts[i]])
            h = block(h, t6, pos, self.rope_freqs, text, text_mask)
            if i in ends and kept[ends[i]] is not None:
                h = scatter_tokens(saved, h, kept[ends[i]])
                pos, saved, saved_pos = saved_pos, None, None
        shift, scale = (self.final_table[None] + temb[:, None]).unbind(1)
        h = self.final_norm(h) * (1 + scale[:, None]) + shift[:, None]
        return self.unpatchify(self.final_linear(h))


@dataclass
class TextCondition:
    """A batch of encoded prompts: the condition type of text-to-image Denoisers.

    emb [B, L, text_dim] float, mask [B, L] bool (True = real token). `prompts` is kept for
    records (GenEval/HPSv3 need the text again); it is not used by the network.
    """

    emb: torch.Tensor
    mask: torch.Tensor
    prompts: Optional[tuple] = None

    def __post_init__(self):
        if self.emb.dim() != 3 or self.mask.shape != self.emb.shape[:2]:
            raise UserError(f"text condition needs emb [B, L, D] and mask [B, L], got {list(self.emb.shape)} "
                            f"and {list(self.mask.shape)}")
        self.mask = self.mask.bool()
        if self.prompts is not None:
            self.prompts = tuple(self.prompts)

    def __len__(self) -> int:
        return self.emb.shape[0]

    @property
    def shape(self):  # samplers ask cond.shape[0] for the batch size
        return self.mask.shape

    def to(self, device=None, dtype=None) -> "TextCondition":
        return TextCondition(self.emb.to(device=device, dtype=dtype), self.mask.to(device), self.prompts)

    def __getitem__(self, idx) -> "TextCondition":
        if isinstance(idx, int):
            idx = slice(idx, idx + 1)
        prompts = None
        if self.prompts is not None:
            sel = torch.arange(len(self))[idx].reshape(-1).tolist()
            prompts = tuple(self.prompts[i] for i in sel)
        return TextCondition(self.emb[idx], self.mask[idx], prompts)

    def pad_to(self, length: int) -> "TextCondition":
        """Right-pad (masked zeros) to `length` tokens; never truncates."""
        extra = length - self.emb.shape[1]
        if extra <= 0:
            return self
        emb = F.pad(self.emb, (0, 0, 0, extra))
        return TextCondition(emb, F.pad(self.mask, (0, extra), value=False), self.prompts)

    def expand(self, batch: int) -> "TextCondition":
        """A batch-1 condition repeated `batch` times."""
        if len(self) != 1:
            raise ValueError("expand needs a batch-1 condition")
        prompts = None if self.prompts is None else self.prompts * batch
        return TextCondition(self.emb.expand(batch, -1, -1), self.mask.expand(batch, -1), prompts)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        # Samplers batch branches with torch.cat([cond, null]); support exactly that.
        if func is torch.cat and not (kwargs or {}).get("dim", 0) and len(args) == 1:
            return cls.cat(args[0])
        return NotImplemented

    @staticmethod
    def cat(conds: Sequence["TextCondition"]) -> "TextCondition":
        length = max(c.emb.shape[1] for c in conds)
        padded = [c.pad_to(length) for c in conds]
        prompts = None
        if all(c.prompts is not None for c in conds):
            prompts = tuple(p for c in conds for p in c.prompts)
        return TextCondition(torch.cat([c.emb for c in padded]), torch.cat([c.mask for c in padded]), prompts)


def _draw_index(n: int, generator) -> int:
    gdev = generator.device if generator is not None else "cpu"
    return int(torch.randint(n, (1,), generator=generator, device=gdev))


class T2IDenoiser(Denoiser):
    """Denoiser over a T2IDiT; conditions are TextConditions. The backbone predicts the velocity.

    null_condition = the empty prompt's encoding (what CFG's unconditional branch sees, and what
    training's condition dropout substitutes). random_condition = another prompt: drawn from
    `random_pool` (a TextCondition of prompts) when given, so each sample's draw depends only on
    its own generator; otherwise another sample's prompt from the same batch.
    """

    parametrization = "velocity"

    def __init__(self, backbone: T2IDiT, null_text: TextCondition, random_pool: Optional[TextCondition] = None):
        c = backbone.config
        super().__init__(backbone, num_classes=0, latent_shape=(c.in_channels, c.input_size, c.input_size))
        if len(null_text) != 1:
            raise ValueError("null_text must be the encoding of one (empty) prompt")
        self.null_text = null_text
        self.random_pool = random_pool
        self.text_encoder = None  # the frozen encoder prompts go through (set by the loader)

    def use_prompt_pool(self, prompts: Sequence[str]) -> None:
        """Draw ICG's random conditions from these prompts (encoded once by the text encoder)."""
        if self.text_encoder is None:
            raise UserError("a prompt pool needs the denoiser's text encoder")
        self.random_pool = self.text_encoder.encode(list(prompts)) if prompts else None

    def null_condition(self, cond: TextCondition) -> TextCondition:
        null = self.null_text.to(cond.emb.device, cond.emb.dtype).expand(len(cond))
        return null.pad_to(cond.emb.shape[1])

    def random_condition(self, cond: TextCondition, generators: GeneratorLike = None) -> TextCondition:
        B = len(cond)
        gens = list(generators) if isinstance(generators, (list, tuple)) else [generators] * B
        if self.random_pool is not None:
            pool = self.random_pool.to(cond.emb.device, cond.emb.dtype)
            picks = [_draw_index(len(pool), g) for g in gens]
            return TextCondition.cat([pool[i] for i in picks]).pad_to(cond.emb.shape[1])
        if B < 2:
            raise UserError("random_condition needs a prompt pool or a batch of at least 2 prompts")
        picks = []
        for i, g in enumerate(gens):  # another sample's prompt: shift by 1..B-1
            picks.append((i + 1 + _draw_index(B - 1, g)) % B)
        return TextCondition.cat([cond[j] for j in picks])

    def forward(self, x, t, cond: TextCondition, gamma: float = 0.0, keep_idx=None, generator: GeneratorLike = None):
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(x.shape[0])
        return self.backbone(x, t, cond.emb, cond.mask, gamma=gamma, keep_idx=keep_idx, generator=generator)


def count_parameters(config: T2IDiTConfig) -> int:
    """Parameter count of a T2IDiT built on the meta device (no memory allocated)."""
    with torch.device("meta"):
        model = T2IDiT(config)
    return sum(p.numel() for p in model.parameters())


# ---- the family's registry entry: its Denoiser (with the text encoder), kept tokens, FLOP model ---

def t2i_make_denoiser(backbone: T2IDiT, parametrization: str, spec=None, meta=None, device="cpu", **_) -> T2IDenoiser:
    """The T2IDenoiser of a loaded backbone with the text encoder its checkpoint names
    (metadata 'text_encoder', overridden field by field by `spec.text_encoder`, e.g. a local path)."""
    from sgbench.models.text_encoders import TextEncoderSpec, build_text_encoder, t2i_denoiser

    if parametrization != "velocity":
        raise UserError(f"T2I DiTs predict the velocity; got parametrization {parametrization!r}")
    fields_ = {**((meta or {}).get("text_encoder") or {}), **(getattr(spec, "text_encoder", None) or {})}
    encoder = build_text_encoder(TextEncoderSpec.from_dict(fields_), device=device)
    return t2i_denoiser(backbone.to(device), encoder)


def check_text_len(text_len) -> int:
    """text_len as an int >= 1 (the text tokens a T2I count needs)."""
    if text_len is None:
        raise UserError("a T2I architecture needs text_len: the number of text tokens its cross-attention and "
                        "text adapter see (CLI: --text-len N, e.g. 128)")
    try:
        value = operator.index(text_len)
    except TypeError:
        raise UserError(f"text_len must be an integer >= 1, got {text_len!r}") from None
    if isinstance(text_len, bool) or value < 1:
        raise UserError(f"text_len must be an integer >= 1, got {text_len!r}")
    return value


def text_inputs(config: T2IDiTConfig, text_len: int, batch: int = 1) -> tuple:
    """Example (latents, t, text states, text mask) with every text token valid, for tracing."""
    x = torch.zeros(batch, config.in_channels, config.input_size, config.input_size)
    text = torch.zeros(batch, text_len, config.text_dim)
    return x, torch.full((batch,), 0.5), text, torch.ones(batch, text_len, dtype=torch.bool)


def _arch_key(config: T2IDiTConfig) -> tuple:
    d = config.to_dict()
    for k in ("depth", "routes", "train_gamma"):  # not part of one block / the non-block layers
        d.pop(k)
    return tuple(sorted(d.items()))


@lru_cache(maxsize=32)
def _components(arch_key: tuple, text_len: int) -> tuple[int, int, int]:
    """(non-block FLOPs, block per-token a, block per-image b) at L text tokens.

    The non-block part (embedders, t_block once per image, the text adapter over L tokens, final
    layer) is a dense depth-1 model minus its block; the block is traced with L text tokens at 1
    and N image tokens (and rechecked at N/2), its b being the per-image K/V projection of the text."""
    cfg = T2IDiTConfig(**dict(arch_key), depth=1)
    model = traced_component_model(lambda: T2IDiT(cfg))
    n, width = cfg.num_tokens, cfg.hidden_size
    t6, text = torch.zeros(1, 6, width), torch.zeros(1, text_len, width)
    mask = torch.ones(1, text_len, dtype=torch.bool)

    def inputs(k: int) -> tuple:
        return torch.zeros(1, k, width), t6, model.positions[None, :k], model.rope_freqs, text, mask

    at_n, a, b = affine_in_tokens(model.blocks[0], n, inputs, check_at=(n // 2,))
    rest = fvcore_flops(ForwardAt(model, 0.0), text_inputs(cfg, text_len)) - at_n
    return rest, a, b


def _attention(config: T2IDiTConfig, gamma: float, text_len: int) -> int:
    """Per block self-attention 2 n^2 D and cross-attention 2 n L D (n image tokens of the block,
    L text tokens), plus 2 L^2 D per text-adapter layer."""
    D, L = config.hidden_size, text_len
    blocks = sum(attention_score_flops(n, n, D) + attention_score_flops(n, L, D)
                 for n in routed_token_counts(config, gamma, num_kept))
    return blocks + config.adapter_layers * attention_score_flops(L, L, D)


def t2i_forward_flops(config: T2IDiTConfig, gamma: float, text_len=None) -> FlopCount:
    """Routed blocks see TREAD's kept tokens. The frozen text encoder is not counted (it runs once
    per prompt, not per step); fvcore does not count RMSNorm, so these blocks' norms are free."""
    text_len = check_text_len(text_len)
    rest, a, b = _components(_arch_key(config), text_len)
    total = rest + sum(a * n + b for n in routed_token_counts(config, gamma, num_kept))
    return FlopCount(total, _attention(config, gamma, text_len))


def t2i_trace_flops(model: T2IDiT, gamma: float, text_len=None) -> FlopCount:
    text_len = check_text_len(text_len)
    traced = fvcore_flops(ForwardAt(model, gamma), text_inputs(model.config, text_len))
    return FlopCount(traced, _attention(model.config, gamma, text_len))


register_backbone(BackboneFamily(
    name="t2i", config_class=T2IDiTConfig, build=lambda config: T2IDiT(T2IDiTConfig.from_dict(config)),
    presets=T2I_PRESETS, make_config=t2i_config, kept_tokens=num_kept, forward_flops=t2i_forward_flops,
    trace_flops=t2i_trace_flops, make_denoiser=t2i_make_denoiser, flop_inputs=("text_len",),
))
