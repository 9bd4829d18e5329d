"""FD_DINOv2 as edm2 computes it: edm2's preprocessing against hand-computed values, the torch-hub
positional-embedding resize against a hand-written cubic convolution, the ViT against timm's,
torch-hub and timm weight layouts giving identical features, bad files refused in one line, and
fd_dinov2 with its standard error through `sgbench evaluate` and `sgbench run`."""

import argparse
import csv
import json
import math

import numpy as np
import pytest
import torch
import yaml

from sgbench.cli import main
from sgbench.errors import UserError
from sgbench.metrics import dinov2 as D
from sgbench.metrics.extractors import get_extractor

TINY = D.DINOv2Config(embed_dim=128, depth=2, patch_size=14, mlp_dim=256, pos_grid=5)  # 2 heads
MEAN, STD = np.array(D.IMAGENET_MEAN), np.array(D.IMAGENET_STD)


def keys_cubic(x, a):
    """Keys' cubic convolution kernel (PIL and torch antialiased bicubic: a = -0.5; torch bicubic: -0.75)."""
    x = abs(x)
    if x <= 1:
        return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1
    return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a if x < 2 else 0.0


def test_preprocess_is_edm2s_antialiased_bicubic_resize_then_imagenet_normalisation():
    # 448 -> 224 (scale 2): output column j is the a = -0.5 kernel stretched by 2 over inputs
    # 2j - 3 .. 2j + 4 (distances 0.5 .. 3.5 from the centre 2j + 0.5), weights summing to 1
    w = [keys_cubic(d / 2, -0.5) / 2 for d in (3.5, 2.5, 1.5, 0.5, 0.5, 1.5, 2.5, 3.5)]
    assert w == [-0.01171875, -0.03515625, 0.11328125, 0.43359375, 0.43359375, 0.11328125, -0.03515625, -0.01171875]
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 256, size=(3, 448))  # per channel, constant down each column
    images = torch.from_numpy(np.broadcast_to(rows[:, None, :], (3, 448, 448)).astype(np.uint8).copy())[None]
    out = D.preprocess(images)
    assert out.shape == (1, 3, 224, 224) and out.dtype == torch.float32
    for c in range(3):
        for j in range(2, 222):  # away from the borders (where the kernel is cut and renormalised)
            resized = sum(wk * rows[c, 2 * j - 3 + k] for k, wk in enumerate(w))  # not clamped to 0..255
            expected = (resized / 255 - MEAN[c]) / STD[c]
            assert out[0, c, 100, j].item() == pytest.approx(expected, abs=2e-5)
    # at 224 px the resize is the identity: pixel 255 in R is (1 - 0.485) / 0.229
    flat = torch.zeros(1, 3, 224, 224, dtype=torch.uint8)
    flat[0, 0] = 255
    got = D.preprocess(flat)[0, :, 7, 9]
    assert got.tolist() == pytest.approx([(1 - MEAN[0]) / STD[0], -MEAN[1] / STD[1], -MEAN[2] / STD[2]], abs=1e-6)


def test_position_embedding_is_resized_as_torch_hubs_with_its_offset():
    """37 x 37 -> 16 x 16: bicubic (a = -0.75, borders clamped) at the positions of scale factor
    (16 + 0.1) / 37, not of the output size; the stored grid itself when no resize is needed."""
    c = D.DINOv2Config(embed_dim=64, depth=1, patch_size=14, mlp_dim=64, pos_grid=37)
    model = D.DINOv2(c)
    v = np.random.default_rng(1).normal(size=37)
    with torch.no_grad():
        grid = torch.zeros(37, 37, 64)
        grid[..., 0] = torch.tensor(v, dtype=torch.float32).reshape(1, 37)  # varies along columns
        grid[..., 1] = torch.tensor(v, dtype=torch.float32).reshape(37, 1)  # along rows
        model.pos_embed[0, 1:] = grid.reshape(-1, 64)
        model.pos_embed[0, 0] = 3.0
        pos = model.position_embedding(16, 16)[0]

    def hand(scale):
        out = []
        for j in range(16):
            s = (j + 0.5) * scale - 0.5
            f = math.floor(s)
            out.append(sum(keys_cubic(s - f - k, -0.75) * v[min(max(f + k, 0), 36)] for k in (-1, 0, 1, 2)))
        return np.array(out)

    assert pos.shape == (257, 64) and torch.all(pos[0] == 3.0)  # the CLS position is kept
    cols, rows = pos[1:, 0].reshape(16, 16), pos[1:, 1].reshape(16, 16)
    assert np.abs(cols[4].numpy() - hand(37 / 16.1)).max() < 1e-5
    assert np.abs(rows[:, 11].numpy() - hand(37 / 16.1)).max() < 1e-5
    assert np.abs(cols[4].numpy() - hand(37 / 16)).max() > 0.05  # the offset matters
    assert model.position_embedding(37, 37) is model.pos_embed


def test_the_vit_matches_timms_dinov2_vision_transformer():
    timm_vit = pytest.importorskip("timm.models.vision_transformer")
    torch.manual_seed(0)
    ref = timm_vit.VisionTransformer(img_size=70, patch_size=14, embed_dim=128, depth=2, num_heads=2, mlp_ratio=2.0,
                                     init_values=1e-5, num_classes=0).eval()
    state = ref.state_dict()
    config = D.config_from_state_dict(state, "timm")
    assert config == TINY and D.detect_layout(state, config) == "timm"
    ours = D.DINOv2(config).eval()
    ours.load_state_dict(state)
    x = torch.randn(3, 3, 70, 70)
    with torch.no_grad():  # the 5 x 5 grid of the weights: no positional resize on either side
        assert torch.allclose(ours.forward_normalized(x), ref.forward_features(x)[:, 0], atol=1e-5)


@pytest.fixture
def weights(tmp_path):
    model = D.random_dinov2(TINY, seed=3)
    return {
        "hub": D.write_weights(tmp_path / "dinov2_vitl14_pretrain.pth", model, "torch-hub"),
        "timm_st": D.write_weights(tmp_path / "model.safetensors", model, "timm"),
        "timm_bin": D.write_weights(tmp_path / "pytorch_model.bin", model, "timm"),
    }


def test_hub_and_timm_files_give_identical_features(weights):
    images = torch.from_numpy(np.random.default_rng(2).integers(0, 256, size=(4, 3, 48, 48), dtype=np.uint8))
    feats, layouts = [], []
    for path in weights.values():
        ext = get_extractor("dinov2", weights_path=str(path), batch_size=4)
        assert ext.feature_dims == {"pool": 128} and set(ext(images)) == {"pool"}
        feats.append(ext(images)["pool"])
        layouts.append(ext.layout)
    assert layouts == ["torch-hub", "timm", "timm"]
    assert feats[0].shape == (4, 128) and feats[0].std(dim=0).min() > 0  # images differ in their features
    assert torch.equal(feats[0], feats[1]) and torch.equal(feats[0], feats[2])
    # the features are the final-norm CLS token of the preprocessed images
    net = D.random_dinov2(TINY, seed=3)
    with torch.no_grad():
        assert torch.equal(feats[0], net.norm(_tokens(net, D.preprocess(images)))[:, 0])


def _tokens(net, x):
    t = torch.cat([net.cls_token.expand(len(x), -1, -1), net.patch_embed(x)], 1) + net.position_embedding(16, 16)
    for b in net.blocks:
        t = b(t)
    return t


def _bad_files(tmp_path, weights):
    hub = torch.load(weights["hub"], weights_only=True)
    files = {}
    files["not dinov2"] = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, files["not dinov2"])
    files["registers"] = tmp_path / "reg.pth"
    torch.save({**hub, "register_tokens": torch.zeros(1, 4, 128)}, files["registers"])
    files["missing key"] = tmp_path / "missing.pth"
    torch.save({k: v for k, v in hub.items() if k != "blocks.1.ls2.gamma"}, files["missing key"])
    files["head"] = tmp_path / "head.pth"
    torch.save({**hub, "head.weight": torch.zeros(10, 128)}, files["head"])
    files["shape"] = tmp_path / "shape.pth"
    torch.save({**hub, "blocks.0.attn.proj.weight": torch.zeros(128, 64)}, files["shape"])
    files["pickle"] = tmp_path / "evil.pth"
    torch.save({**hub, "args": argparse.Namespace(arch="vit_large")}, files["pickle"])  # an object: never unpickled
    files["corrupt"] = tmp_path / "bad.safetensors"
    files["corrupt"].write_bytes(b"not safetensors")
    files["absent"] = tmp_path / "nowhere.pth"
    return files


def test_bad_weights_files_are_one_line_errors(tmp_path, weights):
    expect = {"not dinov2": "not a DINOv2 ViT state dict", "registers": "register tokens",
              "missing key": "missing blocks.1.ls2.gamma", "head": "unexpected head.weight", "shape": "do not fit",
              "pickle": "holds argparse.Namespace", "corrupt": "cannot read", "absent": "not found"}
    for what, path in _bad_files(tmp_path, weights).items():
        with pytest.raises(UserError) as e:
            get_extractor("dinov2", weights_path=str(path))
        msg = str(e.value)
        assert expect[what] in msg and "\n" not in msg, (what, msg)
    with pytest.raises(UserError, match="dinov2_vitl14_pretrain.pth"):
        get_extractor("dinov2")


def _npz(path, n, seed, side=32):
    images = np.random.default_rng(seed).integers(0, 256, size=(n, side, side, 3), dtype=np.uint8)
    np.savez(path, arr_0=images)
    return images


def test_evaluate_reports_fd_dinov2_with_the_projects_frechet_distance(tmp_path, weights, capsys):
    from sgbench.metrics.frechet import frechet_distance

    samples, ref = _npz(tmp_path / "samples.npz", 12, 0), _npz(tmp_path / "ref.npz", 16, 1)
    code = main(["evaluate", str(tmp_path / "samples.npz"), "--ref", str(tmp_path / "ref.npz"), "--extractor", "dinov2",
                 "--dinov2-weights", str(weights["hub"]), "--no-cache", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    result = json.loads(out.out)
    ext = get_extractor("dinov2", weights_path=str(weights["timm_st"]))
    f_s, f_r = (ext(torch.from_numpy(x).permute(0, 3, 1, 2))["pool"].double().numpy() for x in (samples, ref))
    expected = frechet_distance(f_s.mean(0), np.cov(f_s, rowvar=False), f_r.mean(0), np.cov(f_r, rowvar=False))
    assert result["extractor"] == "dinov2" and result["fd_dinov2"] == pytest.approx(expected, rel=1e-6)
    assert {"precision_dinov2", "recall_dinov2"} <= set(result) and "class_acc" not in result


def test_a_bad_weights_file_exits_2_in_evaluate_and_run(tmp_path, weights, capsys):
    _npz(tmp_path / "samples.npz", 4, 0)
    bad = _bad_files(tmp_path, weights)["missing key"]
    code = main(["evaluate", str(tmp_path / "samples.npz"), "--ref", str(tmp_path / "samples.npz"),
                 "--extractor", "dinov2", "--dinov2-weights", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and "neither torch-hub's" in err and "Traceback" not in err
    suite = _tiny_suite(tmp_path, bad)
    code = main(["run", str(suite), "--out", str(tmp_path / "results"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "neither torch-hub's" in err and "Traceback" not in err
    assert not (tmp_path / "results").exists()  # refused before the run directory exists
    suite = _tiny_suite(tmp_path, tmp_path / "absent.pth")
    code = main(["run", str(suite), "--out", str(tmp_path / "results"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "suite.metrics.weights" in err and "dinov2_vitl14_pretrain.pth" in err
    assert not (tmp_path / "results").exists()


def _tiny_suite(tmp_path, weights_file):
    from sgbench.models.dit import DiT, DiTConfig
    from sgbench.models.loading import save_sgbench_safetensors

    torch.manual_seed(0)
    cfg = DiTConfig(input_size=32, patch_size=8, in_channels=3, hidden_size=32, depth=2, num_heads=2,
                    num_classes=10, learn_sigma=False, routes=["0-1"])
    save_sgbench_safetensors(tmp_path / "dit.safetensors", DiT(cfg), parametrization="velocity")
    data = {
        "name": "tiny_dinov2",
        "device": "cpu",
        "model": {"checkpoint": "dit.safetensors"},
        "sampler": {"steps": 2, "batch_size": 4},
        "methods": [{"name": "unguided", "method": "none"}],
        "search": {"space": {"gamma_strong": [0.0], "gamma_weak": [0.5], "omega": [2.0]}},
        "metrics": {"extractor": "dinov2", "weights": str(weights_file), "reference": {"dataset": "shapes", "n": 16},
                    "n_samples": 8, "batch_size": 8, "bootstrap": 20},
        "report": {"sample_grid": 4},
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_sgbench_run_records_fd_dinov2_and_its_standard_error(tmp_path, weights, capsys):
    suite = _tiny_suite(tmp_path, weights["timm_st"])
    code = main(["run", str(suite), "--out", str(tmp_path / "results"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    with open(tmp_path / "results" / "tiny_dinov2" / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["trial_id"] for r in rows] == ["b-unguided", "s-0000"]
    for r in rows:
        assert r["status"] == "complete"
        for k in ("fd_dinov2", "precision_dinov2", "recall_dinov2"):
            assert float(r[k]) == float(r[k]) and float(r[k + "_se"]) >= 0, k
        assert float(r["fd_dinov2"]) > 0 and float(r["fd_dinov2_se"]) > 0
        assert "fid" not in r and "class_acc" not in r


def test_the_rehearsal_stand_in_loads_through_the_extractor(tmp_path):
    path = D.write_standin_weights(tmp_path / "dinov2_vitl14_pretrain.pth", seed=0)
    ext = get_extractor("dinov2", weights_path=str(path))
    assert ext.layout == "torch-hub" and ext.net.config == D.STANDIN_CONFIG
    assert ext.net.config.pos_grid == D.DINOV2_PRESETS["ViT-L/14"].pos_grid  # the real file's resize path
    feats = ext(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))["pool"]
    assert feats.shape == (2, 64) and torch.isfinite(feats).all()
    assert path.stat().st_size < 1_000_000


def test_the_vit_l14_preset_has_the_shapes_of_the_released_files():
    """timm's vit_large_patch14_dinov2 (518 px: a 37 x 37 grid) has exactly the preset's tensors;
    torch-hub's dinov2_vitl14_pretrain.pth holds the same plus mask_token [1, 1024]."""
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        state = timm.create_model("vit_large_patch14_dinov2", pretrained=False).state_dict()
        ours = D.DINOv2(D.DINOV2_PRESETS["ViT-L/14"]).state_dict()
    preset = D.config_from_state_dict(state, "timm")
    assert preset == D.DINOV2_PRESETS["ViT-L/14"] and preset.num_heads == 16
    assert D.detect_layout(state, preset) == "timm" and D.detect_layout({**state, "mask_token": 0}, preset) == "torch-hub"
    assert {k: tuple(v.shape) for k, v in state.items()} == {k: tuple(v.shape) for k, v in ours.items()}
    assert tuple(state["pos_embed"].shape) == (1, 1 + 37 * 37, 1024)


def test_rehearse_stands_in_for_a_missing_dinov2_weights_file(tmp_path, capsys):
    suite = _tiny_suite(tmp_path, tmp_path / "absent" / "dinov2_vitl14_pretrain.pth")
    code = main(["run", str(suite), "--rehearse", "--out", str(tmp_path / "results"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "tiny random DINOv2" in err and not (tmp_path / "absent").exists()
    run_dir = next((tmp_path / "results").iterdir())
    with open(run_dir / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(float(r["fd_dinov2"]) > 0 and float(r["fd_dinov2_se"]) >= 0 for r in rows)
