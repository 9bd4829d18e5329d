"""MaskDiT backbone (Anima-Lab/MaskDiT) with token masking at inference, gamma per call.

State-dict layout of MaskDiT's `models/maskdit.py` `DiT(use_decoder=True)` (without the
`model.` prefix of its EDMPrecond wrapper, which the loader strips):

    x_embedder.proj, t_embedder.mlp.{0,2}, y_embedder.embedding_table (bias-free Linear,
    weight [hidden, num_classes]), pos_embed [1, N, hidden], blocks.N.*  (encoder, DiT blocks),
    decoder_layer.{linear, adaLN_modulation.1}  (hidden -> decoder width),
    decoder_pos_embed [1, N, dec], decoder_blocks.N.* (width dec, conditioned on the hidden-size c),
    final_layer.{linear, adaLN_modulation.1}  (decoder width), mask_token [1, 1, dec]
    (present when MaskDiT trained with mae_loss_coef > 0, as all its released models).

Labels are one-hot floats; the null condition is the all-zero vector. sgbench passes class ids
(id `num_classes` = null) and converts them here.

MaskDiT's own eval forward computes a mask but never drops tokens. sgbench's forward does:
the encoder sees only the kept tokens, `decoder_layer` maps them to the decoder width, dropped
positions are filled with `mask_token` (zeros when the checkpoint has none, as MaskDiT does),
then `decoder_pos_embed` is added and the decoder runs over all N tokens. gamma = 0 is MaskDiT's
dense eval forward exactly. The encoder keeps MaskDiT's own count, int(N * (1 - gamma)) (its
`get_mask`), one token fewer than TREAD's N - int(N * gamma) when N * gamma is not whole.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from sgbench.errors import UserError
from sgbench.models.dit import (
    _SIZES,
    DiTBlock,
    FinalLayer,
    PatchEmbed,
    PatchGridConfig,
    TimestepEmbedder,
    class_inputs,
    infer_patch_grid,
    init_dit_weights,
    modulate,
    unpatchify,
)
from sgbench.models.flop_count import (ForwardAt, attention_score_flops, block_affine, fvcore_flops,
                                       traced_component_model)
from sgbench.models.registry import BackboneFamily, FlopCount, register_backbone
from sgbench.models.routing import GeneratorLike, gather_tokens, resolve_keep_indices, scatter_tokens


def masked_num_kept(n_tokens: int, gamma: float) -> int:
    """Tokens MaskDiT's encoder keeps at masking rate gamma: int(N * (1 - gamma)) (Anima-Lab `get_mask`)."""
    if not 0.0 <= float(gamma) < 1.0:
        raise UserError(f"masking rate gamma must lie in [0, 1), got {gamma}")
    k = int(n_tokens * (1.0 - float(gamma)))
    if k < 1:
        raise UserError(f"masking rate {gamma:g} keeps no token of {n_tokens} (MaskDiT keeps int(N * (1 - gamma)))")
    return k


@dataclass
class MaskDiTConfig(PatchGridConfig):
    input_size: int = 32
    patch_size: int = 2
    in_channels: int = 4
    hidden_size: int = 1152
    depth: int = 28
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_classes: int = 1000
    learn_sigma: bool = False  # MaskDiT's default
    decoder_hidden_size: int = 512  # MaskDiT hard-codes 512 / 8 / 16
    decoder_depth: int = 8
    decoder_num_heads: int = 16
    mask_token: bool = True  # MaskDiT creates it when mae_loss_coef > 0

    _positive = PatchGridConfig._positive + ("decoder_hidden_size", "decoder_depth", "decoder_num_heads")
    _heads = PatchGridConfig._heads + (("decoder_hidden_size", "decoder_num_heads"),)

    def __post_init__(self):
        self.check_grid()

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def describe(self) -> str:
        return (
            f"MaskDiT(depth {self.depth}, hidden {self.hidden_size}, heads {self.num_heads}, patch {self.patch_size}, "
            f"input {self.input_size}x{self.input_size}x{self.in_channels}, {self.num_classes} classes, "
            f"decoder {self.decoder_depth}x{self.decoder_hidden_size}, learn_sigma {self.learn_sigma}, "
            f"mask_token {self.mask_token})"
        )


# MaskDiT's `DiT_models` (it adds H = 32 x 1280 x 16 to DiT's sizes).
MASKDIT_PRESETS = {
    f"MaskDiT-{size}/{p}": dict(depth=d, hidden_size=h, num_heads=nh, patch_size=p)
    for size, (d, h, nh) in {**_SIZES, "H": (32, 1280, 16)}.items()
    for p in (2, 4, 8)
}
# The paper's masking model (Table 1, Fig. 8; App. A.2 Table A2, App. C): a SiT-XL/2 encoder with
# MaskDiT's decoder head (512 wide, 8 layers, 16 heads), selection ratio 0.5, trained by flow
# matching with the MAE-FM loss (velocity, t = 0 noise): suites/train_masking.yaml trains it and
# its file records `velocity`. The layout equals MaskDiT-XL/2's; Anima-Lab's MaskDiT-XL/2 is an
# EDM model. MaskSiT-tiny is its CPU-sized sibling (suites/train_masking_tiny.yaml, tests).
MASKDIT_PRESETS.update({
    "MaskSiT-XL/2": dict(depth=28, hidden_size=1152, num_heads=16, patch_size=2,
                         decoder_hidden_size=512, decoder_depth=8, decoder_num_heads=16),
    "MaskSiT-tiny": dict(depth=4, hidden_size=64, num_heads=4, patch_size=4,
                         decoder_hidden_size=32, decoder_depth=2, decoder_num_heads=4),
})


def maskdit_config(arch: str, **overrides) -> MaskDiTConfig:
    """MaskDiTConfig for 'MaskDiT-XL/2' (or MaskDiT's own 'DiT-XL/2' naming), 'MaskSiT-XL/2', with overrides."""
    name = arch if arch.startswith("MaskDiT-") else "Mask" + arch if arch.startswith("DiT-") else arch
    if name not in MASKDIT_PRESETS:
        raise UserError(f"unknown MaskDiT architecture {arch!r}; known: {', '.join(sorted(MASKDIT_PRESETS))}")
    return MaskDiTConfig(**{**MASKDIT_PRESETS[name], **overrides})


class OneHotLabelEmbedder(nn.Module):
    """MaskDiT's label embedder: a bias-free Linear over one-hot labels (all-zero = null)."""

    def __init__(self, num_classes, hidden_size):
        super().__init__()
        self.num_classes = num_classes
        self.embedding_table = nn.Linear(num_classes, hidden_size, bias=False)

    def one_hot(self, y: torch.Tensor) -> torch.Tensor:
        """Class ids [B] (id num_classes = null -> zeros) to one-hot floats; [B, K] floats pass through."""
        if y.dim() == 2:
            return y.to(self.embedding_table.weight.dtype)
        return F.one_hot(y.long(), self.num_classes + 1)[:, : self.num_classes].to(self.embedding_table.weight.dtype)

    def forward(self, y):
        return self.embedding_table(self.one_hot(y))


class DecoderLayer(nn.Module):
    """Encoder width -> decoder width, adaLN-modulated (MaskDiT's `decoder_layer`)."""

    def __init__(self, hidden_size, decoder_hidden_size):
        super().__init__()
        self.norm_decoder = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, decoder_hidden_size)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_decoder(x), shift, scale))


class MaskDiT(nn.Module):
    """MaskDiT encoder-decoder; gamma masks tokens before the encoder, per call."""

    family = "maskdit"

    def __init__(self, config: MaskDiTConfig):
        super().__init__()
        self.config = c = config
        self.num_classes = c.num_classes
        self.in_channels = c.in_channels
        self.out_channels = c.out_channels
        self.patch_size = c.patch_size
        self.x_embedder = PatchEmbed(c.patch_size, c.in_channels, c.hidden_size)
        self.t_embedder = TimestepEmbedder(c.hidden_size)
        self.y_embedder = OneHotLabelEmbedder(c.num_classes, c.hidden_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, c.num_tokens, c.hidden_size), requires_grad=False)
        self.blocks = nn.ModuleList([DiTBlock(c.hidden_size, c.num_heads, c.mlp_ratio) for _ in range(c.depth)])
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, c.num_tokens, c.decoder_hidden_size), requires_grad=False)
        self.decoder_layer = DecoderLayer(c.hidden_size, c.decoder_hidden_size)
        self.decoder_blocks = nn.ModuleList(
            [DiTBlock(c.decoder_hidden_size, c.decoder_num_heads, c.mlp_ratio, cond_size=c.hidden_size)
             for _ in range(c.decoder_depth)]
        )
        self.mask_token = nn.Parameter(torch.zeros(1, 1, c.decoder_hidden_size)) if c.mask_token else None
        self.final_layer = FinalLayer(c.decoder_hidden_size, c.patch_size, c.out_channels, cond_size=c.hidden_size)
        self.initialize_weights()

    @property
    def num_tokens(self) -> int:
        return self.config.num_tokens

    def initialize_weights(self):
        """MaskDiT's initialisation: DiT's, plus the decoder's (and mask_token ~ N(0, 0.02))."""
        init_dit_weights(
            self,
            adaln=[*self.blocks, *self.decoder_blocks, self.final_layer, self.decoder_layer],
            zeroed=[self.final_layer.linear, self.decoder_layer.linear],
        )
        if self.mask_token is not None:
            nn.init.normal_(self.mask_token, std=0.02)

    def unpatchify(self, x):
        return unpatchify(x, self.patch_size, self.out_channels)

    def keep_indices(self, batch: int, gamma: float, keep_idx=None, generator: GeneratorLike = None, device=None):
        """Sorted kept indices [B, K], or None when gamma drops nothing (dense path)."""
        return resolve_keep_indices(batch, self.num_tokens, gamma, 1, keep_idx, generator, device, masked_num_kept)[0]

    def forward(self, x, t, y, gamma: float = 0.0, keep_idx=None, generator: GeneratorLike = None):
        """x [B,C,H,W], t [B] (the network's own time input, EDM's c_noise), y [B] class ids."""
        h = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y)
        kept = self.keep_indices(h.shape[0], gamma, keep_idx, generator, device=h.device)
        if kept is not None:
            h = gather_tokens(h, kept)
        for block in self.blocks:
            h = block(h, c)
        h = self.decoder_layer(h, c)
        if kept is not None:
            fill = self.mask_token if self.mask_token is not None else h.new_zeros(1, 1, h.shape[-1])
            full = fill.to(h.dtype).expand(h.shape[0], self.num_tokens, h.shape[-1])
            h = scatter_tokens(full, h, kept)
        h = h + self.decoder_pos_embed
        for block in self.decoder_blocks:
            h = block(h, c)
        h = self.final_layer(h, c)
        return self.unpatchify(h)


def build_maskdit(config: dict) -> MaskDiT:
    return MaskDiT(MaskDiTConfig(**config))


# ---- the family's registry entry: weights -> config, kept tokens (MaskDiT's), FLOP model --------

def maskdit_config_from_weights(base: dict, sd: Mapping[str, torch.Tensor]) -> dict:
    """Fields of an Anima-Lab MaskDiT state dict's config that its tensors determine."""
    inferred = infer_patch_grid(sd, int(base["patch_size"]))
    emb = sd.get("y_embedder.embedding_table.weight")
    if emb is not None and emb.dim() == 2:
        inferred["num_classes"] = int(emb.shape[1])  # one-hot labels: [hidden, classes]
    dpos = sd.get("decoder_pos_embed")
    if dpos is not None and dpos.dim() == 3:
        inferred["decoder_hidden_size"] = int(dpos.shape[2])
    depth = {int(k.split(".")[1]) for k in sd if k.startswith("decoder_blocks.")}
    if depth:
        inferred["decoder_depth"] = max(depth) + 1
    inferred["mask_token"] = "mask_token" in sd
    return inferred


def is_maskdit_state_dict(sd: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith("decoder_blocks.") for k in sd)


def _arch_key(config: MaskDiTConfig) -> tuple:
    d = config.to_dict()
    d.pop("depth")
    d.pop("decoder_depth")
    return tuple(sorted(d.items()))


@lru_cache(maxsize=32)
def _components(arch_key: tuple) -> tuple[int, tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(non-block FLOPs, encoder block (a, b), decoder_layer (a, b), decoder block (a, b)): the
    non-block part (embedders, final layer) is a dense depth-1, decoder-depth-1 model minus its
    encoder block, decoder_layer and decoder block."""
    cfg = MaskDiTConfig(**dict(arch_key), depth=1, decoder_depth=1)
    model = traced_component_model(lambda: MaskDiT(cfg))
    n, h, dh = cfg.num_tokens, cfg.hidden_size, cfg.decoder_hidden_size
    enc_n, *enc = block_affine(model.blocks[0], n, h, h)
    lay_n, *lay = block_affine(model.decoder_layer, n, h, h)
    dec_n, *dec = block_affine(model.decoder_blocks[0], n, dh, h)
    rest = fvcore_flops(ForwardAt(model, 0.0), class_inputs(cfg)) - enc_n - lay_n - dec_n
    return rest, tuple(enc), tuple(lay), tuple(dec)


def _attention(config: MaskDiTConfig, gamma: float) -> int:
    k, n = masked_num_kept(config.num_tokens, gamma), config.num_tokens
    return (config.depth * attention_score_flops(k, k, config.hidden_size)
            + config.decoder_depth * attention_score_flops(n, n, config.decoder_hidden_size))


def maskdit_forward_flops(config: MaskDiTConfig, gamma: float) -> FlopCount:
    """The encoder blocks and `decoder_layer` see the k = int(N * (1 - gamma)) kept tokens, the
    decoder blocks all N (mask tokens filled in); embedders and final layer always see N."""
    rest, (ea, eb), (la, lb), (da, db) = _components(_arch_key(config))
    k, n = masked_num_kept(config.num_tokens, gamma), config.num_tokens
    total = rest + la * k + lb + config.depth * (ea * k + eb) + config.decoder_depth * (da * n + db)
    return FlopCount(total, _attention(config, gamma))


def maskdit_trace_flops(model: MaskDiT, gamma: float) -> FlopCount:
    return FlopCount(fvcore_flops(ForwardAt(model, gamma), class_inputs(model.config)), _attention(model.config, gamma))


register_backbone(BackboneFamily(
    name="maskdit", config_class=MaskDiTConfig, build=build_maskdit, presets=MASKDIT_PRESETS,
    make_config=maskdit_config, kept_tokens=masked_num_kept, forward_flops=maskdit_forward_flops,
    trace_flops=maskdit_trace_flops, config_from_weights=maskdit_config_from_weights,
    detect=is_maskdit_state_dict, takes_routes=False,
))
