"""Pure metric math: Fréchet distance, Inception Score, precision/recall, streaming statistics."""

import numpy as np
import pytest

from sgbench.metrics.frechet import frechet_distance
from sgbench.metrics.isc import InceptionScoreStream, inception_score
from sgbench.metrics.prc import manifold_radii, pairwise_sq_distances, precision_recall
from sgbench.metrics.stats import FeatureStats, gaussian_from_features


# -- Fréchet distance ------------------------------------------------------------------------
def test_frechet_identical_sets_is_zero():
    x = np.random.default_rng(0).normal(size=(200, 6))
    g = gaussian_from_features(x)
    assert frechet_distance(g.mu, g.sigma, g.mu, g.sigma) == pytest.approx(0.0, abs=1e-9)


def test_frechet_commuting_gaussians_closed_form():
    # S1 = Q diag(a) Q^T, S2 = Q diag(b) Q^T commute: FD = |m1-m2|^2 + sum (sqrt a - sqrt b)^2.
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    a, b = np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([4.0, 1.0, 0.5, 9.0, 2.0])
    m1, m2 = rng.normal(size=5), rng.normal(size=5)
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(m1, q @ np.diag(a) @ q.T, m2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_one_dimensional():
    # 1-D Gaussians: (m1 - m2)^2 + (s1 - s2)^2.
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)


def test_frechet_non_finite_sqrtm_retries_with_offset(monkeypatch):
    # Recent SciPy rarely returns a non-finite root; force one to pin ADM's retry (eps on both diagonals).
    import sgbench.metrics.frechet as fr

    real_sqrtm, seen = fr._sqrtm, []

    def flaky(a):
        seen.append(a.copy())
        return np.full_like(a, np.nan) if len(seen) == 1 else real_sqrtm(a)

    monkeypatch.setattr(fr, "_sqrtm", flaky)
    s1, s2 = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    with pytest.warns(UserWarning, match="singular product"):
        fd = fr.frechet_distance(np.zeros(2), s1, np.zeros(2), s2, eps=1e-6)
    np.testing.assert_allclose(seen[1], (s1 + 1e-6 * np.eye(2)) @ (s2 + 1e-6 * np.eye(2)))
    expected = 5 + 10 - 2 * (np.sqrt((1 + 1e-6) * (9 + 1e-6)) + np.sqrt((4 + 1e-6) * (1 + 1e-6)))
    assert fd == pytest.approx(expected, rel=1e-12)


def test_frechet_large_imaginary_component_raises():
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.diag([-1.0, 1.0]))


# -- Inception Score -------------------------------------------------------------------------
def test_inception_score_uniform_and_confident():
    assert inception_score(np.zeros((10, 7))) == pytest.approx(1.0)
    # 7 samples, each confidently a different class: IS -> 7.
    assert inception_score(np.eye(7) * 60.0) == pytest.approx(7.0, rel=1e-6)


def _adm_is(logits, split_size):
    # ADM's loop on softmax probabilities, written out for the test.
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    scores = []
    for i in range(0, len(p), split_size):
        part = p[i : i + split_size]
        kl = part * (np.log(part) - np.log(part.mean(0, keepdims=True)))
        scores.append(np.exp(kl.sum(1).mean()))
    return np.mean(scores)


def test_inception_score_splits_in_order_with_remainder():
    logits = np.random.default_rng(2).normal(size=(12, 5)) * 3
    assert inception_score(logits, split_size=5) == pytest.approx(_adm_is(logits, 5), rel=1e-12)
    # No shuffle: reordering samples across splits changes the score.
    assert inception_score(logits[::-1], split_size=5) != pytest.approx(inception_score(logits, split_size=5), rel=1e-6)
    # Fewer samples than a split: one split of everything.
    assert inception_score(logits, split_size=5000) == pytest.approx(_adm_is(logits, 12), rel=1e-12)


def test_inception_score_stream_equals_batch():
    logits = np.random.default_rng(3).normal(size=(23, 6)) * 2
    stream = InceptionScoreStream(6, split_size=5)
    for chunk in (logits[:3], logits[3:11], logits[11:12], logits[12:]):
        stream.update(chunk)
    assert stream.count == 23
    assert stream.compute() == pytest.approx(inception_score(logits, split_size=5), rel=1e-10)


# -- streaming statistics --------------------------------------------------------------------
def test_feature_stats_stream_equals_np_cov(tmp_path):
    x = np.random.default_rng(4).normal(loc=3.0, size=(101, 7)).astype(np.float32)
    s = FeatureStats(7)
    for i in range(0, 101, 17):
        s.update(x[i : i + 17])
    ref = gaussian_from_features(x.astype(np.float64))
    np.testing.assert_allclose(s.mean, ref.mu, rtol=1e-12)
    np.testing.assert_allclose(s.cov, np.cov(x, rowvar=False), rtol=1e-9, atol=1e-12)
    s.save(tmp_path / "s.npz")
    t = FeatureStats.load(tmp_path / "s.npz")
    assert t.n == 101
    np.testing.assert_array_equal(t.cov, s.cov)
    a, b = FeatureStats(7).update(x[:50]), FeatureStats(7).update(x[50:])
    np.testing.assert_allclose(a.merge(b).cov, s.cov, rtol=1e-12)


# -- precision / recall ----------------------------------------------------------------------
def _line(*xs):
    return np.array([[x, 0.0] for x in xs], dtype=np.float32)


def test_precision_recall_hand_made_points():
    real = _line(0, 1, 2, 3)  # k=1 radii: squared distance 1 for every real point
    fake = _line(0.2, 0.5, 10, 10.3)  # k=1 radii: 0.09
    # precision: 0.2 and 0.5 lie within 1 of a real point; 10, 10.3 do not -> 1/2.
    # recall: only real 0 lies within 0.3 of a fake point (0.2) -> 1/4.
    for dtype in ("float16", "float32"):
        assert precision_recall(real, fake, k=1, dtype=dtype) == (0.5, 0.25)


def test_radii_count_self_as_rank_zero():
    x = _line(0, 1, 3, 6, 10)
    # k=3: third-nearest *other* point. For 0: others at 1, 3, 6 -> 6^2 = 36; for 10: 6, 3, 1 -> 9^2.
    np.testing.assert_array_equal(manifold_radii(x, k=3, dtype="float32"), [36, 25, 9, 25, 81])


def _brute_pr(real, fake, k):
    d_rr = ((real[:, None] - real[None]) ** 2).sum(-1)
    d_ff = ((fake[:, None] - fake[None]) ** 2).sum(-1)
    d_rf = ((real[:, None] - fake[None]) ** 2).sum(-1)
    r_real, r_fake = np.sort(d_rr, 1)[:, k], np.sort(d_ff, 1)[:, k]
    return (d_rf <= r_real[:, None]).any(0).mean(), (d_rf <= r_fake[None]).any(1).mean()


def test_precision_recall_matches_brute_force_and_block_sizes():
    rng = np.random.default_rng(5)
    real = rng.normal(size=(40, 3)).astype(np.float64)
    fake = (rng.normal(size=(33, 3)) * 1.5 + 0.5).astype(np.float64)
    expected = _brute_pr(real, fake, 3)
    got = precision_recall(real, fake, k=3, dtype="float32")
    assert got == pytest.approx(expected, abs=1.0 / 33)  # float32 vs float64 ties at most one point
    small_blocks = precision_recall(real, fake, k=3, dtype="float32", row_batch=7, col_batch=5)
    assert small_blocks == got


def test_float16_overflow_falls_back_to_float32():
    u = np.array([[300.0, 0.0], [0.0, 300.0]], dtype=np.float32)  # |u|^2 = 9e4 > float16 max
    np.testing.assert_array_equal(pairwise_sq_distances(u, u, "float16"), pairwise_sq_distances(u, u, "float32"))
    assert np.isfinite(pairwise_sq_distances(u, u, "float16")).all()
