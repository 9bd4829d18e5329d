"""Streaming generation: batches of uint8 images for metrics, shards or a grid, never the disk.

    for indices, images, labels in generate(denoisers, rule, decoder, num_samples=1000, seed=0,
                                            batch_size=64, steps=40):
        stats.update(images)          # images: uint8 [B, H, W, C]; labels: int64 [B]

Sample i (a global index) always gets the same image for the same (seed, i), whatever the
batch size, the order of `indices` or the worker that runs it (see sampling.seeding). What it
is conditioned on comes from a condition source (sampling.conditions): class labels by a label
mode, or prompts through a text encoder.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Mapping, Optional, Union

import numpy as np
import torch

from sgbench.errors import UserError
from sgbench.guidance.rules import GuidanceRule
from sgbench.models.denoiser import Denoiser
from sgbench.sampling.conditions import ClassLabels, Prompts, as_condition_source
from sgbench.sampling.precision import autocast_dtype
from sgbench.sampling.seeding import initial_noise, make_generators
from sgbench.sampling.solvers import _as_denoisers, check_rule, sample


def generate(
    denoisers: Union[Denoiser, Mapping[str, Denoiser]],
    rule: GuidanceRule,
    decoder,
    num_samples: int,
    seed: int,
    batch_size: int,
    steps: int = 40,
    solver: str = "euler",
    conditions: Union[str, ClassLabels, Prompts] = "random",
    device="cpu",
    indices: Optional[Iterable[int]] = None,
    autocast: Union[str, None, torch.dtype] = "auto",
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (indices int64 [B], images uint8 [B, H, W, C], labels int64 [B]) per batch.

    indices: the global sample indices to produce, in batches of `batch_size` in the given
    order (a worker's slice); default range(num_samples). conditions: a condition source, or a
    label mode ('random', 'balanced') for class labels; labels are what it yields per sample
    (class ids, or prompt indices). `decoder` maps model-space tensors to uint8 NHWC
    (sampling.decode). autocast: 'auto' (bf16 on CUDA, none on CPU), 'fp32', 'bf16' or a dtype.
    """
    denoisers = _as_denoisers(denoisers, rule)
    main = denoisers["main"]
    if int(num_samples) < 0:
        raise UserError(f"num_samples must be >= 0, got {num_samples}")
    if int(batch_size) < 1:
        raise UserError(f"batch_size must be >= 1, got {batch_size}")
    check_rule(rule, steps, solver)
    if hasattr(decoder, "check"):  # any callable tensor -> uint8 NHWC works; sgbench's decoders check shapes
        decoder.check(main.latent_shape)
    device = torch.device(device)
    dtype = autocast_dtype(autocast, device)
    order = np.arange(int(num_samples), dtype=np.int64) if indices is None else np.asarray(list(indices), np.int64)
    if order.size and (order.min() < 0 or (indices is not None and order.max() >= num_samples)):
        raise UserError(f"sample indices must lie in [0, {num_samples})")
    source = as_condition_source(conditions)
    labels = source.labels(order, seed, main)
    # validated above, at call time; the batches are produced lazily
    return _batches(denoisers, rule, decoder, source, seed, int(batch_size), steps, solver, device, order, labels, dtype)


def _batches(denoisers, rule, decoder, source, seed, batch_size, steps, solver, device, order, labels_all, dtype):
    main = denoisers["main"]
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        labels = labels_all[start : start + batch_size]
        gens = make_generators(seed, idx, device)
        noise = initial_noise(main.latent_shape, gens)
        cond = source.condition(labels, device)
        x = sample(denoisers, rule, noise, cond, steps=steps, solver=solver, generators=gens, autocast=dtype)
        yield idx, decoder(x), labels
