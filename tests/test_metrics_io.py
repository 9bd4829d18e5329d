"""Streaming reads of ADM-style sample files."""

import numpy as np
import pytest

from sgbench.errors import UserError
from sgbench.metrics.image_io import count_images, iter_images, read_npz_labels


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_batches_stream_in_order(tmp_path, save):
    x = np.random.default_rng(0).integers(0, 256, size=(7, 5, 4, 3), dtype=np.uint8)
    save(tmp_path / "s.npz", arr_0=x, arr_1=np.arange(7))
    batches = list(iter_images(tmp_path / "s.npz", batch_size=3))
    assert [len(b) for b in batches] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate(batches), x)
    assert batches[0].flags.writeable
    assert [len(b) for b in iter_images(tmp_path / "s.npz", batch_size=3, limit=4)] == [3, 1]
    assert count_images(tmp_path / "s.npz") == 7
    np.testing.assert_array_equal(read_npz_labels(tmp_path / "s.npz", 7), np.arange(7))


def test_bad_inputs_are_user_errors(tmp_path):
    np.savez(tmp_path / "f.npz", arr_0=np.zeros((2, 4, 4), dtype=np.uint8))
    with pytest.raises(UserError, match=r"uint8 images \[N, H, W, 3\]"):
        count_images(tmp_path / "f.npz")
    np.savez(tmp_path / "g.npz", images=np.zeros((2, 4, 4, 3), dtype=np.uint8))
    with pytest.raises(UserError, match="no array 'arr_0'"):
        list(iter_images(tmp_path / "g.npz"))
    with pytest.raises(UserError, match="not found"):
        iter_images(tmp_path / "missing.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images"):
        count_images(tmp_path / "empty")
