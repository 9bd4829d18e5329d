"""GFLOPs per image of guided sampling: per-evaluation costs averaged over a sampler's evaluations.

A guided velocity evaluation runs one network pass per branch; a sampler's evaluation schedule
(`sgbench.sampling.solvers.evaluation_schedule`: Euler one per step, Heun two) says which
branches each evaluation runs, and the backbone family's FLOP model (`sgbench.models`) what
one pass costs. This module only averages: it never sees a model, a rule or a solver, so it
serves any backbone and any guidance method (composed by `sgbench.run.flops`).

Two numbers per count (1 fused multiply-add = 1 FLOP):
  gflops       fvcore's count, without the attention-score matmuls (fvcore skips
               scaled_dot_product_attention): the paper's convention (SiT-XL/2 114.46, Table 2);
  gflops_attn  the same plus the attention-score products Q K^T and A V, the convention of the
               DiT/SiT papers' tables (DiT-XL/2 118.69 for the published 118.64).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

import numpy as np

from sgbench.errors import UserError

Cost = tuple[int, int]  # one network pass of one image: (fvcore FLOPs, attention-score FLOPs)


@dataclass
class FlopsReport:
    gflops: float  # one guided velocity evaluation (all branches) per image, mean over evaluations
    gflops_attn: float  # the same with attention-score matmuls
    per_branch: list[float]  # mean GFLOPs of each branch over the evaluations (0 where it did not run)
    per_branch_attn: list[float]
    dense_gflops: float  # one dense forward of the main network (the unguided baseline)
    dense_gflops_attn: float
    relative_to_unguided: float  # gflops / dense_gflops
    evaluations: int  # model evaluations of one sample (Euler: steps, Heun: 2 * steps)
    steps: int = 0
    solver: str = ""
    guidance: str = ""
    arch: str = ""
    routes: list[str] = field(default_factory=list)
    text_len: Optional[int] = None  # text tokens L of a T2I architecture (None otherwise)

    def to_dict(self) -> dict:
        return asdict(self)


def average_flops(evaluations: Sequence[Sequence[Cost]], dense: Cost, **info) -> FlopsReport:
    """Mean over `evaluations` (per model evaluation, the cost of each branch pass, strong first;
    evaluations may differ in their number of passes) of the summed branch costs.

    `dense`: one unguided pass of the main network (the reference of `relative_to_unguided`);
    `info`: the descriptive fields of FlopsReport (steps, solver, guidance, arch, routes, text_len).
    """
    if not evaluations or not all(evaluations):
        raise UserError("every model evaluation needs at least one network pass")
    width = max(len(e) for e in evaluations)
    plain = np.zeros((len(evaluations), width))
    attn = np.zeros((len(evaluations), width))
    for i, passes in enumerate(evaluations):
        plain[i, : len(passes)] = [float(c[0]) for c in passes]
        attn[i, : len(passes)] = [float(c[0] + c[1]) for c in passes]
    total = float(plain.sum(axis=1).mean())
    return FlopsReport(
        gflops=total / 1e9,
        gflops_attn=float(attn.sum(axis=1).mean()) / 1e9,
        per_branch=[float(v) / 1e9 for v in plain.mean(axis=0)],
        per_branch_attn=[float(v) / 1e9 for v in attn.mean(axis=0)],
        dense_gflops=dense[0] / 1e9,
        dense_gflops_attn=(dense[0] + dense[1]) / 1e9,
        relative_to_unguided=total / dense[0],
        evaluations=len(evaluations),
        **info,
    )
