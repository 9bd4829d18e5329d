"""Image metrics (ADM protocol), feature extractors, FLOPs, throughput and LPIPS.

Public API (imported lazily so `import sgbench.metrics` stays cheap):
  frechet_distance, inception_score, InceptionScoreStream, precision_recall, manifold_radii,
  FeatureStats, GaussianStats, register_extractor, get_extractor, available_extractors,
  ImageMetricAccumulator, metric_names, ReferenceSet, load_reference,
  average_flops, FlopsReport, measure_throughput, ThroughputRecord,
  load_lpips, lpips_distance.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "frechet_distance": "frechet",
    "inception_score": "inception_score",
    "InceptionScoreStream": "inception_score",
    "precision_recall": "precision_recall",
    "manifold_radii": "precision_recall",
    "pairwise_sq_distances": "precision_recall",
    "FeatureStats": "stats",
    "GaussianStats": "stats",
    "gaussian_from_features": "stats",
    "register_extractor": "extractors",
    "get_extractor": "extractors",
    "available_extractors": "extractors",
    "ImageMetricAccumulator": "accumulator",
    "metric_names": "accumulator",
    "ReferenceSet": "reference",
    "load_reference": "reference",
    "average_flops": "flops",
    "FlopsReport": "flops",
    "measure_throughput": "throughput",
    "ThroughputRecord": "throughput",
    "load_lpips": "lpips_distance",
    "lpips_distance": "lpips_distance",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"sgbench.metrics.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'sgbench.metrics' has no attribute {name!r}")
