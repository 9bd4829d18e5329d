"""Per-sample randomness: everything sample i draws comes from (seed, i).

Sample i owns one torch.Generator seeded with `sample_seed(seed, i)`. From it, in this order,
it draws its initial noise, its ICG class (icg only) and then, call by call, its token
selections. No draw depends on which other samples share its batch or worker, so results do
not depend on batch size, order or the number of workers.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch

from sgbench.errors import UserError

LABEL_MODES = ("random", "balanced")  # the first is the default

_NOISE_STREAM, _LABEL_STREAM = 0, 1  # independent SeedSequence streams per (seed, i)


def sample_seed(seed: int, index: int, stream: int = _NOISE_STREAM) -> int:
    """A well-mixed 63-bit seed for sample `index` (SeedSequence, so (0, 1) and (1, 0) differ)."""
    words = np.random.SeedSequence([int(seed), int(index), int(stream)]).generate_state(2, dtype=np.uint32)
    return int((int(words[0]) << 32 | int(words[1])) & 0x7FFF_FFFF_FFFF_FFFF)


def make_generators(seed: int, indices: Iterable[int], device="cpu") -> list[torch.Generator]:
    device = torch.device(device)
    return [torch.Generator(device=device).manual_seed(sample_seed(seed, int(i))) for i in indices]


def initial_noise(shape: Sequence[int], generators: Sequence[torch.Generator]) -> torch.Tensor:
    """[len(generators), *shape] standard normal noise, sample i from generators[i]."""
    return torch.stack([torch.randn(tuple(shape), generator=g, device=g.device) for g in generators])


def labels_for(indices: Iterable[int], num_classes: int, seed: int = 0, mode: str = "random") -> np.ndarray:
    """Class label of each global sample index (int64).

    random (default): uniform over the classes, drawn from (seed, index) on a stream separate
    from the noise, as ADM, DiT and SiT draw their sampling labels (`randint`) but independent
    of batch size and of how the stream is split. balanced: index % num_classes (each class
    equally often over multiples of num_classes; independent of seed). Balanced labels make
    every Inception Score split class-uniform and inflate IS, so they are not the ADM protocol.
    """
    idx = np.asarray(list(indices), dtype=np.int64)
    if int(num_classes) < 1:
        raise UserError(f"num_classes must be >= 1, got {num_classes}")
    if mode == "balanced":
        return idx % int(num_classes)
    if mode == "random":
        return np.array(
            [np.random.default_rng(sample_seed(seed, int(i), _LABEL_STREAM)).integers(num_classes) for i in idx],
            dtype=np.int64,
        )
    raise UserError(f"unknown label mode {mode!r}; known: {', '.join(LABEL_MODES)}")
