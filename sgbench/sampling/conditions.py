"""Condition sources: what sample i is conditioned on, for `sampling.generate`.

A source turns global sample indices into
- `labels(indices, seed, denoiser)`: int64 [N], what `generate` yields beside each image
  (a class id, or the index of the sample's prompt), computed and checked before sampling;
- `condition(labels, device)`: the model's condition for one batch of those labels.
`ClassLabels` draws class ids by a label mode (sampling.seeding.labels_for); `Prompts` encodes
prompts with a frozen text encoder (text-to-image models).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from sgbench.errors import UserError
from sgbench.sampling.seeding import LABEL_MODES, labels_for


@dataclass(frozen=True)
class ClassLabels:
    """Class ids: `mode` 'random' (uniform from (seed, i), as ADM/DiT/SiT) or 'balanced' (i % classes)."""

    mode: str = "random"

    def __post_init__(self):
        if self.mode not in LABEL_MODES:
            raise UserError(f"unknown label mode {self.mode!r}; known: {', '.join(LABEL_MODES)}")

    def labels(self, indices: np.ndarray, seed: int, denoiser) -> np.ndarray:
        if denoiser.num_classes < 1:
            raise UserError("this model is not class-conditional (a text-to-image model?): sample it with prompts")
        return labels_for(indices, denoiser.num_classes, seed, self.mode)

    def condition(self, labels: np.ndarray, device) -> torch.Tensor:
        return torch.as_tensor(labels, dtype=torch.long, device=device)


@dataclass(frozen=True)
class Prompts:
    """Sample i renders prompts[i // images_per_prompt] (GenEval/HPSv3: 4 images per prompt),
    encoded by `encoder` (`encode(list[str]) -> TextCondition`) one batch at a time."""

    prompts: Sequence[str]
    encoder: Any
    images_per_prompt: int = 1

    def __post_init__(self):
        if self.images_per_prompt < 1:
            raise UserError(f"images_per_prompt must be >= 1, got {self.images_per_prompt}")
        if not self.prompts:
            raise UserError("no prompts to sample")

    @property
    def num_samples(self) -> int:
        return len(self.prompts) * self.images_per_prompt

    def labels(self, indices: np.ndarray, seed: int, denoiser) -> np.ndarray:
        if denoiser.num_classes > 0:
            raise UserError("this model is class-conditional: sample it with class labels, not prompts")
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and idx.max() >= self.num_samples:
            raise UserError(f"sample index {int(idx.max())} is beyond the {len(self.prompts)} prompts x "
                            f"{self.images_per_prompt} images")
        return idx // self.images_per_prompt

    def condition(self, labels: np.ndarray, device):
        return self.encoder.encode([self.prompts[int(j)] for j in labels]).to(device)


def as_condition_source(conditions) -> "ClassLabels | Prompts":
    """A source, or a label mode name for class labels."""
    return ClassLabels(conditions) if isinstance(conditions, str) else conditions
