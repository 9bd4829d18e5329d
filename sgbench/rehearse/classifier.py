"""Classifier stand-in: a random sgbench `ShapeClassifier` (the `classifier` extractor's weights),
written by `sgbench.metrics.classifier.save_classifier`."""

from __future__ import annotations

from pathlib import Path


def write_classifier(path, seed: int = 0, image_size: int = 32, num_classes: int = 10) -> Path:
    import torch

    from sgbench.metrics.classifier import ClassifierConfig, ShapeClassifier, save_classifier

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ShapeClassifier(ClassifierConfig(num_classes=num_classes, image_size=image_size))
    save_classifier(model, path)
    return Path(path)
