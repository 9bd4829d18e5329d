"""LPIPS with a locally saved backbone file, and the throughput record."""

import numpy as np
import pytest
import torch

from sgbench.errors import UserError
from sgbench.metrics.perceptual import load_lpips, lpips_distance
from sgbench.metrics.throughput import ThroughputRecord, measure_throughput


@pytest.fixture(scope="module")
def alex_features_file(tmp_path_factory):
    import torchvision

    torch.manual_seed(0)
    feats = torchvision.models.alexnet(weights=None).features  # random stand-in for alexnet-owt-7be5be79.pth
    path = tmp_path_factory.mktemp("lpips") / "alexnet-owt-7be5be79.pth"
    torch.save({f"features.{k}": v for k, v in feats.state_dict().items()}, path)
    return path, feats


def test_lpips_loads_local_backbone(alex_features_file):
    path, feats = alex_features_file
    model = load_lpips(path, net="alex")
    torch.testing.assert_close(model.net.slice1[0].weight, feats[0].weight)
    torch.testing.assert_close(getattr(model.net.slice5, "10").bias, feats[10].bias)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    b = a.copy()
    b[1] = 255 - b[1]
    d = lpips_distance(model, a, b, batch_size=2)
    assert d.shape == (3,) and d[0] == pytest.approx(0.0, abs=1e-7) and d[2] == pytest.approx(0.0, abs=1e-7) and d[1] > 0
    # Float NCHW input in [-1, 1] gives the same distances as uint8 NHWC.
    to_float = lambda x: torch.from_numpy(x).permute(0, 3, 1, 2).float() / 127.5 - 1  # noqa: E731
    np.testing.assert_allclose(lpips_distance(model, to_float(a), to_float(b)), d, rtol=1e-5)


def test_lpips_missing_or_wrong_file(tmp_path, alex_features_file):
    with pytest.raises(UserError, match="alexnet-owt-7be5be79.pth"):
        load_lpips(tmp_path / "missing.pth")
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(UserError, match="wrong.pth"):
        load_lpips(tmp_path / "wrong.pth")


def test_throughput_record_cpu():
    calls = []

    def sample(batch_size):
        calls.append(batch_size)
        return torch.zeros(batch_size, 3, 4, 4) @ torch.zeros(4, 4)

    rec = measure_throughput(sample, batch_size=4, steps=10, device="cpu", warmup=2, repeats=3)
    assert isinstance(rec, ThroughputRecord) and calls == [4] * 5
    assert rec.device == "cpu" and rec.dtype == "float32" and rec.batch_size == 4 and rec.steps == 10
    assert rec.images_per_s == pytest.approx(12 / rec.seconds)
    assert measure_throughput(sample, 2, 1, device="cpu", dtype="bfloat16", warmup=0, repeats=1).dtype == "bfloat16"
    with pytest.raises(UserError):
        measure_throughput(sample, 0, 1)
