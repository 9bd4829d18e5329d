"""FLOPs of guided DiT/SiT, MaskDiT and T2I-DiT sampling in the convention of the DiT/SiT/TREAD papers.

Convention: fvcore's counts (one fused multiply-add = 1 FLOP; linear, conv, layer norm and
einsum counted; elementwise ops and gathers not counted) plus the attention-score products
2 * n^2 * D per block per image (Q K^T and A V; n tokens, width D). fvcore skips
`aten::scaled_dot_product_attention`, which our blocks call; the original DiT code wrote
attention as two explicit matmuls that fvcore counts, and the published numbers include them:
DiT-XL/2 118.69 GFLOPs with them (paper: 118.64), 114.46 without. `attention=False` gives
fvcore's plain count of an SDPA model.

Fast path: a forward is embedders + blocks + final layer. The non-block part is traced once
(a depth-0 model); one block is traced at two token counts, and its FLOPs are the exact affine
function a*n + b of the token count n (every counted op in a block is per-token, except adaLN,
which is per-image); tests check the composition against full traces of routed models.

MaskDiT (`MaskDiTConfig` or a `MaskDiT-*` preset name): at rate gamma the encoder blocks and
`decoder_layer` see the k = N - int(N * gamma) kept tokens, the decoder blocks all N (mask tokens
filled in); embedders and final layer always see N. The same fast path: the non-block part of a
depth-1/decoder-depth-1 model is traced once, an encoder block, `decoder_layer` and a decoder
block each at two token counts (exact affine), attention scores 2 * n^2 * width per block (k and
the encoder width in the encoder, N and the decoder width in the decoder). Any gamma in [0, 1)
is allowed (no routes); tests check the composition against full traces of the masked forward.

Text-to-image DiT (`T2IDiTConfig` or a `T2I_PRESETS` name such as 'TR-DiT-2.5B'): the count needs
`text_len`, the number L of text tokens the text adapter and the cross-attention see (give the
real token count: padded positions of the key mask are not counted; there is no default). The
non-block part (patch embedder, t embedder, adaLN-single `t_block` once per image, the 2-layer
text adapter over L tokens, final layer) is traced once from a depth-1 model; one `T2IBlock` is
traced at 1, N/2 and N image tokens and is exactly a*n + b for fixed L (b: the per-image K/V
projection of the L text tokens; rechecked at N/2). Routed blocks see the kept tokens, as in
DiT/SiT. Attention scores added: self-attention 2 * n^2 * D and cross-attention 2 * n * L * D per
block, and 2 * L^2 * D per adapter layer. The frozen text encoder is NOT counted: it runs once
per prompt, not once per sampling step. fvcore does not count RMSNorm (`aten::rms_norm`), which
these blocks use, so their norms are free here (a DiT's LayerNorms are counted). Components are
cached per (architecture, L): TR-DiT-2.5B is counted in a few seconds.

Guidance -> branches: a guided velocity evaluates one network pass per branch. Per step the
branch sparsity rates are
    none            [gamma_strong]            (default 0: dense, unguided)
    cfg, icg        [0, 0]                    (conditional + unconditional/random-condition)
    ag              [0, 0]                    (weak network assumed to share the architecture)
    sg, cfg+sg, ag+sg  [gamma_strong, gamma_weak]
A gamma is a number or a schedule 'cosine:START:END' / 'linear:START:END' over the steps, parsed
by `sgbench.guidance.schedules` (the samplers' parser): with u_i = i / (steps - 1) for step i = 0 .. steps-1 (u = 0 when steps == 1),
    linear: START + (END - START) * u_i
    cosine: END + (START - END) * (1 + cos(pi * u_i)) / 2
so both start at START on the first step and reach END on the last.
"""

from __future__ import annotations

import operator
import warnings
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import Optional, Sequence, Union

import numpy as np
import torch

from sgbench.errors import UserError
from sgbench.guidance.schedules import parse_schedule
from sgbench.models.dit import DIT_PRESETS, DiT, DiTConfig, Route, dit_config
from sgbench.models.maskdit import MaskDiT, MaskDiTConfig, maskdit_config
from sgbench.models.routing import num_kept
from sgbench.models.t2i_dit import T2I_PRESETS, T2IDiT, T2IDiTConfig, t2i_config

GUIDANCE_METHODS = ("none", "cfg", "sg", "cfg+sg", "ag", "ag+sg", "icg")
_SPARSE_METHODS = ("sg", "cfg+sg", "ag+sg")
GammaSpec = Union[float, int, str, None]
ModelConfig = Union[DiTConfig, MaskDiTConfig, T2IDiTConfig]
# backbone configs `gflops_per_image` counts (T2IDiTConfig only with text_len)
SUPPORTED_CONFIGS = (DiTConfig, MaskDiTConfig, T2IDiTConfig)


# -- gamma schedules ---------------------------------------------------------------------------
def schedule_values(spec: GammaSpec, steps: int) -> np.ndarray:
    """Per-step values of a gamma (None = 0): a number, 'constant:V', 'cosine:START:END' or
    'linear:START:END', parsed and evaluated by `sgbench.guidance.schedules` (rates in [0, 1))."""
    if steps < 1:
        raise UserError(f"steps must be >= 1, got {steps}")
    if spec is None:
        return np.zeros(steps)
    return np.asarray(parse_schedule(spec).values(steps), dtype=float)


def guidance_branch_gammas(
    method: str, gamma_strong: GammaSpec = None, gamma_weak: GammaSpec = None, steps: int = 40
) -> list[tuple[float, ...]]:
    """Per step, the sparsity rate of each network pass of the guided velocity (see module doc)."""
    if method not in GUIDANCE_METHODS:
        raise UserError(f"unknown guidance {method!r}; choose one of {', '.join(GUIDANCE_METHODS)}")
    if method == "none":
        if gamma_weak is not None:
            raise UserError("guidance 'none' has one branch: give --gamma-strong only (its sparsity)")
        return [(float(g),) for g in schedule_values(gamma_strong, steps)]
    if method in _SPARSE_METHODS:
        if gamma_weak is None:
            raise UserError(f"guidance {method!r} needs gamma_weak (the weak branch's sparsity)")
        strong, weak = schedule_values(gamma_strong, steps), schedule_values(gamma_weak, steps)
        return [(float(a), float(b)) for a, b in zip(strong, weak)]
    if gamma_strong is not None or gamma_weak is not None:
        raise UserError(f"guidance {method!r} runs two dense branches; for sparse branches use {method}+sg")
    return [(0.0, 0.0)] * steps


# -- fvcore traces ------------------------------------------------------------------------------
def fvcore_flops(module: torch.nn.Module, inputs: tuple) -> int:
    """fvcore's total for one call (warnings about skipped ops silenced: skipping is the convention)."""
    with warnings.catch_warnings():  # fvcore's import uses the deprecated torch.jit.script
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn import FlopCountAnalysis

    fca = FlopCountAnalysis(module, inputs)
    fca.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with torch.no_grad():
        return int(fca.total())


class _Forward(torch.nn.Module):
    """Fixes gamma so jit tracing sees tensors only."""

    def __init__(self, model: Union[DiT, MaskDiT], gamma: float):
        super().__init__()
        self.model, self.gamma = model, gamma

    def forward(self, x, t, y):
        g = torch.Generator().manual_seed(0)
        return self.model(x, t, y, gamma=self.gamma, generator=g)


class _T2IForward(torch.nn.Module):
    """The text-to-image forward with gamma fixed (inputs: latents, t, text states, text mask)."""

    def __init__(self, model: T2IDiT, gamma: float):
        super().__init__()
        self.model, self.gamma = model, gamma

    def forward(self, x, t, text_emb, text_mask):
        g = torch.Generator().manual_seed(0)
        return self.model(x, t, text_emb, text_mask, gamma=self.gamma, generator=g)


def _example_inputs(config: ModelConfig, batch: int = 1):
    x = torch.zeros(batch, config.in_channels, config.input_size, config.input_size)
    return x, torch.full((batch,), 0.5), torch.zeros(batch, dtype=torch.long)


def _t2i_example_inputs(config: T2IDiTConfig, text_len: int, batch: int = 1):
    x = torch.zeros(batch, config.in_channels, config.input_size, config.input_size)
    text = torch.zeros(batch, text_len, config.text_dim)
    return x, torch.full((batch,), 0.5), text, torch.ones(batch, text_len, dtype=torch.bool)


def check_text_len(config: ModelConfig, text_len) -> Optional[int]:
    """text_len as an int >= 1 for a T2I config (required there), None for other configs."""
    if not isinstance(config, T2IDiTConfig):
        if text_len is not None:
            raise UserError(f"text_len applies to text-to-image (T2I) architectures only, "
                            f"not {type(config).__name__}")
        return None
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


def trace_model_flops(
    model: Union[DiT, MaskDiT, T2IDiT], gamma: float = 0.0, attention: bool = True, text_len: Optional[int] = None
) -> int:
    """Naive reference: fvcore trace of a whole forward at batch 1 (FLOPs per image).

    A T2IDiT needs `text_len` (text tokens, all unmasked)."""
    model = model.eval()
    if isinstance(model, T2IDiT):
        text_len = check_text_len(model.config, text_len)
        flops = fvcore_flops(_T2IForward(model, gamma), _t2i_example_inputs(model.config, text_len))
        return flops + (t2i_attention_flops(model.config, gamma, text_len) if attention else 0)
    flops = fvcore_flops(_Forward(model, gamma), _example_inputs(model.config))
    if attention:
        flops += sum(_attention_flops(n, width) for n, width in attention_blocks(model.config, gamma))
    return flops


def _attention_flops(n_tokens: int, width: int) -> int:
    return 2 * n_tokens * n_tokens * width


def block_token_counts(config: Union[DiTConfig, T2IDiTConfig], gamma: float) -> list[int]:
    """Tokens each block processes at sparsity gamma (route blocks see the kept tokens)."""
    n = config.num_tokens
    k = num_kept(n, gamma)
    if gamma > 0 and not config.routes and k < n:
        raise UserError("gamma > 0 requested but the architecture has no routes (give --routes, e.g. 2-24)")
    routed = {i for r in config.routes for i in range(r.start, r.end + 1)}
    return [k if i in routed else n for i in range(config.depth)]


def maskdit_token_counts(config: MaskDiTConfig, gamma: float) -> tuple[list[int], list[int]]:
    """Tokens each MaskDiT encoder block (kept tokens) and decoder block (all N) processes at gamma."""
    n = config.num_tokens
    return [num_kept(n, gamma)] * config.depth, [n] * config.decoder_depth


def attention_blocks(config: ModelConfig, gamma: float) -> list[tuple[int, int]]:
    """(tokens, width) of every attention of one forward at sparsity gamma."""
    if isinstance(config, MaskDiTConfig):
        enc, dec = maskdit_token_counts(config, gamma)
        return [(n, config.hidden_size) for n in enc] + [(n, config.decoder_hidden_size) for n in dec]
    return [(n, config.hidden_size) for n in block_token_counts(config, gamma)]


def t2i_attention_flops(config: T2IDiTConfig, gamma: float, text_len: int) -> int:
    """Attention-score FLOPs of one T2I forward: per block self-attention 2 n^2 D and cross-attention
    2 n L D (n image tokens of the block, L text tokens), plus 2 L^2 D per text-adapter layer."""
    D, L = config.hidden_size, text_len
    blocks = sum(_attention_flops(n, D) + 2 * n * L * D for n in block_token_counts(config, gamma))
    return blocks + config.adapter_layers * _attention_flops(L, D)


def _arch_key(config: DiTConfig) -> tuple:
    d = asdict(config)
    d.pop("routes")
    d.pop("depth")
    return tuple(sorted((k, v) for k, v in d.items()))


@lru_cache(maxsize=32)
def _components(arch_key: tuple) -> tuple[int, int, int]:
    """(non-block FLOPs, block per-token a, block per-image b) for one architecture.

    The non-block part is a dense depth-1 model minus its block (DiTConfig needs depth >= 1).
    """
    cfg = DiTConfig(**dict(arch_key), depth=1, routes=())
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = DiT(cfg).eval()
    block = model.blocks[0]
    c = torch.zeros(1, cfg.hidden_size)
    n = cfg.num_tokens
    at_n = fvcore_flops(block, (torch.zeros(1, n, cfg.hidden_size), c))
    at_1 = fvcore_flops(block, (torch.zeros(1, 1, cfg.hidden_size), c))
    rest = fvcore_flops(_Forward(model, 0.0), _example_inputs(cfg)) - at_n
    a = (at_n - at_1) // (n - 1) if n > 1 else 0
    if n > 1 and a * (n - 1) != at_n - at_1:  # not affine in n: the composition would be wrong
        raise RuntimeError(f"block FLOPs are not affine in the token count ({at_1} at 1, {at_n} at {n})")
    return rest, a, at_1 - a


def _affine_in_tokens(
    module: torch.nn.Module, n: int, inputs, check_at: Sequence[int] = ()
) -> tuple[int, int, int]:
    """(FLOPs at n tokens, per-token a, per-image b) of module(*inputs(k)) traced at k = 1 and k = n,
    checked to be exactly affine in the token count (integer slope; also exact at `check_at`)."""
    at_n = fvcore_flops(module, inputs(n))
    at_1 = fvcore_flops(module, inputs(1))
    a = (at_n - at_1) // (n - 1) if n > 1 else 0
    name = type(module).__name__
    if n > 1 and a * (n - 1) != at_n - at_1:
        raise RuntimeError(f"{name} FLOPs are not affine in the token count ({at_1} at 1, {at_n} at {n})")
    for k in check_at:
        if 1 < k < n and fvcore_flops(module, inputs(k)) != a * k + at_1 - a:
            raise RuntimeError(f"{name} FLOPs are not affine in the token count (check at {k} of {n} tokens)")
    return at_n, a, at_1 - a


def _affine(module: torch.nn.Module, n: int, width: int, cond_width: int) -> tuple[int, int, int]:
    """(FLOPs at n tokens, per-token a, per-image b) of module(x [1, n, width], c [1, cond_width]),
    checked to be exactly affine in the token count."""
    c = torch.zeros(1, cond_width)
    return _affine_in_tokens(module, n, lambda k: (torch.zeros(1, k, width), c))


def _maskdit_arch_key(config: MaskDiTConfig) -> tuple:
    d = config.to_dict()
    d.pop("depth")
    d.pop("decoder_depth")
    return tuple(sorted(d.items()))


@lru_cache(maxsize=32)
def _maskdit_components(arch_key: tuple) -> tuple[int, tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(non-block FLOPs, encoder block (a, b), decoder_layer (a, b), decoder block (a, b)) of one
    MaskDiT architecture; the non-block part (embedders, final layer) is a dense depth-1,
    decoder-depth-1 model minus its encoder block, decoder_layer and decoder block."""
    cfg = MaskDiTConfig(**dict(arch_key), depth=1, decoder_depth=1)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = MaskDiT(cfg).eval()
    n, h, dh = cfg.num_tokens, cfg.hidden_size, cfg.decoder_hidden_size
    enc_n, *enc = _affine(model.blocks[0], n, h, h)
    lay_n, *lay = _affine(model.decoder_layer, n, h, h)
    dec_n, *dec = _affine(model.decoder_blocks[0], n, dh, h)
    rest = fvcore_flops(_Forward(model, 0.0), _example_inputs(cfg)) - enc_n - lay_n - dec_n
    return rest, tuple(enc), tuple(lay), tuple(dec)


def _maskdit_forward_flops(config: MaskDiTConfig, gamma: float, attention: bool) -> int:
    rest, (ea, eb), (la, lb), (da, db) = _maskdit_components(_maskdit_arch_key(config))
    enc, dec = maskdit_token_counts(config, gamma)
    kept = num_kept(config.num_tokens, gamma)
    total = rest + la * kept + lb  # decoder_layer maps the kept tokens to the decoder width
    total += sum(ea * n + eb for n in enc) + sum(da * n + db for n in dec)
    if attention:
        total += sum(_attention_flops(n, w) for n, w in attention_blocks(config, gamma))
    return total


def _t2i_arch_key(config: T2IDiTConfig) -> tuple:
    d = config.to_dict()
    for k in ("depth", "routes", "train_gamma"):  # not part of one block / the non-block layers
        d.pop(k)
    return tuple(sorted(d.items()))


@lru_cache(maxsize=32)
def _t2i_components(arch_key: tuple, text_len: int) -> tuple[int, int, int]:
    """(non-block FLOPs, block per-token a, block per-image b) of one T2I architecture at L text tokens.

    The non-block part (embedders, t_block, text adapter over L tokens, final layer) is a dense
    depth-1 model minus its block; the block is traced with L text tokens at 1 and N image tokens
    (and rechecked at N/2), its b being the per-image K/V projection of the text."""
    cfg = T2IDiTConfig(**dict(arch_key), depth=1)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = T2IDiT(cfg).eval()
    n, width = cfg.num_tokens, cfg.hidden_size
    t6, text = torch.zeros(1, 6, width), torch.zeros(1, text_len, width)
    mask = torch.ones(1, text_len, dtype=torch.bool)

    def inputs(k: int) -> tuple:
        return torch.zeros(1, k, width), t6, model.positions[None, :k], model.rope_freqs, text, mask

    at_n, a, b = _affine_in_tokens(model.blocks[0], n, inputs, check_at=(n // 2,))
    rest = fvcore_flops(_T2IForward(model, 0.0), _t2i_example_inputs(cfg, text_len)) - at_n
    return rest, a, b


def _t2i_forward_flops(config: T2IDiTConfig, gamma: float, attention: bool, text_len: int) -> int:
    rest, a, b = _t2i_components(_t2i_arch_key(config), text_len)
    total = rest + sum(a * n + b for n in block_token_counts(config, gamma))
    return total + (t2i_attention_flops(config, gamma, text_len) if attention else 0)


def forward_flops(config: ModelConfig, gamma: float = 0.0, attention: bool = True,
                  text_len: Optional[int] = None) -> int:
    """FLOPs of one forward of one image at sparsity gamma (fast, composed path).

    `text_len` (text tokens L) is required for a `T2IDiTConfig` and refused for other configs."""
    text_len = check_text_len(config, text_len)
    if isinstance(config, T2IDiTConfig):
        return _t2i_forward_flops(config, gamma, attention, text_len)
    if isinstance(config, MaskDiTConfig):
        return _maskdit_forward_flops(config, gamma, attention)
    rest, a, b = _components(_arch_key(config))
    total = rest
    for n in block_token_counts(config, gamma):
        total += a * n + b + (_attention_flops(n, config.hidden_size) if attention else 0)
    return total


# -- guided sampling ------------------------------------------------------------------------------
@dataclass
class FlopsReport:
    gflops: float  # one guided velocity evaluation (all branches) per image, mean over steps
    per_branch: list[float]  # mean GFLOPs of each branch over steps
    dense_gflops: float  # one dense forward (the unguided baseline)
    relative_to_unguided: float
    steps: int
    guidance: str
    attention_included: bool
    arch: str = ""
    routes: list[str] = field(default_factory=list)
    text_len: Optional[int] = None  # text tokens L of a T2I architecture (None for DiT/SiT, MaskDiT)

    def to_dict(self) -> dict:
        return asdict(self)


def step_gammas_from_rule(rule, steps: int) -> list[tuple[float, ...]]:
    """Per-step branch gammas of a guidance rule (Euler: step k evaluated at t = k / steps)."""
    return [tuple(float(b[-1]) for b in rule.branch_gammas(k, steps)) for k in range(steps)]


def _is_maskdit_arch(arch: str) -> bool:
    return arch.startswith("MaskDiT-")


def resolve_config(arch: Union[str, ModelConfig], routes: Optional[Sequence] = None, **overrides) -> ModelConfig:
    """A config, or a preset name: DiT/SiT presets ('SiT-XL/2'), MaskDiT presets ('MaskDiT-XL/2') or
    text-to-image presets ('TR-DiT-2.5B', 'T2I-shapes', ...: `sgbench.models.t2i_dit.T2I_PRESETS`).

    `routes=None` keeps the routes of a config or preset (T2I presets have routes, DiT/SiT presets
    none); a sequence, even an empty one, replaces them. Overrides apply to preset names only."""
    if isinstance(arch, MaskDiTConfig) or (isinstance(arch, str) and _is_maskdit_arch(arch)):
        if routes:
            raise UserError("MaskDiT has no routes: its encoder masks gamma of the tokens (leave out --routes)")
        return arch if isinstance(arch, MaskDiTConfig) else maskdit_config(arch, **overrides)
    if isinstance(arch, (DiTConfig, T2IDiTConfig)):
        return arch if routes is None else replace(arch, routes=tuple(routes))
    if isinstance(arch, str) and arch in T2I_PRESETS:
        fields = set(T2IDiTConfig.__dataclass_fields__)
        bad = sorted(set(overrides) - fields)
        if bad:
            raise UserError(f"{', '.join(bad)} does not apply to the T2I architecture {arch!r}")
        if routes is not None:
            overrides["routes"] = tuple(routes)
        return t2i_config(arch, **overrides)
    if isinstance(arch, str) and arch not in DIT_PRESETS:
        known = sorted(DIT_PRESETS) + sorted(T2I_PRESETS)
        raise UserError(f"unknown architecture {arch!r}; known: {', '.join(known)} (and MaskDiT-* presets)")
    parsed = tuple(r if isinstance(r, Route) else Route.parse(r) for r in (routes or ()))
    return dit_config(arch, routes=parsed, **overrides)


def gflops_per_image(
    arch: Union[str, ModelConfig],
    routes: Optional[Sequence] = None,
    guidance: str = "none",
    gamma_strong: GammaSpec = None,
    gamma_weak: GammaSpec = None,
    steps: int = 40,
    attention: bool = True,
    step_gammas: Optional[Sequence[Sequence[float]]] = None,
    rule=None,
    text_len: Optional[int] = None,
    **config_overrides,
) -> FlopsReport:
    """GFLOPs per image of one guided velocity evaluation, averaged over the sampling steps.

    `text_len` is the number L of text tokens a T2I architecture's cross-attention and text
    adapter see (required for T2I, refused otherwise); the frozen text encoder is not counted.

    Instead of guidance/gammas, give `rule` (a `sgbench.guidance` GuidanceRule: its
    `branch_gammas(step, steps)` decides the branches, including guidance intervals and
    omega == 1), or `step_gammas` (per step, the gammas of the passes evaluated; steps may
    differ in their number of passes). `per_branch[i]` is branch i's FLOPs averaged over all
    steps (0 where it is not evaluated), so the branches sum to `gflops`.
    """
    config = resolve_config(arch, routes, **config_overrides)
    text_len = check_text_len(config, text_len)
    if rule is not None:
        step_gammas = step_gammas_from_rule(rule, steps)
        guidance = getattr(rule, "method", guidance)
    elif step_gammas is None:
        step_gammas = guidance_branch_gammas(guidance, gamma_strong, gamma_weak, steps)
    step_gammas = [tuple(float(g) for g in s) for s in step_gammas]
    if not step_gammas or not all(step_gammas):
        raise UserError("every sampling step needs at least one network pass")
    cache: dict[float, int] = {}

    def flops(g: float) -> int:
        if g not in cache:
            cache[g] = forward_flops(config, g, attention, text_len)
        return cache[g]

    width = max(len(s) for s in step_gammas)
    per_step = np.zeros((len(step_gammas), width))
    for i, s in enumerate(step_gammas):
        per_step[i, : len(s)] = [flops(g) for g in s]
    dense = flops(0.0)
    total = float(per_step.sum(axis=1).mean())
    return FlopsReport(
        gflops=total / 1e9,
        per_branch=[float(v) / 1e9 for v in per_step.mean(axis=0)],
        dense_gflops=dense / 1e9,
        relative_to_unguided=total / dense,
        steps=len(step_gammas),
        guidance=guidance,
        attention_included=attention,
        arch=arch if isinstance(arch, str) else "",
        routes=[f"{r.start}-{r.end}" for r in getattr(config, "routes", ())],
        text_len=text_len,
    )
