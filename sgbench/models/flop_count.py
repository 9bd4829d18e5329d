"""FLOPs of one backbone forward, in fvcore's convention; shared tools of the families' FLOP models.

Convention (the paper's GFLOPs): fvcore's count, one fused multiply-add = 1 FLOP; linear, conv,
layer norm and einsum counted, elementwise ops and gathers not. fvcore does not count
`aten::scaled_dot_product_attention`, which every block here calls, so the paper's numbers
leave out the attention-score products; each family adds them separately as
`FlopCount.attention` (2 * n^2 * D per self-attention over n tokens of width D, i.e. Q K^T and
A V), giving the with-attention count of the DiT/SiT papers (DiT-XL/2: 118.69 vs 114.46).

Fast path: a forward is embedders + blocks + final layer. A family traces its non-block part
once and each kind of block at two token counts; every counted op in a block is per token except
adaLN (per image), so a block's FLOPs are exactly a*n + b in its token count n (checked when
traced). `forward_flops(config, gamma)` composes these; `trace_model_flops(model, gamma)` is the
naive full trace the tests compare it with. Each family module (dit, maskdit, t2i_dit) registers
its two functions in the backbone registry.
"""

from __future__ import annotations

import warnings
from typing import Callable, Sequence

import torch

from sgbench.errors import UserError
from sgbench.models.registry import FlopCount, backbone_families, family_of_config, get_backbone_family


def fvcore_flops(module: torch.nn.Module, inputs: tuple) -> int:
    """fvcore's total for one call (warnings about skipped ops silenced: skipping is the convention)."""
    with warnings.catch_warnings():  # fvcore's import uses the deprecated torch.jit.script
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn import FlopCountAnalysis

    fca = FlopCountAnalysis(module, inputs)
    fca.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with torch.no_grad():
        return int(fca.total())


class ForwardAt(torch.nn.Module):
    """model(*inputs, gamma=gamma) with a fixed token draw, so jit tracing sees tensors only."""

    def __init__(self, model: torch.nn.Module, gamma: float):
        super().__init__()
        self.model, self.gamma = model, gamma

    def forward(self, *inputs):
        return self.model(*inputs, gamma=self.gamma, generator=torch.Generator().manual_seed(0))


def attention_score_flops(n_queries: int, n_keys: int, width: int) -> int:
    """Q K^T and A V of one attention: 2 * n_queries * n_keys * width (summed over heads)."""
    return 2 * n_queries * n_keys * width


def affine_in_tokens(module: torch.nn.Module, n: int, inputs: Callable[[int], tuple],
                     check_at: Sequence[int] = ()) -> tuple[int, int, int]:
    """(FLOPs at n tokens, per-token a, per-image b) of module(*inputs(k)) traced at k = 1 and k = n,
    checked to be exactly affine in the token count (integer slope; also exact at `check_at`)."""
    at_n = fvcore_flops(module, inputs(n))
    at_1 = fvcore_flops(module, inputs(1))
    a = (at_n - at_1) // (n - 1) if n > 1 else 0
    name = type(module).__name__
    if n > 1 and a * (n - 1) != at_n - at_1:  # not affine: the composition would be wrong
        raise RuntimeError(f"{name} FLOPs are not affine in the token count ({at_1} at 1, {at_n} at {n})")
    for k in check_at:
        if 1 < k < n and fvcore_flops(module, inputs(k)) != a * k + at_1 - a:
            raise RuntimeError(f"{name} FLOPs are not affine in the token count (check at {k} of {n} tokens)")
    return at_n, a, at_1 - a


def block_affine(block: torch.nn.Module, n: int, width: int, cond_width: int) -> tuple[int, int, int]:
    """`affine_in_tokens` of an adaLN block block(x [1, k, width], c [1, cond_width])."""
    c = torch.zeros(1, cond_width)
    return affine_in_tokens(block, n, lambda k: (torch.zeros(1, k, width), c))


def traced_component_model(build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """A small model built for tracing, with fixed weights and the global RNG left untouched."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return build().eval()


def routed_token_counts(config, gamma: float, kept_tokens: Callable[[int, float], int]) -> list[int]:
    """Tokens each block of a routed (TREAD) config processes at sparsity gamma."""
    n = config.num_tokens
    k = kept_tokens(n, gamma)
    if k < n and not config.routes:
        raise UserError("gamma > 0 requested but the architecture has no routes (give --routes, e.g. 2-24)")
    routed = {i for r in config.routes for i in range(r.start, r.end + 1)}
    return [k if i in routed else n for i in range(config.depth)]


def _family(config):
    fam = family_of_config(config)
    if fam is None:
        raise UserError(f"no FLOP model for {type(config).__name__}: not the config of a registered backbone family")
    return fam


def _inputs(fam, inputs: dict) -> dict:
    """The FLOP inputs the family takes (None = not given); others are a one-line error."""
    given = {k: v for k, v in inputs.items() if v is not None}
    for k in given:
        if k not in fam.flop_inputs:
            users = [f for f in backbone_families() if k in get_backbone_family(f).flop_inputs]
            raise UserError(f"{k} applies to {', '.join(users) or 'no'} architectures only, not to {fam.name} "
                            f"({fam.config_class.__name__})")
    return given


def forward_flops(config, gamma: float = 0.0, **inputs) -> FlopCount:
    """FLOPs of one forward of one image at sparsity gamma (fast composed path) by the config's family.

    `inputs`: what the family's count needs besides gamma (T2I: `text_len`, the text tokens)."""
    fam = _family(config)
    return fam.forward_flops(config, float(gamma), **_inputs(fam, inputs))


def trace_model_flops(model: torch.nn.Module, gamma: float = 0.0, **inputs) -> FlopCount:
    """Naive reference: fvcore trace of a whole forward at batch 1 (FLOPs per image)."""
    fam = _family(model.config)
    return fam.trace_flops(model.eval(), float(gamma), **_inputs(fam, inputs))
