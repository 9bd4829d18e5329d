"""Task 't2i' through sgbench's training loop: a few steps, export, reload as a T2IDenoiser."""

import pytest
import torch

from sgbench.errors import UserError
from sgbench.t2i.model import load_t2i
from sgbench.train import parse_train_config, train


def _raw(tmp_path, **objective):
    return {
        "task": "t2i",
        "data": {"name": "shapes_world", "n_train": 16, "n_heldout": 8, "seed": 0, "image_size": 16},
        "model": {"arch": "T2I-tiny", "overrides": {"patch_size": 4}, "text_encoder": {"kind": "tiny", "dim": 16}},
        "objective": {"route_rate": 0.5, **objective},
        "train": {"steps": 3, "batch_size": 8, "lr": 1e-3, "ema_decay": 0.9, "device": "cpu", "log_every": 1,
                  "ckpt_every": 3},
        "output": {"dir": str(tmp_path / "run"), "export": str(tmp_path / "run" / "m.safetensors")},
    }


def test_t2i_task_trains_exports_and_reloads(tmp_path):
    summary = train(parse_train_config(_raw(tmp_path)), progress=False)
    assert summary["steps"] == 3 and summary["heldout_fm_cond_gamma0.5"] > 0
    den, enc, meta = load_t2i(tmp_path / "run" / "m.safetensors")
    assert meta["family"] == "t2i" and meta["config"]["in_channels"] == 3 and meta["image_size"] == 16
    assert den.latent_shape == (3, 16, 16) and enc.dim == 16
    c = enc.encode(["a photo of a red square"])
    v = den(torch.randn(1, 3, 16, 16), 0.5, c, gamma=0.5, generator=[torch.Generator().manual_seed(0)])
    assert v.shape == (1, 3, 16, 16) and torch.isfinite(v).all()


def test_t2i_kept_checkpoint_exports_like_the_final_model(tmp_path):
    from sgbench.train.checkpoint import ckpt_dir, kept_name
    from sgbench.train.export import export_checkpoint

    raw = _raw(tmp_path)
    raw["train"].update(keep_steps=[3])
    train(parse_train_config(raw), progress=False)
    out = export_checkpoint(ckpt_dir(tmp_path / "run") / kept_name(3), tmp_path / "step3.safetensors")
    den3, enc3, meta3 = load_t2i(out)
    den, enc, meta = load_t2i(tmp_path / "run" / "m.safetensors")
    assert meta3["text_encoder"] == meta["text_encoder"] and meta3["train"]["steps"] == 3
    c = enc.encode(["a photo of two circles"])
    x = torch.randn(1, 3, 16, 16)
    torch.testing.assert_close(den3(x, 0.4, c), den(x, 0.4, c))  # step 3 is the final step: same EMA weights


def test_t2i_task_config_errors(tmp_path):
    raw = _raw(tmp_path, text_dropout=1.5)
    with pytest.raises(UserError, match="text_dropout"):
        train(parse_train_config(raw), progress=False)
    raw = _raw(tmp_path)
    raw["model"]["overrides"] = {"routes": []}
    with pytest.raises(UserError, match="route_rate"):
        train(parse_train_config(raw), progress=False)
