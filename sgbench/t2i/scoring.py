"""T2I benchmarks as streaming accumulators for `sgbench run`: images arrive in batches with
their sample ids, `compute()` gives the trials.csv columns of the images seen so far.

Sample id s renders prompt s // k (k images per prompt) as image s % k. `BenchmarkPrompts`
holds the prompt set and the order samples are generated in: prompts round-robin over the
benchmark's groups (GenEval tags, HPDv3 categories), so that any prefix (a pruning fidelity,
or `metrics.n_samples` below the full set) covers every group in proportion.

- GenEval (`GenEvalAccumulator`): every image is scored as it arrives (detector + colour
  classifier -> GenEval's per-image record); with an image folder it is written in GenEval's
  layout (<prompt:05d>/metadata.jsonl, samples/<image:04d>.png) plus results.jsonl, so
  GenEval's own scripts can re-score it.
- HPSv3 (`HPSv3Accumulator`): images are written as PNGs; `compute()` sends the ones not yet
  scored to the HPSv3 worker process (one per run, see hpsv3_client) and aggregates.
With `bootstrap=B` both add each column's standard error (`<column>_se`), resampling whole
prompts (sgbench.metrics.bootstrap.group_means_se; weights of prompt p from (seed, p)).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from sgbench.errors import UserError
from sgbench.metrics import bootstrap as bs
from sgbench.metrics.registry import se_column


@dataclass
class BenchmarkPrompts:
    items: list[dict]  # GenEval metadata records or HPSv3 {'prompt', 'category'}
    images_per_prompt: int
    group_key: str  # 'tag' or 'category'

    @property
    def total(self) -> int:
        return len(self.items) * self.images_per_prompt

    @property
    def prompts(self) -> list[str]:
        return [it["prompt"] for it in self.items]

    def prompt_order(self) -> list[int]:
        """Prompt indices round-robin over groups (first-appearance order within each group)."""
        groups: dict = {}
        for i, it in enumerate(self.items):
            groups.setdefault(it.get(self.group_key, ""), []).append(i)
        queues = list(groups.values())
        order, depth = [], 0
        while len(order) < len(self.items):
            order.extend(q[depth] for q in queues if depth < len(q))
            depth += 1
        return order

    def sample_order(self) -> np.ndarray:
        """Sample ids in generation order: each prompt's k images together."""
        k = self.images_per_prompt
        return np.array([p * k + j for p in self.prompt_order() for j in range(k)], dtype=np.int64)

    def locate(self, sample_id: int) -> tuple[int, int]:
        return divmod(int(sample_id), self.images_per_prompt)


def _standard_errors(values, groups, prompt_ids, n_prompts: int, replicates: int, seed: int,
                     overall: str, column) -> dict:
    """`<column>_se` of the overall score and of each group's (`column(group)` names it)."""
    if not replicates or not values:
        return {}
    weights = bs.poisson_weights(seed, 0, n_prompts, replicates)
    per_group, overall_se = bs.group_means_se(values, groups, prompt_ids, weights)
    return {se_column(overall): overall_se, **{se_column(column(g)): v for g, v in per_group.items()}}


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class GenEvalAccumulator:
    """GenEval records of the images seen so far; `compute()` -> geneval, geneval_<tag>."""

    def __init__(self, prompts: BenchmarkPrompts, detector, color_classifier, options=None,
                 image_dir: Optional[Path] = None, bootstrap: int = 0, seed: int = 0):
        from sgbench.t2i.geneval import GenEvalOptions

        self.prompts, self.detector, self.colors = prompts, detector, color_classifier
        self.options = options or GenEvalOptions()
        self.image_dir = Path(image_dir) if image_dir is not None else None
        self.results: list[dict] = []
        self.prompt_ids: list[int] = []
        self.replicates, self.seed = int(bootstrap), int(seed)

    def update(self, images: np.ndarray, sample_ids: Sequence[int]) -> None:
        from PIL import Image

        from sgbench.t2i.geneval import score_detections, validate_metadata

        for img, sid in zip(images, sample_ids):
            p, j = self.prompts.locate(sid)
            meta = self.prompts.items[p]
            validate_metadata(meta, self.detector.classnames, f"prompt {p}")
            pil = Image.fromarray(np.asarray(img, np.uint8))
            name = f"{p:05d}/samples/{j:04d}.png"
            if self.image_dir is not None:
                folder = self.image_dir / f"{p:05d}"
                (folder / "samples").mkdir(parents=True, exist_ok=True)
                if j == 0 or not (folder / "metadata.jsonl").exists():
                    _atomic_write_text(folder / "metadata.jsonl", json.dumps(meta) + "\n")
                pil.save(folder / "samples" / f"{j:04d}.png")
                name = str(folder / "samples" / f"{j:04d}.png")
            bbox, segm = self.detector(pil)
            self.results.append(score_detections(
                bbox, segm, meta, lambda objs, cls, im=pil: self.colors(im, objs, cls), self.options,
                self.detector.classnames, filename=name))
            self.prompt_ids.append(p)

    def compute(self, reference=None) -> dict:
        from sgbench.metrics.benchmarks import GENEVAL, GENEVAL_TAG
        from sgbench.t2i.geneval import summarize, summary_columns, write_results_jsonl

        if self.image_dir is not None and self.results:
            write_results_jsonl(self.results, self.image_dir / "results.jsonl")
        cols = summary_columns(summarize(self.results))
        cols.update(_standard_errors([float(r["correct"]) for r in self.results], [r["tag"] for r in self.results],
                                     self.prompt_ids, len(self.prompts.items), self.replicates, self.seed,
                                     GENEVAL.key, GENEVAL_TAG.key))
        return cols


class HPSv3Accumulator:
    """Images written to `image_dir`; `compute()` scores the new ones with a running worker."""

    def __init__(self, prompts: BenchmarkPrompts, client, image_dir: Path, bootstrap: int = 0, seed: int = 0):
        self.prompts, self.client, self.image_dir = prompts, client, Path(image_dir)
        self.pending: list[tuple[Path, int]] = []
        self.records: list[dict] = []
        self.prompt_ids: list[int] = []
        self.replicates, self.seed = int(bootstrap), int(seed)

    def update(self, images: np.ndarray, sample_ids: Sequence[int]) -> None:
        from PIL import Image

        self.image_dir.mkdir(parents=True, exist_ok=True)
        for img, sid in zip(images, sample_ids):
            p, j = self.prompts.locate(sid)
            path = self.image_dir / f"{p:05d}_{j}.png"
            Image.fromarray(np.asarray(img, np.uint8)).save(path)
            self.pending.append((path, p))

    def compute(self, reference=None) -> dict:
        from sgbench.metrics.benchmarks import HPSV3
        from sgbench.t2i.hpsv3_client import aggregate, canonical_category, category_column, summary_columns

        if self.pending:
            items = [self.prompts.items[p] for _, p in self.pending]
            mu = self.client().score([str(path) for path, _ in self.pending], [it["prompt"] for it in items])
            self.records.extend({"image": path.name, "prompt": it["prompt"], "category": it["category"],
                                 HPSV3.key: float(m)} for (path, _), it, m in zip(self.pending, items, mu))
            self.prompt_ids.extend(p for _, p in self.pending)
            self.pending = []
            _atomic_write_text(self.image_dir / "scores.jsonl", "".join(json.dumps(r) + "\n" for r in self.records))
        if not self.records:
            raise UserError("no HPSv3 scores to aggregate")
        scores, cats = [r[HPSV3.key] for r in self.records], [r["category"] for r in self.records]
        cols = summary_columns(aggregate(scores, cats))
        cols.update(_standard_errors(scores, [canonical_category(c) for c in cats], self.prompt_ids,
                                     len(self.prompts.items), self.replicates, self.seed, HPSV3.key, category_column))
        return cols
