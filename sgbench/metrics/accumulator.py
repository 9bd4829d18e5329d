"""Streaming image metrics: feed uint8 NHWC batches as they are sampled, then compute.

Memory: Gaussian statistics are float64 sums (2048^2 + 2023^2 doubles ~ 66 MB for Inception);
Inception Score keeps per-split sums; precision/recall needs every sample's pool feature, as
ADM keeps them too: 50k x 2048 float32 = 400 MB (pass `precision_recall=False` to skip).
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch

from sgbench.errors import UserError
from sgbench.metrics.frechet import frechet_distance
from sgbench.metrics.inception_score import ADM_SPLIT_SIZE, InceptionScoreStream
from sgbench.metrics.precision_recall import precision_recall
from sgbench.metrics.reference import ReferenceSet
from sgbench.metrics.stats import FeatureStats


def metric_names(extractor, precision_recall: bool = True, labels: bool = False) -> list[str]:
    """Column names the accumulator produces (trials.csv convention, docs/design.md)."""
    if extractor.metric_prefix == "":
        names = ["is", "fid", "sfid"]
        names += ["precision", "recall"] if precision_recall else []
    else:
        p = extractor.metric_prefix
        names = [f"fd_{p}"] + ([f"precision_{p}", f"recall_{p}"] if precision_recall else [])
    return names + (["class_acc"] if labels and "logits" in extractor.feature_dims and extractor.metric_prefix else [])


class ImageMetricAccumulator:
    """`update(images_uint8_nhwc, labels=None)` per batch, `compute(reference) -> dict` at the end."""

    def __init__(
        self,
        extractor,
        precision_recall: bool = True,
        k: int = 3,
        distance_dtype: str = "float16",
        is_split_size: int = ADM_SPLIT_SIZE,
    ):
        self.extractor = extractor
        self.do_pr = bool(precision_recall)
        self.k = k
        self.distance_dtype = distance_dtype
        dims = extractor.feature_dims
        self.stats = {kind: FeatureStats(dims[kind]) for kind in ("pool", "spatial") if kind in dims}
        self.inception = extractor.metric_prefix == ""
        self.is_stream = InceptionScoreStream(dims["logits"], is_split_size) if self.inception else None
        self._features: list[np.ndarray] = []
        self.correct = 0
        self.labelled = 0

    @property
    def count(self) -> int:
        return self.stats["pool"].n

    def update(self, images, labels=None) -> None:
        """images: uint8 [B, H, W, 3] (numpy or torch), labels: optional [B] class ids for class_acc."""
        if isinstance(images, np.ndarray):
            images = torch.from_numpy(np.ascontiguousarray(images))
        if not torch.is_tensor(images) or images.dtype != torch.uint8 or images.dim() != 4 or images.shape[-1] != 3:
            got = f"{images.dtype} {list(images.shape)}" if hasattr(images, "shape") else type(images).__name__
            raise UserError(f"metrics take uint8 images [B, H, W, 3], got {got}")
        if labels is not None:
            labels = torch.as_tensor(np.asarray(labels)).long().reshape(-1)
            if len(labels) != len(images):
                raise UserError(f"got {len(labels)} labels for {len(images)} images")
        bs = self.extractor.batch_size
        for i in range(0, len(images), bs):
            feats = self.extractor(images[i : i + bs].permute(0, 3, 1, 2))
            self.update_features(feats, None if labels is None else labels[i : i + bs])

    def update_features(self, feats: Dict[str, torch.Tensor], labels=None) -> None:
        """Add already-extracted features (the dict an extractor returns)."""
        for kind, s in self.stats.items():
            s.update(feats[kind].double().numpy())
        if self.do_pr:
            self._features.append(feats["pool"].float().numpy().copy())
        if self.is_stream is not None:
            self.is_stream.update(feats["logits"].numpy())
        if labels is not None and not self.inception and "logits" in feats:
            pred = feats["logits"].argmax(dim=1)
            self.correct += int((pred == torch.as_tensor(labels).long()).sum())
            self.labelled += len(pred)

    def compute(self, reference: Optional[ReferenceSet]) -> Dict[str, float]:
        if self.count < 2:
            raise UserError(f"metrics need at least 2 samples, got {self.count}")
        out: Dict[str, float] = {}
        p = self.extractor.metric_prefix
        if self.is_stream is not None:
            out["is"] = self.is_stream.compute()
        if reference is not None:
            for kind, s in self.stats.items():
                ref = reference.gaussians.get(kind)
                if ref is None:
                    continue
                if ref.mu.shape[0] != s.dim:
                    raise UserError(f"reference {kind} statistics have dim {ref.mu.shape[0]}, samples {s.dim} (other extractor?)")
                g = s.gaussian()
                name = ("fid" if kind == "pool" else "sfid") if self.inception else f"fd_{p}"
                if kind == "spatial" and not self.inception:
                    continue
                out[name] = frechet_distance(g.mu, g.sigma, ref.mu, ref.sigma)
            if self.do_pr and reference.features is not None:
                fake = np.concatenate(self._features)
                dev = self.extractor.device
                prec, rec = precision_recall(
                    reference.features, fake, k=self.k, dtype=self.distance_dtype, device=dev,
                    radii_real=reference.radii(self.k, self.distance_dtype, dev),
                )
                out["precision" if self.inception else f"precision_{p}"] = prec
                out["recall" if self.inception else f"recall_{p}"] = rec
        if self.labelled:
            out["class_acc"] = self.correct / self.labelled
        return out
