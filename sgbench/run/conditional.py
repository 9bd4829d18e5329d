"""Conditional predictions for `lpips_cond` (paper Fig. 7 left), generated once and reused.

The conditional prediction of sample i of seed k is the unguided sample (method none, gamma 0)
from the same noise and label, i.e. from (k, i) under the cell's main network. It is generated
once per (main checkpoint, seed, block of samples) and kept as
`results/<run>/conditional/<main>/seed<k>/<block>.npy` (uint8 NHWC), so every trial of the run,
a resumed run and every local worker reuse the same images: a block is written atomically under
an exclusive lock (`<block>.lock`), and a worker that finds it written reads it instead of
generating its own. Blocks are whole sampler batches (`block_size`), so a trial whose batches
start at block boundaries draws its unguided samples in the same batches as the cache did.

A trial's images reach the accumulator in stream order, sample 0 first (the Runner streams each
trial from sample 0 on), so arrival position i is sample i: the pairing the bootstrap weights use
too (`sgbench.metrics.bootstrap`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional

import numpy as np

from sgbench.errors import UserError
from sgbench.guidance.vocabulary import GuidanceConfig

DIRECTORY = "conditional"
TARGET_BLOCK = 256  # samples per block, rounded up to whole sampler batches
MEMORY_BYTES = 256 << 20  # blocks kept in memory besides the files
CONDITIONAL = GuidanceConfig("none")  # the conditional prediction: unguided, dense


def block_size(batch_size: int, needed: int) -> int:
    """Samples per block: whole batches, about TARGET_BLOCK samples (fewer when fewer are needed)."""
    return batch_size * max(1, math.ceil(min(TARGET_BLOCK, needed) / batch_size))


def main_tag(cell) -> str:
    """The directory of a cell's main network: 'main', or 'step<N>' when the main network is swept."""
    return f"step{cell.main.step}" if cell.swept[0] else "main"


class ConditionalPredictions:
    """Conditional predictions of the stages' current cell, from the run directory or generated."""

    def __init__(self, stages):
        from sgbench.metrics.perceptual import load_lpips

        s = stages.suite
        self.stages = stages
        self.config = s.metrics.lpips
        self.limit = min(self.config.n_samples or s.metrics.n_samples, s.metrics.n_samples)
        self.block = block_size(s.sampler.batch_size, self.limit)
        self.model = load_lpips(stages.loaded.files.lpips_weights, self.config.net, stages.device)
        self._memory: dict[tuple, np.ndarray] = {}

    def paired(self, image_acc, seed: int) -> "PairedAccumulator":
        from sgbench.metrics.perceptual import LpipsAccumulator
        from sgbench.metrics.registry import LPIPS_COND

        m = self.stages.suite.metrics
        lp = LpipsAccumulator(self.model, LPIPS_COND.key, m.bootstrap, seed, m.batch_size)
        return PairedAccumulator(image_acc, lp, self, seed)

    # ---- the images ---------------------------------------------------------------------
    def images(self, seed: int, start: int, stop: int) -> np.ndarray:
        """uint8 [stop - start, H, W, 3]: the conditional predictions of samples start..stop-1."""
        if not 0 <= start <= stop <= self.limit:
            raise ValueError(f"conditional predictions cover samples 0..{self.limit - 1}, not {start}..{stop - 1}")
        parts = []
        for c in range(start // self.block, (stop - 1) // self.block + 1):
            lo = c * self.block
            blk = self._block(seed, c)
            parts.append(blk[max(start - lo, 0): min(stop - lo, len(blk))])
        return np.concatenate(parts) if parts else np.zeros((0,), np.uint8)

    def _span(self, c: int) -> tuple[int, int]:
        return c * self.block, min((c + 1) * self.block, self.limit)

    def _block(self, seed: int, c: int) -> np.ndarray:
        tag = main_tag(self.stages.cell)
        key = (tag, seed, c)
        if key in self._memory:
            return self._memory[key]
        root = self.stages.run_dir
        if root is None:  # no run directory (stages used on their own): memory only
            blk = self._generate(seed, c)
        else:
            blk = self._from_disk(Path(root) / DIRECTORY / tag / f"seed{seed}", seed, c)
        self._remember(key, blk)
        return blk

    def _from_disk(self, folder: Path, seed: int, c: int) -> np.ndarray:
        import fcntl

        path = folder / f"{c:06d}.npy"
        blk = self._read(path, c)
        if blk is not None:
            return blk
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{c:06d}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one writer per block; the others then read its images
            try:
                blk = self._read(path, c)
                if blk is None:
                    blk = self._generate(seed, c)
                    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                    with open(tmp, "wb") as f:
                        np.save(f, blk, allow_pickle=False)
                    os.replace(tmp, path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return blk

    def _read(self, path: Path, c: int) -> Optional[np.ndarray]:
        if not path.is_file():
            return None
        lo, hi = self._span(c)
        try:
            blk = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read the cached conditional predictions {path}: {e}; remove the file and "
                            "--resume (it is generated again)") from None
        if blk.dtype != np.uint8 or blk.ndim != 4 or len(blk) != hi - lo:
            raise UserError(f"{path} holds {blk.dtype} {list(blk.shape)}, not the {hi - lo} conditional predictions "
                            f"of samples {lo}..{hi - 1}: remove the file and --resume (it is generated again)")
        return blk

    def _generate(self, seed: int, c: int) -> np.ndarray:
        lo, hi = self._span(c)
        batches = [images for _, images, _ in self.stages.stream(CONDITIONAL, seed, lo, hi)]
        return np.ascontiguousarray(np.concatenate(batches)).astype(np.uint8, copy=False)

    def _remember(self, key: tuple, blk: np.ndarray) -> None:
        self._memory[key] = blk
        while sum(b.nbytes for b in self._memory.values()) > MEMORY_BYTES and len(self._memory) > 1:
            self._memory.pop(next(iter(self._memory)))


class PairedAccumulator:
    """The stages' image accumulator plus LPIPS of the first `limit` samples to their conditional
    predictions; `compute(reference)` returns both's columns."""

    def __init__(self, image_acc, lpips_acc, predictions: ConditionalPredictions, seed: int):
        self.image_acc, self.lpips_acc = image_acc, lpips_acc
        self.predictions, self.seed = predictions, seed
        self.count = 0  # samples seen: the next sample's index

    def update(self, images, labels=None) -> None:
        self.image_acc.update(images, labels)
        start, n = self.count, len(images)
        self.count += n
        k = max(0, min(n, self.predictions.limit - start))
        if k:
            refs = self.predictions.images(self.seed, start, start + k)
            self.lpips_acc.update(np.asarray(images[:k]), refs, np.arange(start, start + k))

    def compute(self, reference) -> dict:
        return {**self.image_acc.compute(reference), **self.lpips_acc.compute()}
