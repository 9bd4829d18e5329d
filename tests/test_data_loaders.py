"""Latent and image-folder loaders: formats, memory mapping, held-out split, bad input."""

import numpy as np
import pytest
from PIL import Image

from sgbench.data import build_dataset
from sgbench.errors import UserError


def _latents(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4, 8, 8)).astype(np.float32), (np.arange(n) % 3).astype(np.int64)


def test_npz_file_and_scale(tmp_path):
    x, y = _latents(10)
    np.savez(tmp_path / "a.npz", latents=x, labels=y)
    s = build_dataset({"name": "latents", "path": str(tmp_path / "a.npz"), "num_classes": 3, "scale": 0.5,
                       "heldout_fraction": 0.2})
    assert len(s.train) == 8 and len(s.heldout) == 2 and s.train.space == "latent"
    bx, by = s.train.get([0, 7])
    np.testing.assert_allclose(bx.numpy(), x[[0, 7]] * 0.5, rtol=1e-6)
    assert by.tolist() == [0, 1]


def test_npz_shards_and_npy_memmap(tmp_path):
    x, y = _latents(6)
    (tmp_path / "shards").mkdir()
    np.savez(tmp_path / "shards/0.npz", latents=x[:4], labels=y[:4])
    np.savez(tmp_path / "shards/1.npz", latents=x[4:], labels=y[4:])
    s = build_dataset({"name": "latents", "path": str(tmp_path / "shards"), "num_classes": 3})
    assert np.array_equal(s.train.x, x)
    (tmp_path / "mm").mkdir()
    np.save(tmp_path / "mm/latents.npy", x)
    np.save(tmp_path / "mm/labels.npy", y)
    m = build_dataset({"name": "latents", "path": str(tmp_path / "mm"), "num_classes": 3})
    assert isinstance(m.train.x, np.memmap)
    assert np.array_equal(m.train.get([5])[0].numpy(), x[5:6])


def test_latent_errors(tmp_path):
    with pytest.raises(UserError, match="latents not found"):
        build_dataset({"name": "latents", "path": str(tmp_path / "missing.npz")})
    np.savez(tmp_path / "bad.npz", x=np.zeros(3))
    with pytest.raises(UserError, match="expected arrays 'latents' and 'labels'"):
        build_dataset({"name": "latents", "path": str(tmp_path / "bad.npz")})
    x, y = _latents(4)
    np.savez(tmp_path / "lab.npz", latents=x, labels=y + 5)
    with pytest.raises(UserError, match=r"labels must lie in \[0, 3\)"):
        build_dataset({"name": "latents", "path": str(tmp_path / "lab.npz"), "num_classes": 3})
    with pytest.raises(UserError, match="config.data.path: required key missing"):
        build_dataset({"name": "latents"})


def test_image_folder(tmp_path):
    for ci, cname in enumerate(["cat", "dog"]):
        (tmp_path / cname).mkdir()
        for k in range(3):
            Image.fromarray(np.full((20, 20, 3), 40 * ci + k, np.uint8)).save(tmp_path / cname / f"{k}.png")
    (tmp_path / "dog" / "notes.txt").write_text("ignored")
    s = build_dataset({"name": "image_folder", "path": str(tmp_path), "image_size": 8})
    assert len(s.train) == 6 and s.train.num_classes == 2 and s.train.shape == (3, 8, 8)
    x, y = s.train.get(range(6))
    # every image's pixel value tells its class: 0..2 -> cat (0), 40..42 -> dog (1)
    assert ((x[:, 0, 0, 0] >= 40).long() == y).all()
    assert s.train.meta["classes"] == ["cat", "dog"]


def test_image_folder_errors(tmp_path):
    with pytest.raises(UserError, match="image folder not found"):
        build_dataset({"name": "image_folder", "path": str(tmp_path / "x")})
    with pytest.raises(UserError, match="no class subfolders"):
        build_dataset({"name": "image_folder", "path": str(tmp_path)})
