"""Shapes dataset: determinism, prefix stability, balanced labels, structure per class; loaders."""

import numpy as np
import pytest

from sgbench.data import build_dataset, make_shapes, shapes_reference_images
from sgbench.data.shapes import NUM_CLASSES, _sdf
from sgbench.errors import UserError


def test_deterministic_and_prefix_stable():
    a, la = make_shapes(40, seed=3)
    b, lb = make_shapes(40, seed=3)
    c, _ = make_shapes(1100, seed=3)  # crosses a chunk boundary
    assert a.dtype == np.uint8 and a.shape == (40, 32, 32, 3)
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert np.array_equal(a, c[:40])
    d, _ = make_shapes(40, seed=4)
    assert not np.array_equal(a, d)


def test_labels_balanced_and_cyclic():
    _, y = make_shapes(50, seed=0)
    assert y.tolist() == [i % 10 for i in range(50)]
    assert np.bincount(y, minlength=NUM_CLASSES).tolist() == [5] * NUM_CLASSES


def test_reference_images_are_the_heldout_split():
    ref, ry = shapes_reference_images(20)
    held, hy = make_shapes(20, seed=1)
    train, _ = make_shapes(20, seed=0)
    assert np.array_equal(ref, held) and np.array_equal(ry, hy)
    assert not np.array_equal(ref, train)


def test_classes_differ_in_structure():
    # Same (u, v) grid for every class: the inside masks must be pairwise clearly different.
    g = np.linspace(-1.3, 1.3, 64)
    u, v = np.meshgrid(g, g)
    masks = [(_sdf(c, u, v) < 0) for c in range(NUM_CLASSES)]
    for i in range(NUM_CLASSES):
        assert 0.02 < masks[i].mean() < 0.8, i
        for j in range(i + 1, NUM_CLASSES):
            assert (masks[i] != masks[j]).mean() > 0.05, (i, j)
    # A ring and a frame are hollow at the centre, a disk and square are not.
    c = (32, 32)
    assert masks[0][c] and masks[1][c] and not masks[4][c] and not masks[5][c]


def test_foreground_brighter_than_background():
    x, _ = make_shapes(20, seed=0)
    centre = x[:, 12:20, 12:20].astype(float).max(axis=(1, 2, 3))
    corner = x[:, :3, :3].astype(float).mean(axis=(1, 2, 3))
    assert (centre > corner + 60).mean() > 0.9


def test_shapes_registry_builds_splits():
    s = build_dataset({"name": "shapes", "n_train": 30, "n_heldout": 10})
    assert len(s.train) == 30 and len(s.heldout) == 10
    assert s.train.shape == (3, 32, 32) and s.train.x.dtype == np.uint8
    x, y = s.train.get([3, 1])
    assert x.shape == (2, 3, 32, 32) and y.tolist() == [1, 3]  # sorted reads


def test_registry_errors():
    with pytest.raises(UserError, match=r"config.data.name: unknown dataset 'nope'"):
        build_dataset({"name": "nope"})
    with pytest.raises(UserError, match=r"config.data.n_trian: unknown key"):
        build_dataset({"name": "shapes", "n_trian": 5})
    with pytest.raises(UserError, match=r"config.data.n_train: expected an integer"):
        build_dataset({"name": "shapes", "n_train": "many"})
