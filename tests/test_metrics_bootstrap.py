"""Standard errors of the metrics: Poisson weights from (seed, i), each metric's replicates
against a brute-force recomputation, the linearised FD against the exact bootstrap, and the
`<metric>_se` columns of the accumulator."""

import math

import numpy as np
import pytest
import torch

from sgbench.metrics import bootstrap as bs
from sgbench.metrics.accumulator import ImageMetricAccumulator
from sgbench.metrics.frechet import frechet_distance, frechet_distance_and_root
from sgbench.metrics.isc import InceptionScoreStream, inception_score
from sgbench.metrics.prc import manifold_radii, pairwise_sq_distances, precision_recall_coverage
from sgbench.metrics.reference import ReferenceSet
from sgbench.metrics.stats import gaussian_from_features


def test_poisson_weights_depend_only_on_seed_and_position():
    w = bs.poisson_weights(3, 0, 9000, 20)
    assert w.shape == (20, 9000) and w.dtype == np.uint8
    assert np.array_equal(bs.poisson_weights(3, 4000, 8300, 20), w[:, 4000:8300])  # across chunk borders
    assert np.array_equal(bs.poisson_weights(3, 0, 9000, 5), w[:5])  # more replicates extend, never change
    assert not np.array_equal(bs.poisson_weights(4, 0, 9000, 20), w)
    assert abs(w.mean() - 1.0) < 0.01 and abs(w.var() - 1.0) < 0.02  # Poisson(1)


def test_mean_se_is_the_binomial_standard_error():
    v = (np.arange(4000) % 4 == 0).astype(float)  # p = 0.25
    se = bs.mean_se(v, bs.poisson_weights(0, 0, len(v), 400))
    assert se == pytest.approx(math.sqrt(0.25 * 0.75 / 4000), rel=0.1)


def _weighted(x, w):
    return np.repeat(x, w, axis=0)


def test_linearised_fd_se_matches_the_exact_bootstrap_in_low_dimension():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 3)) * [1.0, 2.0, 0.5] + [0.3, 0.0, -0.2]
    ref = gaussian_from_features(rng.standard_normal((2000, 3)))
    w = bs.poisson_weights(1, 0, len(x), 300)
    exact = [frechet_distance(*(lambda g: (g.mu, g.sigma))(gaussian_from_features(_weighted(x, wb))), ref.mu, ref.sigma)
             for wb in w]
    se = bs.frechet_distance_se(x, ref.mu, ref.sigma)
    assert se == pytest.approx(bs.replicate_se(exact), rel=0.12)


def test_fd_influence_is_the_derivative_of_the_distance():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 4)) @ rng.standard_normal((4, 4))
    ref = gaussian_from_features(rng.standard_normal((300, 4)))
    infl = bs.frechet_influence(x, ref.mu, ref.sigma)

    def fd(weights):  # weighted mean and (ML-normalised) covariance
        p = weights / weights.sum()
        mu = p @ x
        c = x - mu
        return frechet_distance(mu, (c * p[:, None]).T @ c * len(x) / (len(x) - 1), ref.mu, ref.sigma)

    eps = 1e-5
    for i in (0, 7, 31):
        e = np.ones(len(x))
        e[i] += eps
        assert (fd(e) - fd(np.ones(len(x)))) / eps * len(x) == pytest.approx(infl[i], rel=0.05, abs=1e-3)


def test_fd_se_with_fewer_samples_than_dimensions_is_finite():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((10, 32))
    ref = gaussian_from_features(rng.standard_normal((100, 32)))
    se = bs.frechet_distance_se(x, ref.mu, ref.sigma)
    assert math.isfinite(se) and se > 0
    # with n <= D the root (S S_r)^(1/2) is singular: the eigenvector path is used, not the root
    _, root = frechet_distance_and_root(x.mean(0), np.cov(x, rowvar=False), ref.mu, ref.sigma)
    assert bs.frechet_distance_se(x, ref.mu, ref.sigma, root=root) == se


def test_fd_se_from_the_distance_root_equals_the_eigenvector_path():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((400, 16)) @ rng.standard_normal((16, 16)) + 0.2
    ref = gaussian_from_features(rng.standard_normal((900, 16)) * 1.5)
    sigma = np.cov(x, rowvar=False)
    _, root = frechet_distance_and_root(x.mean(0), sigma, ref.mu, ref.sigma)
    fast = bs.frechet_distance_se(x, ref.mu, ref.sigma, sigma, root)
    slow = bs.frechet_distance_se(x, ref.mu, ref.sigma, sigma, sqrt_sigma_ref=bs.sqrt_psd(ref.sigma))
    assert fast == pytest.approx(slow, rel=1e-4)


def _multiset_recall(real, fake, w, k):
    """Recall of the resample that repeats sample i w_i times (copies are points), brute force."""
    x = np.repeat(fake, w, axis=0)
    radii = np.sort(pairwise_sq_distances(x, x, "float32"), axis=1)[:, k]
    return (pairwise_sq_distances(real, x, "float32") <= radii[None, :]).any(axis=1).mean()


def test_precision_recall_and_the_recall_bootstrap_match_brute_force():
    rng = np.random.default_rng(3)
    real, fake = rng.standard_normal((60, 5)).astype(np.float32), rng.standard_normal((40, 5)).astype(np.float32) + 0.3
    r_real = manifold_radii(real, 3, "float32")
    d = pairwise_sq_distances(real, fake, "float32")
    r_fake = manifold_radii(fake, 3, "float32")
    # the full list of neighbours and of candidates: the bootstrap is then exact
    cov = precision_recall_coverage(real, fake, 3, "float32", radii_real=r_real, row_batch=25, col_batch=15,
                                    max_cover=40, neighbours=39)
    assert cov.recall == (d <= r_fake[None, :]).any(axis=1).mean()
    assert cov.precision == (d <= r_real[:, None]).any(axis=0).mean()
    plain = precision_recall_coverage(real, fake, 3, "float32", radii_real=r_real, max_cover=0)
    assert (plain.precision, plain.recall) == (cov.precision, cov.recall) and plain.real_cover.shape == (60, 0)
    w = bs.poisson_weights(0, 0, len(fake), 40)
    brute = [_multiset_recall(real, fake, wb, 3) for wb in w]
    assert bs.recall_se(cov, w) == pytest.approx(bs.replicate_se(brute), rel=1e-9)
    # the defaults (16 neighbours, 32 candidates per reference point) agree closely
    small = precision_recall_coverage(real, fake, 3, "float32", radii_real=r_real)
    assert small.recall == cov.recall
    small = precision_recall_coverage(real, fake, 3, "float32", radii_real=r_real, max_cover=32, neighbours=16)
    assert bs.recall_se(small, w) == pytest.approx(bs.replicate_se(brute), rel=0.02)


def test_inception_score_replicates_equal_the_weighted_recomputation():
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((23, 6)) * 2
    w = bs.poisson_weights(5, 0, len(logits), 8)
    stream = InceptionScoreStream(6, split_size=10, replicates=8)
    for a, b in ((0, 4), (4, 15), (15, 23)):
        stream.update(logits[a:b], w[:, a:b])
    assert stream.compute() == pytest.approx(inception_score(logits, split_size=10), rel=1e-12)
    # replicate b: each split's samples repeated by their weights, split by split
    reps = stream.replicate_scores()
    for b in range(8):
        if any(w[b, s:s + 10].sum() == 0 for s in range(0, len(logits), 10)):
            assert math.isnan(reps[b])  # a split with no sample in this replicate
            continue
        want = np.mean([inception_score(_weighted(logits[s:s + 10], w[b, s:s + 10]), split_size=10 ** 6)
                        for s in range(0, len(logits), 10)])
        assert reps[b] == pytest.approx(want, rel=1e-10)
    assert np.isfinite(reps).sum() >= 6


def test_group_means_se_resamples_whole_prompts():
    values = [1, 0, 1, 1, 0, 0, 1, 0]
    groups = ["a", "a", "a", "a", "b", "b", "b", "b"]
    prompts = [0, 0, 1, 1, 2, 2, 3, 3]
    w = bs.poisson_weights(0, 0, 4, 30)
    per, overall = bs.group_means_se(values, groups, prompts, w)
    ww = w[:, prompts].astype(float)
    v = np.array(values, float)
    with np.errstate(invalid="ignore"):  # a replicate may draw no prompt of a group
        ra = (ww[:, :4] @ v[:4]) / ww[:, :4].sum(1)
        rb = (ww[:, 4:] @ v[4:]) / ww[:, 4:].sum(1)
    assert per["a"] == pytest.approx(bs.replicate_se(ra)) and per["b"] == pytest.approx(bs.replicate_se(rb))
    with np.errstate(invalid="ignore"):
        both = np.where(np.isnan(ra), rb, np.where(np.isnan(rb), ra, (ra + rb) / 2))  # nan-mean over groups
    assert overall == pytest.approx(bs.replicate_se(both))


class FeatureExtractor:
    """Stand-in extractor: the 'image' is its features (pool = first 4 channels' means ...)."""

    name = "toy"
    batch_size = 3
    device = torch.device("cpu")
    feature_dims = {"pool": 4, "logits": 3}

    def __call__(self, images):
        x = images.float().flatten(1)[:, :4] / 50.0
        return {"pool": x, "logits": x[:, :3] * 3}


def _toy(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, size=(n, 2, 2, 3), dtype=np.uint8)


def test_accumulator_records_an_se_per_metric_independent_of_batching():
    ref_imgs = _toy(50, 0)
    ex = FeatureExtractor()
    ref_feats = ex(torch.from_numpy(ref_imgs).permute(0, 3, 1, 2))["pool"].double().numpy()
    ref = ReferenceSet({"pool": gaussian_from_features(ref_feats)}, ref_feats.astype(np.float32))
    samples, labels = _toy(40, 1), np.arange(40) % 3

    def run(chunks, seed=9):
        acc = ImageMetricAccumulator(ex, distance_dtype="float32", bootstrap=64, seed=seed)
        for a, b in chunks:
            acc.update(samples[a:b], labels[a:b])
        return acc, acc.compute(ref)

    acc, got = run([(0, 40)])
    keys = ["fd_toy", "precision_toy", "recall_toy", "class_acc"]
    assert list(got) == keys + [k + "_se" for k in keys]
    assert all(got[k + "_se"] > 0 for k in keys)
    _, again = run([(0, 7), (7, 8), (8, 40)])
    # weights follow the sample position, not the batches; the features themselves may differ in the last
    # bits between batch sizes (the CPU's convolution kernels depend on the batch), a wrong weight by far more
    assert list(again) == list(got) and again == pytest.approx(got, rel=1e-9, abs=0)
    _, other_seed = run([(0, 40)], seed=10)
    assert other_seed["class_acc_se"] != got["class_acc_se"]
    assert {k: v for k, v in other_seed.items() if not k.endswith("_se")} == {k: v for k, v in got.items() if not k.endswith("_se")}
    w = bs.poisson_weights(9, 0, 40, 64)
    feats = ex(torch.from_numpy(samples).permute(0, 3, 1, 2))
    correct = (feats["logits"].argmax(1).numpy() == labels).astype(float)
    assert got["class_acc_se"] == pytest.approx(bs.mean_se(correct, w))
    g = ref.gaussians["pool"]
    assert got["fd_toy_se"] == pytest.approx(bs.frechet_distance_se(feats["pool"].numpy(), g.mu, g.sigma), rel=1e-4)
    # without the bootstrap: no _se columns and no kept features beyond precision/recall's
    plain = ImageMetricAccumulator(ex, distance_dtype="float32", keys=["fd_toy"])
    plain.update(samples, labels)
    assert list(plain.compute(ref)) == ["fd_toy"] and plain._features == {}


def test_reference_radii_are_computed_once(monkeypatch):
    import sgbench.metrics.prc as prc

    calls = []
    real_nn = prc.nearest_neighbours

    def counting(features, *a, **k):
        calls.append(len(features))
        return real_nn(features, *a, **k)

    monkeypatch.setattr(prc, "nearest_neighbours", counting)
    ex = FeatureExtractor()
    ref_feats = ex(torch.from_numpy(_toy(30, 0)).permute(0, 3, 1, 2))["pool"].double().numpy()
    ref = ReferenceSet({"pool": gaussian_from_features(ref_feats)}, ref_feats.astype(np.float32))
    for seed in (0, 1):
        acc = ImageMetricAccumulator(ex, distance_dtype="float32", bootstrap=16, seed=seed)
        acc.update(_toy(20, seed + 5))
        acc.compute(ref)
    # k-NN of the reference once, of each trial's samples once (resamples reuse their neighbour lists)
    assert calls == [30, 20, 20]
