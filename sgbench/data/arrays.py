"""In-memory (or memory-mapped) datasets of (x, label) pairs that the trainer indexes directly.

The trainer draws index batches itself (per-rank shards of a seeded permutation), so a dataset
only needs `__len__` and `get(indices) -> (x, y)`. Images stay uint8 until a task converts them
(diffusion tasks map to [-1, 1]; the classifier takes uint8 as is); latents are float.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class ArrayDataset:
    """x: [N, C, H, W] (uint8 images or float latents; numpy or memmap), y: [N] int64."""

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    space: str = "pixel"  # "pixel" (uint8 images, [-1, 1] for diffusion) or "latent" (float, as stored)
    name: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if len(self.x) != len(self.y):
            raise ValueError(f"{len(self.x)} inputs but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.x.shape[1:])

    def get(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.sort(np.asarray(indices, dtype=np.int64))  # sorted reads are faster on memmaps
        x = torch.from_numpy(np.ascontiguousarray(self.x[idx]))
        y = torch.from_numpy(np.ascontiguousarray(self.y[idx]).astype(np.int64))
        return x, y


def to_model_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [-1, 1]; float inputs (latents) pass through unchanged."""
    if x.dtype == torch.uint8:
        return x.float() / 127.5 - 1.0
    return x.float()
