"""Training loop: loss goes down, resume is exact, early checkpoints are kept, export loads."""

import json

import numpy as np
import pytest
import torch

from sgbench.errors import UserError
from sgbench.train import parse_train_config, train
from sgbench.train.checkpoint import kept_checkpoints, load_checkpoint
from sgbench.train.export import read_sgbench_metadata


def tiny_config(tmp_path, **train_over):
    raw = {
        "task": "class_image",
        "data": {"name": "shapes", "n_train": 64, "n_heldout": 16},
        "model": {"patch_size": 8, "hidden_size": 32, "depth": 2, "num_heads": 2, "routes": ["0-0"]},
        "objective": {"time_sampling": "logit_normal", "route_rate": 0.5, "label_dropout": 0.2},
        "train": {"steps": 6, "batch_size": 8, "lr": 1e-3, "ema_decay": 0.9, "grad_clip": 1.0,
                  "log_every": 1, "ckpt_every": 3, "keep_every": 100, "precision": "fp32", **train_over},
        "output": {"dir": str(tmp_path / "run")},
    }
    return raw


def run(raw):
    return train(parse_train_config(raw), raw, progress=False)


def test_loss_decreases(tmp_path):
    raw = tiny_config(tmp_path, steps=1)
    before = run(raw)["heldout_fm_cond_gamma0"]
    raw["train"]["steps"] = 40
    raw["train"]["lr"] = 3e-3
    raw["train"]["ema_decay"] = 0.0  # evaluate the raw weights
    raw["output"]["dir"] = str(tmp_path / "run40")
    after = run(raw)["heldout_fm_cond_gamma0"]
    assert after < 0.8 * before, (before, after)  # 1.466 -> 1.087 measured


def test_resume_continues_exactly(tmp_path):
    straight = tiny_config(tmp_path, steps=6)
    straight["output"]["dir"] = str(tmp_path / "straight")
    run(straight)
    part = tiny_config(tmp_path, steps=3)
    run(part)
    part["train"]["steps"] = 6
    run(part)  # resumes from latest.pt at step 3
    a = load_checkpoint(tmp_path / "straight/checkpoints/latest.pt")
    b = load_checkpoint(tmp_path / "run/checkpoints/latest.pt")
    assert a["step"] == b["step"] == 6
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
        assert torch.equal(a["ema"][k], b["ema"][k]), k
    steps = [json.loads(line)["step"] for line in open(tmp_path / "run/log.jsonl")]
    assert steps == [1, 2, 3, 4, 5, 6]
    part["train"]["steps"] = 4
    with pytest.raises(UserError, match="at step 6, beyond train.steps 4"):
        run(part)


def test_early_checkpoints_are_kept(tmp_path):
    raw = tiny_config(tmp_path, steps=10, ckpt_every=5, keep_every=4, keep_steps=[1])
    run(raw)
    names = [p.name for p in kept_checkpoints(tmp_path / "run")]
    assert names == ["step_0000001.pt", "step_0000004.pt", "step_0000008.pt"]
    early = load_checkpoint(tmp_path / "run/checkpoints/step_0000001.pt")
    latest = load_checkpoint(tmp_path / "run/checkpoints/latest.pt")
    assert early["step"] == 1 and latest["step"] == 10
    assert set(early) >= {"model", "ema", "opt", "step", "config", "train_config"}
    assert early["train_config"] == raw and early["config"]["config"]["routes"] == ["0-0"]
    # plain containers only: loaders can use torch.load(weights_only=True)
    torch.load(tmp_path / "run/checkpoints/step_0000004.pt", weights_only=True)


def test_export_round_trip(tmp_path):
    from sgbench.models.dit import DiT, DiTConfig

    raw = tiny_config(tmp_path, steps=3)
    raw["output"]["export"] = str(tmp_path / "model.safetensors")
    run(raw)
    meta = read_sgbench_metadata(tmp_path / "model.safetensors")
    assert meta["family"] == "dit" and meta["parametrization"] == "velocity"
    assert meta["image_size"] == 32 and meta["dataset"] == "shapes"
    cfg = meta["config"]
    assert cfg["routes"] == ["0-0"] and cfg["num_classes"] == 10 and cfg["class_dropout_prob"] == 0.2
    from safetensors.torch import load_file

    net = DiT(DiTConfig(**cfg))
    net.load_state_dict(load_file(str(tmp_path / "model.safetensors")), strict=True)
    ema = load_checkpoint(tmp_path / "run/checkpoints/latest.pt")["ema"]
    for k, v in net.state_dict().items():
        assert torch.equal(v, ema[k]), k


def test_export_loads_through_load_denoiser(tmp_path):
    loading = pytest.importorskip("sgbench.models.loading")
    raw = tiny_config(tmp_path, steps=2)
    raw["output"]["export"] = str(tmp_path / "m.safetensors")
    run(raw)
    den = loading.load_denoiser(loading.ModelSpec(checkpoint=str(tmp_path / "m.safetensors")))
    assert den.num_classes == 10 and tuple(den.latent_shape) == (3, 32, 32)
    x = torch.randn(2, 3, 32, 32)
    v = den(x, torch.tensor([0.3, 0.6]), torch.tensor([1, 10]))
    assert v.shape == x.shape and torch.isfinite(v).all()


def test_bf16_autocast_on_cpu_runs(tmp_path):
    s = run(tiny_config(tmp_path, steps=2, precision="bf16"))
    assert np.isfinite(s["heldout_fm_cond_gamma0"])


def test_classifier_task_exports_loadable_classifier(tmp_path):
    from sgbench.metrics.classifier import load_classifier

    raw = {
        "task": "classifier",
        "data": {"name": "shapes", "n_train": 64, "n_heldout": 20},
        "model": {"width": 8, "feature_dim": 16},
        "train": {"steps": 4, "batch_size": 16, "lr": 1e-3, "ema_decay": 0.0, "log_every": 2},
        "output": {"dir": str(tmp_path / "clf"), "export": str(tmp_path / "clf.safetensors")},
    }
    s = run(raw)
    assert s["heldout_n"] == 20 and 0.0 <= s["heldout_accuracy"] <= 1.0
    clf = load_classifier(tmp_path / "clf.safetensors")
    assert clf.config.feature_dim == 16 and clf.config.num_classes == 10
    assert clf(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape == (2, 10)


def test_maskdit_trains_with_mae_loss(tmp_path):
    pytest.importorskip("sgbench.models.maskdit")
    raw = tiny_config(tmp_path, steps=2)
    raw["model"] = {"family": "maskdit", "patch_size": 8, "hidden_size": 32, "depth": 2, "num_heads": 2,
                    "extra": {"decoder_hidden_size": 16, "decoder_depth": 1, "decoder_num_heads": 2}}
    raw["objective"] = {"mask_ratio": 0.5, "mae_lambda": 0.5, "label_dropout": 0.1}
    raw["output"]["export"] = str(tmp_path / "mask.safetensors")
    s = run(raw)
    log = [json.loads(line) for line in open(tmp_path / "run/log.jsonl")]
    assert all("fm" in r and "mae" in r and r["mae"] > 0 for r in log)
    assert "heldout_fm_cond_gamma0.5" in s
    meta = read_sgbench_metadata(tmp_path / "mask.safetensors")
    assert meta["family"] == "maskdit" and meta["config"]["decoder_depth"] == 1


def test_export_kept_step_through_cli(tmp_path):
    import yaml

    from sgbench.cli import main as cli_main

    raw = tiny_config(tmp_path, steps=4, keep_every=2)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    assert cli_main(["train", str(cfg), "--no-progress"]) == 0
    out = tmp_path / "early.safetensors"
    assert cli_main(["train", str(cfg), "--export-step", "2", str(out)]) == 0
    meta = read_sgbench_metadata(out)
    assert meta["train"]["steps"] == 2 and meta["train"]["weights"] == "ema"
    from safetensors.torch import load_file

    ema2 = load_checkpoint(tmp_path / "run/checkpoints/step_0000002.pt")["ema"]
    assert all(torch.equal(v, ema2[k]) for k, v in load_file(str(out)).items())
    assert cli_main(["train", str(cfg), "--export-step", "3", str(out)]) == 2  # 3 was not kept
