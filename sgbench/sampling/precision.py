"""The sampler's precision names -> the dtype networks run in under autocast (None: fp32).

"auto" is bf16 on CUDA (as the paper samples) and fp32 on CPU; "fp32" and "bf16" force one.
Suites (`sampler.dtype`), `sgbench sample` and `generate(autocast=...)` all use this mapping.
"""

from __future__ import annotations

from typing import Optional, Union

import torch

from sgbench.errors import UserError

PRECISIONS = ("auto", "fp32", "bf16")


def autocast_dtype(precision: Union[str, None, torch.dtype], device) -> Optional[torch.dtype]:
    """A precision name (or a dtype / None, passed through) -> autocast dtype or None."""
    if precision is None or isinstance(precision, torch.dtype):
        return precision
    if precision == "auto":
        precision = "bf16" if torch.device(device).type == "cuda" else "fp32"
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp32":
        return None
    raise UserError(f"unknown sampler precision {precision!r}; known: {', '.join(PRECISIONS)}")
