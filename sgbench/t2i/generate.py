"""Sampling images from a T2I Denoiser for a list of prompts, with any guidance rule.

Sample i (global index over prompts x images_per_prompt) draws its noise and token selections
from `sample_seed(seed, i)`, as everywhere in sgbench, so results do not depend on batch size.
Prompts are encoded once per batch by the frozen text encoder.
"""

from __future__ import annotations

from typing import Iterator, Optional, Sequence

import numpy as np
import torch

from sgbench.sampling.seeding import initial_noise, make_generators


def generate_t2i(denoiser, encoder, prompts: Sequence[str], rule, steps: int = 50, seed: int = 0,
                 batch_size: int = 16, solver: str = "euler", autocast: Optional[torch.dtype] = None,
                 decoder=None, device="cpu", indices: Optional[Sequence[int]] = None
                 ) -> Iterator[tuple[list[int], np.ndarray]]:
    """Yield (indices, uint8 NHWC images) batches; index i renders prompts[i].

    indices: the samples to draw, in this order (default: all of them).
    decoder: None for pixel-space models ([-1, 1] -> uint8), else a callable
    latents -> uint8 NHWC (e.g. sgbench.sampling.decode.VAEDecoder).
    """
    from sgbench.sampling.solvers import sample
    from sgbench.t2i.model import pixels_to_uint8

    order = list(range(len(prompts))) if indices is None else [int(i) for i in indices]
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        gens = make_generators(seed, idx, device=device)
        noise = initial_noise(denoiser.latent_shape, gens).to(device)
        cond = encoder.encode([prompts[i] for i in idx]).to(device)
        x = sample(denoiser, rule, noise, cond, steps=steps, solver=solver, generators=gens, autocast=autocast)
        imgs = pixels_to_uint8(x) if decoder is None else decoder(x)
        yield idx, imgs
