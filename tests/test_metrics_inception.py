"""The image path through torch-fidelity's Inception with a locally saved random-weights file."""

import json
from unittest import mock

import numpy as np
import pytest
import torch

from sgbench.cli import main as cli_main
from sgbench.errors import UserError
from sgbench.metrics.accumulator import ImageMetricAccumulator
from sgbench.metrics.extractors import get_extractor, spatial_features_adm
from sgbench.metrics.frechet import frechet_distance
from sgbench.metrics.isc import inception_score
from sgbench.metrics.prc import precision_recall
from sgbench.metrics.reference import load_reference
from sgbench.metrics.stats import gaussian_from_features

WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    """torch-fidelity's InceptionV3 with random weights (He init keeps activations O(1)): the
    rehearsal's stand-in for the weights file."""
    from sgbench.rehearse.inception import write_inception_weights

    return write_inception_weights(tmp_path_factory.mktemp("inception") / WEIGHTS_NAME, seed=0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(0)
    d = tmp_path_factory.mktemp("data")
    ref = rng.integers(0, 256, size=(5, 24, 24, 3), dtype=np.uint8)
    samples = np.clip(rng.integers(0, 256, size=(5, 24, 24, 3)) + 60, 0, 255).astype(np.uint8)
    np.savez(d / "ref.npz", arr_0=ref)
    np.savez(d / "samples.npz", arr_0=samples, arr_1=np.arange(5))
    return d, ref, samples


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


class _RecordingFrechet:
    """Stands in for scipy's 2048-d sqrtm (tens of seconds on a busy 2-core box); records its inputs."""

    def __init__(self):
        self.calls = []

    def __call__(self, mu1, sigma1, mu2, sigma2):
        self.calls.append((mu1, sigma1, mu2, sigma2))
        return float(len(self.calls)), None  # (distance, root) as frechet_distance_and_root


@pytest.fixture(scope="module")
def extractor(inception_weights):
    return get_extractor("inception", weights_path=inception_weights, batch_size=4)


@pytest.fixture(scope="module")
def features(extractor, data):
    _, ref, samples = data
    to = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2)  # noqa: E731
    return extractor(to(ref)), extractor(to(samples))


def test_spatial_layout_is_h_w_c():
    b, c, h, w = 2, 192, 17, 17
    x = torch.arange(b * c * h * w, dtype=torch.float32).reshape(b, c, h, w)
    out = spatial_features_adm(x)
    assert out.shape == (2, 2023)
    # flat index (i*17 + j)*7 + ch holds x[:, ch, i, j] (TF NHWC map[..., :7] flattened).
    for i, j, ch in [(0, 0, 0), (0, 0, 6), (0, 1, 0), (3, 5, 2), (16, 16, 6)]:
        assert torch.equal(out[:, (i * 17 + j) * 7 + ch], x[:, ch, i, j])


def test_inception_features(features, extractor):
    ref_f, _ = features
    assert ref_f["pool"].shape == (5, 2048) and ref_f["spatial"].shape == (5, 2023) and ref_f["logits"].shape == (5, 1008)
    assert all(torch.isfinite(v).all() for v in ref_f.values())
    # sFID features come after BN + ReLU.
    assert ref_f["spatial"].min() >= 0 and ref_f["spatial"].max() > 0
    # IS uses ADM's unbiased logits: pool_3 @ W (no bias).
    w = extractor.net.fc.weight
    torch.testing.assert_close(ref_f["logits"], ref_f["pool"] @ w.T, rtol=1e-4, atol=1e-4)


def test_accumulator_matches_batch_math(extractor, data, features, cache_dir, monkeypatch):
    d, _, samples = data
    ref_f, smp_f = features
    fd = _RecordingFrechet()
    monkeypatch.setattr("sgbench.metrics.accumulator.frechet_distance_and_root", fd)
    acc = ImageMetricAccumulator(extractor, distance_dtype="float32")
    acc.update(samples[:3])
    acc.update(samples[3:])
    reference = load_reference(d / "ref.npz", extractor, cache_dir=cache_dir, log=lambda m: None)
    got = acc.compute(reference)
    assert list(got) == ["is", "fid", "sfid", "precision", "recall"]
    # FID / sFID get (sample stats, reference stats) equal to ADM's np.mean / np.cov of the features.
    for call, kind in zip(fd.calls, ("pool", "spatial")):
        s, r = gaussian_from_features(smp_f[kind].double().numpy()), gaussian_from_features(ref_f[kind].double().numpy())
        for a, b in zip(call, (s.mu, s.sigma, r.mu, r.sigma)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert got["is"] == pytest.approx(inception_score(smp_f["logits"].numpy()), rel=1e-9)
    pr = precision_recall(ref_f["pool"].numpy(), smp_f["pool"].numpy(), dtype="float32")
    assert (got["precision"], got["recall"]) == pr


def _evaluate_args(weights, d, cache_dir):
    return ["evaluate", str(d / "samples.npz"), "--ref", str(d / "ref.npz"), "--inception-weights", str(weights),
            "--cache-dir", str(cache_dir), "--batch-size", "8"]


def test_cli_evaluate_prints_adm_lines_and_reads_cached_reference(inception_weights, data, cache_dir, capsys, monkeypatch):
    d, _, _ = data
    monkeypatch.setattr("sgbench.metrics.accumulator.frechet_distance_and_root", _RecordingFrechet())
    args = _evaluate_args(inception_weights, d, cache_dir)
    assert cli_main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["Inception Score", "FID", "sFID", "Precision", "Recall"]
    assert len(list(cache_dir.glob("ref-inception-*.npz"))) == 1
    # A second run reads the cached reference (no recomputation).
    with mock.patch("sgbench.metrics.reference.ReferenceSet.from_batches", side_effect=AssertionError("recomputed")):
        assert cli_main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["is"] == pytest.approx(float(lines[0].split(": ")[1]), rel=1e-12)
    assert out["n_samples"] == 5 and "class_acc" not in out


@pytest.mark.slow
def test_cli_evaluate_end_to_end_real_frechet(inception_weights, data, cache_dir, capsys):
    d, _, _ = data
    assert cli_main(_evaluate_args(inception_weights, d, cache_dir) + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert np.isfinite(out["fid"]) and out["fid"] > 0 and np.isfinite(out["sfid"])


def test_adm_reference_batch_uses_precomputed_statistics(extractor, data, tmp_path):
    _, ref, _ = data
    rng = np.random.default_rng(1)
    mu, sigma, mu_s, sigma_s = rng.normal(size=2048), np.eye(2048), rng.normal(size=2023), np.eye(2023) * 2
    np.savez(tmp_path / "VIRTUAL_test.npz", arr_0=ref, mu=mu, sigma=sigma, mu_s=mu_s, sigma_s=sigma_s)
    reference = load_reference(tmp_path / "VIRTUAL_test.npz", extractor, cache_dir=tmp_path, log=lambda m: None)
    np.testing.assert_array_equal(reference.gaussians["pool"].mu, mu)
    np.testing.assert_array_equal(reference.gaussians["spatial"].sigma, sigma_s)
    assert reference.features.shape == (5, 2048)  # P/R features still come from arr_0
    # Statistics only (no arr_0): FID/sFID possible, precision/recall not.
    np.savez(tmp_path / "stats_only.npz", mu=mu, sigma=sigma, mu_s=mu_s, sigma_s=sigma_s)
    only = load_reference(tmp_path / "stats_only.npz", extractor, cache_dir=tmp_path, log=lambda m: None)
    assert only.features is None and set(only.gaussians) == {"pool", "spatial"}


def test_missing_weights_one_line_error_and_exit_2(data, tmp_path, capsys):
    with pytest.raises(UserError, match=WEIGHTS_NAME):
        get_extractor("inception", weights_path=tmp_path / "nope.pth")
    d, _, _ = data
    rc = cli_main(["evaluate", str(d / "samples.npz"), "--ref", str(d / "ref.npz"), "--inception-weights", str(tmp_path / "nope.pth")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and WEIGHTS_NAME in err and "github.com/toshas/torch-fidelity" in err


@pytest.mark.parametrize("content", ["not a zip", "wrong dtype"])
def test_bad_samples_exit_2(inception_weights, data, tmp_path, capsys, content):
    bad = tmp_path / "bad.npz"
    if content == "not a zip":
        bad.write_text("hello")
    else:
        np.savez(bad, arr_0=np.zeros((3, 8, 8, 3), dtype=np.float32))
    d, _, _ = data
    rc = cli_main(["evaluate", str(bad), "--ref", str(d / "ref.npz"), "--inception-weights", str(inception_weights)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "bad.npz" in err
