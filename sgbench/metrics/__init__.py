"""Image metrics (ADM protocol), their registry, feature extractors, FLOPs, throughput and LPIPS.

Public API (imported lazily so `import sgbench.metrics` stays cheap; no submodule shares a name
with a function, so `from sgbench.metrics import inception_score` is the function):
  frechet_distance, inception_score, InceptionScoreStream, precision_recall, manifold_radii,
  FeatureStats, GaussianStats, register_extractor, get_extractor, available_extractors,
  ImageMetricAccumulator, ReferenceSet, load_reference, register_metric, register_family,
  image_columns, provider_metrics, frechet_distance_se, poisson_weights,
  average_flops, FlopsReport, measure_throughput, ThroughputRecord,
  load_lpips, lpips_distance.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "frechet_distance": "frechet",
    "inception_score": "isc",
    "InceptionScoreStream": "isc",
    "precision_recall": "prc",
    "precision_recall_coverage": "prc",
    "manifold_radii": "prc",
    "pairwise_sq_distances": "prc",
    "FeatureStats": "stats",
    "GaussianStats": "stats",
    "gaussian_from_features": "stats",
    "register_extractor": "extractors",
    "get_extractor": "extractors",
    "available_extractors": "extractors",
    "ImageMetricAccumulator": "accumulator",
    "register_metric": "registry",
    "register_family": "registry",
    "image_columns": "registry",
    "provider_metrics": "registry",
    "frechet_distance_se": "bootstrap",
    "poisson_weights": "bootstrap",
    "ReferenceSet": "reference",
    "load_reference": "reference",
    "average_flops": "flops",
    "FlopsReport": "flops",
    "measure_throughput": "throughput",
    "ThroughputRecord": "throughput",
    "load_lpips": "perceptual",
    "lpips_distance": "perceptual",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"sgbench.metrics.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'sgbench.metrics' has no attribute {name!r}")
