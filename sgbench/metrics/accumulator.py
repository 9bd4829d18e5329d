"""Streaming image metrics: feed uint8 NHWC batches as they are sampled, then compute.

Columns are named by the metric registry (`registry.image_columns(extractor.name)`): ADM's
fid, sfid, is, precision, recall for Inception; fd_X, precision_X, recall_X, class_acc for
another extractor X. With `bootstrap=B` every metric also gets its standard error `<key>_se`
(sgbench.metrics.bootstrap: Poisson weights of sample i drawn from (seed, i)).

Memory: Gaussian statistics are float64 sums (2048^2 + 2023^2 doubles ~ 66 MB for Inception);
Inception Score keeps per-split sums (and B weighted copies with the bootstrap); precision/recall
and the FD standard errors need every sample's pool feature, as ADM keeps them too: 50k x 2048
float32 = 400 MB (pass `precision_recall=False` and `bootstrap=0` to skip); the sFID standard
error also keeps the 2023-d spatial features (another 400 MB at 50k).
"""

from __future__ import annotations

from typing import Dict, Iterable, Optional

import numpy as np
import torch

from sgbench.errors import UserError
from sgbench.metrics import bootstrap as bs
from sgbench.metrics.frechet import frechet_distance_and_root
from sgbench.metrics.isc import ADM_SPLIT_SIZE, InceptionScoreStream
from sgbench.metrics.prc import MAX_COVER, NEIGHBOURS, precision_recall_coverage
from sgbench.metrics.reference import ReferenceSet
from sgbench.metrics.registry import image_columns, se_column
from sgbench.metrics.stats import FeatureStats


class ImageMetricAccumulator:
    """`update(images_uint8_nhwc, labels=None)` per batch, `compute(reference) -> dict` at the end.

    keys: the columns wanted (default: all the extractor provides); the others are not computed.
    bootstrap: replicates for the standard errors (0: none); seed: the stream's sample seed, so
    the weights of sample i come from (seed, i), position i counted in arrival order.
    """

    def __init__(
        self,
        extractor,
        precision_recall: bool = True,
        k: int = 3,
        distance_dtype: str = "float16",
        is_split_size: int = ADM_SPLIT_SIZE,
        keys: Optional[Iterable[str]] = None,
        bootstrap: int = 0,
        seed: int = 0,
    ):
        self.extractor = extractor
        self.columns = cols = image_columns(extractor.name)
        wanted = set(cols.keys() if keys is None else keys)
        self.do_pr = bool(precision_recall) and any(c in wanted for c in cols.pr)
        self.k = k
        self.distance_dtype = distance_dtype
        self.replicates = int(bootstrap)
        self.seed = int(seed)
        dims = extractor.feature_dims
        fd_keys = {"pool": cols.fd, "spatial": cols.sfd}
        self.fd_keys = {kind: key for kind, key in fd_keys.items() if key in wanted and kind in dims}
        self.stats = {kind: FeatureStats(dims[kind]) for kind in ("pool", "spatial") if kind in dims}
        # features kept in memory: pool for precision/recall; each FD's for its standard error
        keep = {"pool"} if self.do_pr else set()
        keep |= set(self.fd_keys) if self.replicates else set()
        self._features: Dict[str, list] = {kind: [] for kind in keep}
        want_is = cols.inception_score in wanted and "logits" in dims
        self.is_stream = InceptionScoreStream(dims["logits"], is_split_size, self.replicates) if want_is else None
        self.want_acc = cols.class_acc in wanted and "logits" in dims
        self._correct: list[np.ndarray] = []
        self._correct_pos: list[np.ndarray] = []

    @property
    def count(self) -> int:
        return self.stats["pool"].n

    @property
    def labelled(self) -> int:
        return sum(len(c) for c in self._correct)

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
        step = self.extractor.batch_size
        for i in range(0, len(images), step):
            feats = self.extractor(images[i : i + step].permute(0, 3, 1, 2))
            self.update_features(feats, None if labels is None else labels[i : i + step])

    def update_features(self, feats: Dict[str, torch.Tensor], labels=None) -> None:
        """Add already-extracted features (the dict an extractor returns)."""
        start = self.count
        n = len(feats["pool"])
        for kind, s in self.stats.items():
            s.update(feats[kind].double().numpy())
        for kind, kept in self._features.items():
            kept.append(feats[kind].float().numpy().copy())
        if self.is_stream is not None:
            weights = bs.poisson_weights(self.seed, start, start + n, self.replicates) if self.replicates else None
            self.is_stream.update(feats["logits"].numpy(), weights)
        if labels is not None and self.want_acc:
            pred = feats["logits"].argmax(dim=1)
            self._correct.append((pred == torch.as_tensor(labels).long()).numpy())
            self._correct_pos.append(np.arange(start, start + n))

    def _features_of(self, kind: str) -> np.ndarray:
        return np.concatenate(self._features[kind])

    def compute(self, reference: Optional[ReferenceSet]) -> Dict[str, float]:
        """The metric columns, then (with the bootstrap) their `_se` columns."""
        if self.count < 2:
            raise UserError(f"metrics need at least 2 samples, got {self.count}")
        out: Dict[str, float] = {}
        se: Dict[str, float] = {}
        weights = bs.poisson_weights(self.seed, 0, self.count, self.replicates) if self.replicates else None
        if self.is_stream is not None:
            key = self.columns.inception_score
            out[key] = self.is_stream.compute()
            if weights is not None:
                se[key] = bs.replicate_se(self.is_stream.replicate_scores())
        if reference is not None:
            for kind, key in self.fd_keys.items():
                ref = reference.gaussians.get(kind)
                s = self.stats[kind]
                if ref is None:
                    continue
                if ref.mu.shape[0] != s.dim:
                    raise UserError(f"reference {kind} statistics have dim {ref.mu.shape[0]}, samples {s.dim} (other extractor?)")
                g = s.gaussian()
                out[key], root = frechet_distance_and_root(g.mu, g.sigma, ref.mu, ref.sigma)
                if weights is not None:
                    se[key] = bs.frechet_distance_se(self._features_of(kind), ref.mu, ref.sigma, g.sigma, root,
                                                     lambda kind=kind: reference.sqrt_sigma(kind))
            if self.do_pr and reference.features is not None:
                dev = self.extractor.device
                cov = precision_recall_coverage(
                    reference.features, self._features_of("pool"), k=self.k, dtype=self.distance_dtype, device=dev,
                    radii_real=reference.radii(self.k, self.distance_dtype, dev),
                    max_cover=MAX_COVER if weights is not None else 0, neighbours=NEIGHBOURS if weights is not None else 0,
                )
                c = self.columns
                out[c.precision], out[c.recall] = cov.precision, cov.recall
                if weights is not None:
                    se[c.precision] = bs.mean_se(cov.fake_covered, weights)
                    se[c.recall] = bs.recall_se(cov, weights)
        if self._correct:
            correct = np.concatenate(self._correct)
            out[self.columns.class_acc] = float(correct.mean())
            if weights is not None:
                se[self.columns.class_acc] = bs.mean_se(correct, weights[:, np.concatenate(self._correct_pos)])
        return {**out, **{se_column(k): v for k, v in se.items()}}
