"""Throughput (images/s) of a full sampling run at a fixed batch size.

`sample_batch(batch_size)` must run the whole sampler (all steps, all guidance branches) for one
batch. GPU: bf16 autocast, timed with CUDA events after warm-up. CPU: wall clock (fp32 unless
`dtype='bfloat16'`, which uses CPU autocast).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import torch

from sgbench.errors import UserError


@dataclass
class ThroughputRecord:
    device: str
    dtype: str
    batch_size: int
    steps: int
    images_per_s: float
    seconds: float  # timed seconds over all repeats
    repeats: int
    warmup: int

    def to_dict(self) -> dict:
        return asdict(self)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return device.type


def measure_throughput(
    sample_batch: Callable[[int], object],
    batch_size: int,
    steps: int,
    device=None,
    dtype: Optional[str] = None,
    warmup: int = 1,
    repeats: int = 3,
) -> ThroughputRecord:
    """Images per second of `sample_batch(batch_size)` averaged over `repeats` timed calls."""
    if batch_size < 1 or repeats < 1 or warmup < 0:
        raise UserError("throughput needs batch_size >= 1, repeats >= 1 and warmup >= 0")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = dtype or ("bfloat16" if device.type == "cuda" else "float32")
    if dtype not in ("float32", "bfloat16", "float16"):
        raise UserError(f"throughput dtype must be float32, bfloat16 or float16, got {dtype!r}")
    autocast = (
        torch.autocast(device.type, dtype=getattr(torch, dtype)) if dtype != "float32" else contextlib.nullcontext()
    )
    with torch.inference_mode(), autocast:
        for _ in range(warmup):
            sample_batch(batch_size)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(repeats):
                sample_batch(batch_size)
            end.record()
            torch.cuda.synchronize(device)
            seconds = start.elapsed_time(end) / 1000.0
        else:
            t0 = time.perf_counter()
            for _ in range(repeats):
                sample_batch(batch_size)
            seconds = time.perf_counter() - t0
    return ThroughputRecord(
        device=_device_name(device), dtype=dtype, batch_size=batch_size, steps=steps,
        images_per_s=batch_size * repeats / seconds if seconds > 0 else float("inf"),
        seconds=seconds, repeats=repeats, warmup=warmup,
    )
