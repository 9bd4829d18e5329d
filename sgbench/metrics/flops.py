"""FLOPs of guided DiT/SiT (and MaskDiT) sampling in the convention of the DiT/SiT/TREAD papers.

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

import warnings
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import Optional, Sequence, Union

import numpy as np
import torch

from sgbench.errors import UserError
from sgbench.guidance.schedules import parse_schedule
from sgbench.models.dit import DiT, DiTConfig, Route, dit_config
from sgbench.models.maskdit import MaskDiT, MaskDiTConfig, maskdit_config
from sgbench.models.routing import num_kept

GUIDANCE_METHODS = ("none", "cfg", "sg", "cfg+sg", "ag", "ag+sg", "icg")
_SPARSE_METHODS = ("sg", "cfg+sg", "ag+sg")
GammaSpec = Union[float, int, str, None]
ModelConfig = Union[DiTConfig, MaskDiTConfig]
SUPPORTED_CONFIGS = (DiTConfig, MaskDiTConfig)  # backbone configs `gflops_per_image` counts


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


def _example_inputs(config: ModelConfig, batch: int = 1):
    x = torch.zeros(batch, config.in_channels, config.input_size, config.input_size)
    return x, torch.full((batch,), 0.5), torch.zeros(batch, dtype=torch.long)


def trace_model_flops(model: Union[DiT, MaskDiT], gamma: float = 0.0, attention: bool = True) -> int:
    """Naive reference: fvcore trace of a whole forward at batch 1 (FLOPs per image)."""
    model = model.eval()
    flops = fvcore_flops(_Forward(model, gamma), _example_inputs(model.config))
    if attention:
        flops += sum(_attention_flops(n, width) for n, width in attention_blocks(model.config, gamma))
    return flops


def _attention_flops(n_tokens: int, width: int) -> int:
    return 2 * n_tokens * n_tokens * width


def block_token_counts(config: DiTConfig, gamma: float) -> list[int]:
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


def _affine(module: torch.nn.Module, n: int, width: int, cond_width: int) -> tuple[int, int, int]:
    """(FLOPs at n tokens, per-token a, per-image b) of module(x [1, n, width], c [1, cond_width]),
    checked to be exactly affine in the token count."""
    c = torch.zeros(1, cond_width)
    at_n = fvcore_flops(module, (torch.zeros(1, n, width), c))
    at_1 = fvcore_flops(module, (torch.zeros(1, 1, width), c))
    a = (at_n - at_1) // (n - 1) if n > 1 else 0
    if n > 1 and a * (n - 1) != at_n - at_1:
        name = type(module).__name__
        raise RuntimeError(f"{name} FLOPs are not affine in the token count ({at_1} at 1, {at_n} at {n})")
    return at_n, a, at_1 - a


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


def forward_flops(config: ModelConfig, gamma: float = 0.0, attention: bool = True) -> int:
    """FLOPs of one forward of one image at sparsity gamma (fast, composed path)."""
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

    def to_dict(self) -> dict:
        return asdict(self)


def step_gammas_from_rule(rule, steps: int) -> list[tuple[float, ...]]:
    """Per-step branch gammas of a guidance rule (Euler: step k evaluated at t = k / steps)."""
    return [tuple(float(b[-1]) for b in rule.branch_gammas(k, steps)) for k in range(steps)]


def _is_maskdit_arch(arch: str) -> bool:
    return arch.startswith("MaskDiT-")


def resolve_config(arch: Union[str, ModelConfig], routes: Optional[Sequence] = None, **overrides) -> ModelConfig:
    """A config, or a preset name: DiT/SiT presets ('SiT-XL/2') or MaskDiT presets ('MaskDiT-XL/2')."""
    if isinstance(arch, MaskDiTConfig) or (isinstance(arch, str) and _is_maskdit_arch(arch)):
        if routes:
            raise UserError("MaskDiT has no routes: its encoder masks gamma of the tokens (leave out --routes)")
        return arch if isinstance(arch, MaskDiTConfig) else maskdit_config(arch, **overrides)
    if isinstance(arch, DiTConfig):
        return arch if routes is None else replace(arch, routes=tuple(routes))
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
    **config_overrides,
) -> FlopsReport:
    """GFLOPs per image of one guided velocity evaluation, averaged over the sampling steps.

    Instead of guidance/gammas, give `rule` (a `sgbench.guidance` GuidanceRule: its
    `branch_gammas(step, steps)` decides the branches, including guidance intervals and
    omega == 1), or `step_gammas` (per step, the gammas of the passes evaluated; steps may
    differ in their number of passes). `per_branch[i]` is branch i's FLOPs averaged over all
    steps (0 where it is not evaluated), so the branches sum to `gflops`.
    """
    config = resolve_config(arch, routes, **config_overrides)
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
            cache[g] = forward_flops(config, g, attention)
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
    )
