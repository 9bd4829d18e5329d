"""Metrics on the domain-classifier extractor: FD_<name>, precision/recall_<name>, class_acc."""

import json

import numpy as np
import pytest
import torch

from sgbench.cli import main as cli_main
from sgbench.errors import UserError
from sgbench.metrics.accumulator import ImageMetricAccumulator
from sgbench.metrics.extractors import available_extractors, get_extractor, register_extractor
from sgbench.metrics.frechet import frechet_distance
from sgbench.metrics.classifier import ClassifierConfig, ShapeClassifier, save_classifier
from sgbench.metrics.prc import precision_recall
from sgbench.metrics.reference import load_reference
from sgbench.metrics.registry import provider_metrics
from sgbench.metrics.stats import gaussian_from_features


@pytest.fixture
def setup(tmp_path):
    torch.manual_seed(0)
    model = ShapeClassifier(ClassifierConfig(num_classes=3, image_size=16, width=4, feature_dim=6)).eval()
    save_classifier(model, tmp_path / "clf.safetensors")
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, size=(12, 16, 16, 3), dtype=np.uint8)
    samples = rng.integers(0, 200, size=(10, 16, 16, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, size=10)
    np.savez(tmp_path / "ref.npz", arr_0=ref)
    np.savez(tmp_path / "samples.npz", arr_0=samples, arr_1=labels)
    return tmp_path, model, ref, samples, labels


def test_classifier_metrics_are_named_by_extractor(setup):
    d, model, ref, samples, labels = setup
    ex = get_extractor("classifier", weights_path=d / "clf.safetensors")
    acc = ImageMetricAccumulator(ex, distance_dtype="float32")
    acc.update(samples[:4], labels[:4])
    acc.update(samples[4:], labels[4:])
    got = acc.compute(load_reference(d / "ref.npz", ex, cache_dir=d / "cache", log=lambda m: None))
    assert list(got) == list(provider_metrics(ex.name)) == ["fd_classifier", "precision_classifier", "recall_classifier", "class_acc"]
    with torch.no_grad():
        f_ref = model.features(torch.from_numpy(ref).permute(0, 3, 1, 2)).double().numpy()
        f_smp = model.features(torch.from_numpy(samples).permute(0, 3, 1, 2))
        acc_expected = float((model.logits_from_features(f_smp).argmax(1).numpy() == labels).mean())
    f_smp = f_smp.double().numpy()
    r, s = gaussian_from_features(f_ref), gaussian_from_features(f_smp)
    assert got["fd_classifier"] == pytest.approx(frechet_distance(s.mu, s.sigma, r.mu, r.sigma), rel=1e-6)
    assert (got["precision_classifier"], got["recall_classifier"]) == precision_recall(f_ref, f_smp, dtype="float32")
    assert got["class_acc"] == pytest.approx(acc_expected)


def test_reference_from_image_folder_equals_npz(setup):
    from PIL import Image

    d, _, ref, _, _ = setup
    (d / "folder").mkdir()
    for i, img in enumerate(ref):
        Image.fromarray(img).save(d / "folder" / f"{i:03d}.png")
    ex = get_extractor("classifier", weights_path=d / "clf.safetensors")
    a = load_reference(d / "folder", ex, use_cache=False, log=lambda m: None)
    b = load_reference(d / "ref.npz", ex, use_cache=False, log=lambda m: None)
    np.testing.assert_allclose(a.gaussians["pool"].sigma, b.gaussians["pool"].sigma, rtol=1e-6)
    np.testing.assert_array_equal(a.features, b.features)


def test_cli_evaluate_classifier_json(setup, capsys):
    d = setup[0]
    rc = cli_main(["evaluate", str(d / "samples.npz"), "--ref", str(d / "ref.npz"), "--extractor", "classifier",
                   "--classifier-weights", str(d / "clf.safetensors"), "--cache-dir", str(d / "cache"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and "fid" not in out and {"fd_classifier", "class_acc"} <= set(out)


def test_registry():
    assert {"inception", "classifier"} <= set(available_extractors())
    with pytest.raises(UserError, match="unknown feature extractor"):
        get_extractor("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_extractor("inception")(object)
