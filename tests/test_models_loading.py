"""Checkpoint round trips for every supported layout, written here from tiny random models.

Layouts imitate the real files: DiT/SiT `.pt` (plain state dict, or train files with an argparse
Namespace under 'args'), CompVis/tread ({model,ema}_state_dict with EDMPrecond's 'model.' prefix),
MaskDiT ({'model','ema','opt','args'}, 'model.' prefix), sgbench train `.pt` and safetensors.
"""

import argparse

import pytest
import torch

from sgbench.errors import UserError
from sgbench.models import (
    DDPMDenoiser,
    DiT,
    EDMDenoiser,
    MaskDiT,
    ModelSpec,
    RFDenoiser,
    VelocityDenoiser,
    dit_config,
    load_denoiser,
    maskdit_config,
    read_sgbench_metadata,
    save_sgbench_safetensors,
    sgbench_metadata,
)
from sgbench.models.loading import read_checkpoint

SMALL = dict(hidden_size=32, depth=4, num_heads=2)  # spec.config overrides for the 'DiT-S/2' preset
SMALL_MASK = dict(hidden_size=32, depth=2, num_heads=2, decoder_hidden_size=16, decoder_depth=2, decoder_num_heads=2)


def randomize(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model.eval()


def tiny_dit(learn_sigma=True, num_classes=5, routes=(), seed=0, **kw):
    cfg = dit_config("DiT-S/2", input_size=8, num_classes=num_classes, learn_sigma=learn_sigma, routes=routes, **{**SMALL, **kw})
    return randomize(DiT(cfg), seed)


def tiny_maskdit(seed=0, mask_token=True):
    return randomize(MaskDiT(maskdit_config("MaskDiT-S/2", input_size=8, num_classes=5, mask_token=mask_token, **SMALL_MASK)), seed)


def prefixed(sd, prefix="model."):
    return {prefix + k: v for k, v in sd.items()}


X = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(9))
T = torch.tensor([0.3, 0.7])
Y = torch.tensor([1, 5])  # 5 = null


def same_outputs(den, backbone, gamma=0.0):
    keep = torch.tensor([[0, 2, 4, 6, 8, 10, 12, 14], [1, 3, 5, 7, 9, 11, 13, 15]]) if gamma else None
    ref = type(den)(backbone, den.num_classes, den.latent_shape, **(
        dict(sigma_min=den.sigma_min, sigma_max=den.sigma_max) if isinstance(den, EDMDenoiser) else {}))
    return torch.equal(den(X, T, Y, gamma=gamma, keep_idx=keep), ref(X, T, Y, gamma=gamma, keep_idx=keep))


# ---- DiT / SiT ------------------------------------------------------------------------------

def test_sit_plain_state_dict(tmp_path):
    m = tiny_dit()
    torch.save(m.state_dict(), tmp_path / "SiT.pt")
    den = load_denoiser(ModelSpec(checkpoint=str(tmp_path / "SiT.pt"), arch="SiT-S/2", config=SMALL))
    assert isinstance(den, VelocityDenoiser)
    c = den.backbone.config
    assert (c.learn_sigma, c.num_classes, c.input_size, c.in_channels) == (True, 5, 8, 4)  # all inferred
    assert den.latent_shape == (4, 8, 8) and den.num_classes == 5 and not den.training
    assert same_outputs(den, m)


def test_learn_sigma_false_is_inferred_and_routes_come_from_the_spec(tmp_path):
    m = tiny_dit(learn_sigma=False)
    torch.save(m.state_dict(), tmp_path / "m.pt")
    den = load_denoiser(ModelSpec(checkpoint=str(tmp_path / "m.pt"), arch="SiT-S/2", config=SMALL, routes=["1-2"]))
    assert den.backbone.config.learn_sigma is False and [str(r) for r in den.backbone.routes] == ["1-2"]
    routed = tiny_dit(learn_sigma=False, routes=["1-2"])
    assert same_outputs(den, routed, gamma=0.5)


def test_dit_train_file_needs_trust_and_picks_ema(tmp_path):
    ema, raw = tiny_dit(seed=1), tiny_dit(seed=2)
    path = tmp_path / "0050000.pt"
    torch.save({"model": raw.state_dict(), "ema": ema.state_dict(), "opt": {}, "args": argparse.Namespace(model="SiT-S/2")}, path)
    with pytest.raises(UserError, match=r"argparse\.Namespace.*does not unpickle") as e:
        load_denoiser(ModelSpec(checkpoint=str(path), arch="SiT-S/2", config=SMALL))
    assert "\n" not in str(e.value) and "--trust" not in str(e.value) and "trust_checkpoint" not in str(e.value)
    den = load_denoiser(ModelSpec(checkpoint=str(path), arch="SiT-S/2", config=SMALL, trust_checkpoint=True))
    assert same_outputs(den, ema)
    den = load_denoiser(ModelSpec(checkpoint=str(path), arch="SiT-S/2", config=SMALL, trust_checkpoint=True, use_ema=False))
    assert same_outputs(den, raw)


def test_wrapper_prefixes_are_stripped(tmp_path):
    m = tiny_dit()
    torch.save(prefixed(prefixed(m.state_dict(), "_orig_mod."), "module."), tmp_path / "ddp.pt")
    den = load_denoiser(ModelSpec(checkpoint=str(tmp_path / "ddp.pt"), arch="SiT-S/2", config=SMALL))
    assert same_outputs(den, m)


def test_dit_checkpoint_is_ddpm_by_default(tmp_path):
    m = tiny_dit()
    torch.save(m.state_dict(), tmp_path / "DiT.pt")
    den = load_denoiser(ModelSpec(checkpoint=str(tmp_path / "DiT.pt"), arch="DiT-S/2", config=SMALL))
    assert isinstance(den, DDPMDenoiser) and same_outputs(den, m)
    den = load_denoiser(ModelSpec(checkpoint=str(tmp_path / "DiT.pt"), arch="DiT-S/2", config=SMALL, parametrization="velocity"))
    assert isinstance(den, VelocityDenoiser)


# ---- CompVis/tread ---------------------------------------------------------------------------

@pytest.mark.parametrize("param,cls", [("edm", EDMDenoiser), ("rf", RFDenoiser)])
def test_tread_checkpoint(tmp_path, param, cls):
    ema, raw = tiny_dit(learn_sigma=False, seed=3), tiny_dit(learn_sigma=False, seed=4)
    path = tmp_path / "step_400000.pt"
    torch.save({"model_state_dict": prefixed(raw.state_dict()), "ema_state_dict": prefixed(ema.state_dict()),
                "optimizer_state_dict": {"state": {}, "param_groups": []}, "step": 400000}, path)
    with pytest.raises(UserError, match="set parametrization to edm or rf"):
        load_denoiser(ModelSpec(checkpoint=str(path), arch="DiT-S/2", config=SMALL))
    den = load_denoiser(ModelSpec(checkpoint=str(path), arch="DiT-S/2", config=SMALL, parametrization=param, routes=["1-2"]))
    assert isinstance(den, cls) and read_checkpoint(path).fmt == "tread"
    routed = tiny_dit(learn_sigma=False, routes=["1-2"], seed=3)
    assert same_outputs(den, routed) and same_outputs(den, routed, gamma=0.5)


# ---- MaskDiT ---------------------------------------------------------------------------------

def test_maskdit_checkpoint(tmp_path):
    ema, raw = tiny_maskdit(seed=5), tiny_maskdit(seed=6)
    path = tmp_path / "imagenet256-guidance.pt"
    torch.save({"model": prefixed(raw.state_dict()), "ema": prefixed(ema.state_dict()), "opt": {},
                "args": argparse.Namespace(config="configs/train/imagenet256-latent.yaml")}, path)
    spec = dict(checkpoint=str(path), arch="MaskDiT-S/2", config=SMALL_MASK)
    with pytest.raises(UserError, match="does not unpickle"):
        load_denoiser(ModelSpec(**spec))
    den = load_denoiser(ModelSpec(**spec, trust_checkpoint=True))
    assert isinstance(den, EDMDenoiser) and isinstance(den.backbone, MaskDiT)  # EDM is MaskDiT's default
    assert den.backbone.config.num_classes == 5 and den.backbone.config.mask_token
    assert same_outputs(den, ema) and same_outputs(den, ema, gamma=0.5)
    # an EMA-only file (tensors only) loads without trust; the family is recognised from the keys
    torch.save({"ema": prefixed(ema.state_dict())}, tmp_path / "ema.pt")
    den = load_denoiser(ModelSpec(checkpoint=str(tmp_path / "ema.pt"), arch="DiT-S/2", family="maskdit", config=SMALL_MASK))
    assert same_outputs(den, ema)
    with pytest.raises(UserError, match="no routes"):
        load_denoiser(ModelSpec(**spec, trust_checkpoint=True, routes=["1-2"]))


def test_maskdit_without_mask_token(tmp_path):
    m = tiny_maskdit(mask_token=False)
    torch.save({"ema": prefixed(m.state_dict())}, tmp_path / "m.pt")
    den = load_denoiser(ModelSpec(checkpoint=str(tmp_path / "m.pt"), arch="MaskDiT-S/2", config=SMALL_MASK))
    assert den.backbone.mask_token is None and same_outputs(den, m, gamma=0.5)


# ---- sgbench's own files ---------------------------------------------------------------------

@pytest.mark.parametrize("maker", [lambda: tiny_dit(routes=["1-2"]), tiny_maskdit])
def test_sgbench_safetensors_need_only_the_path(tmp_path, maker):
    m = maker()
    path = save_sgbench_safetensors(tmp_path / "sub" / "model.safetensors", m, "velocity", {"train_steps": 7})
    meta = read_sgbench_metadata(path)
    assert meta["family"] == m.family and meta["parametrization"] == "velocity" and meta["train_steps"] == 7
    den = load_denoiser(ModelSpec(checkpoint=str(path)))
    assert isinstance(den, VelocityDenoiser) and type(den.backbone) is type(m)
    assert den.backbone.config == m.config
    assert same_outputs(den, m) and same_outputs(den, m, gamma=0.5)
    assert not list((tmp_path / "sub").glob(".*tmp*"))  # atomic write left nothing behind


def test_sgbench_safetensors_from_a_denoiser_and_spec_overrides(tmp_path):
    m = tiny_dit(routes=["1-2"])
    den = load_denoiser(ModelSpec(arch="SiT-S/2", config=SMALL, num_classes=5, input_size=8, routes=["1-2"], parametrization="rf"))
    den.backbone.load_state_dict(m.state_dict())
    path = save_sgbench_safetensors(tmp_path / "m.safetensors", den)
    assert read_sgbench_metadata(path)["parametrization"] == "rf"
    den2 = load_denoiser(ModelSpec(checkpoint=str(path), routes=["0-3"]))
    assert isinstance(den2, RFDenoiser) and [str(r) for r in den2.backbone.routes] == ["0-3"]
    with pytest.raises(UserError, match="holds a dit model, not maskdit"):
        load_denoiser(ModelSpec(checkpoint=str(path), family="maskdit"))


def test_sgbench_train_pt(tmp_path):
    ema, raw = tiny_dit(seed=7, routes=["1-2"]), tiny_dit(seed=8, routes=["1-2"])
    path = tmp_path / "train.pt"
    torch.save({"model": raw.state_dict(), "ema": ema.state_dict(), "config": sgbench_metadata(ema, "velocity"), "step": 3}, path)
    den = load_denoiser(ModelSpec(checkpoint=str(path)))  # weights_only=True suffices
    assert same_outputs(den, ema, gamma=0.5)
    assert same_outputs(load_denoiser(ModelSpec(checkpoint=str(path), use_ema=False)), raw, gamma=0.5)
    torch.save({"model": raw.state_dict(), "ema": None, "opt": {}, "step": 3, "config": sgbench_metadata(raw, "velocity")}, path)
    assert same_outputs(load_denoiser(ModelSpec(checkpoint=str(path))), raw)  # trained without EMA


def test_family_aliases_and_unset_fields(tmp_path):
    m = tiny_dit(learn_sigma=False)
    torch.save({"model_state_dict": prefixed(m.state_dict()), "ema_state_dict": prefixed(m.state_dict())}, tmp_path / "t.pt")
    spec = ModelSpec(checkpoint=str(tmp_path / "t.pt"), arch="DiT-S/2", family="tread", parametrization="rf", config=SMALL)
    assert spec.family == "dit" and ModelSpec(arch="SiT-S/2", family=None, parametrization=None).parametrization == "auto"
    assert ModelSpec(arch="SiT-S/2", learn_sigma="auto").learn_sigma is None
    assert same_outputs(load_denoiser(spec), m)


def test_foreign_safetensors_need_an_arch(tmp_path):
    from safetensors.torch import save_file

    m = tiny_dit()
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(tmp_path / "sit.safetensors"))
    with pytest.raises(UserError, match="set arch"):
        load_denoiser(ModelSpec(checkpoint=str(tmp_path / "sit.safetensors")))
    assert same_outputs(load_denoiser(ModelSpec(checkpoint=str(tmp_path / "sit.safetensors"), arch="SiT-S/2", config=SMALL)), m)


def test_random_init_from_arch():
    den = load_denoiser(ModelSpec(arch="SiT-S/8", input_size=16, num_classes=3, routes=["2-8"]))
    assert den.num_tokens == 4 and den.backbone.config.depth == 12 and den.parametrization == "velocity"


# ---- bad input ---------------------------------------------------------------------------------

def one_line_error(spec_kwargs, match):
    with pytest.raises(UserError, match=match) as e:
        load_denoiser(ModelSpec(**spec_kwargs))
    assert "\n" not in str(e.value)
    return str(e.value)


def test_mismatches_name_keys_and_expected_architecture(tmp_path):
    sd = tiny_dit().state_dict()
    path = tmp_path / "m.pt"
    torch.save(sd, path)
    base = dict(checkpoint=str(path), arch="SiT-S/2", parametrization="velocity")
    msg = one_line_error({**base, "config": {**SMALL, "depth": 6}}, r"missing blocks\.4\.")
    assert "SiT-S/2 = DiT(depth 6, hidden 32" in msg and "(+" in msg
    msg = one_line_error({**base, "config": {**SMALL, "depth": 3}}, r"unexpected blocks\.3\.")
    one_line_error({**base, "config": SMALL, "num_classes": 1000}, r"y_embedder\.embedding_table\.weight \(6, 32\) vs \(1001, 32\).*5 classes in the checkpoint")
    torch.save(tiny_dit(patch_size=4).state_dict(), path)
    one_line_error({**base, "config": SMALL}, r"x_embedder\.proj\.weight \(32, 4, 4, 4\) vs \(32, 4, 2, 2\).*patch size 4")
    torch.save(sd, path)
    one_line_error({**base, "config": {**SMALL, "hidden_size": 64}}, r"shapes .*\(32, 4, 2, 2\) vs \(64, 4, 2, 2\).*hidden size 32 in the checkpoint")
    one_line_error({**base, "config": SMALL, "learn_sigma": False}, r"final_layer\.linear\.weight \(32, 32\) vs \(16, 32\)")
    one_line_error({**base, "arch": "MaskDiT-S/2", "config": SMALL_MASK}, r"does not fit MaskDiT-S/2 = MaskDiT\(.*missing")


def test_unreadable_files(tmp_path):
    one_line_error(dict(checkpoint=str(tmp_path / "nope.pt"), arch="SiT-S/2"), "checkpoint not found")
    (tmp_path / "junk.pt").write_bytes(b"\x00not a checkpoint" * 10)
    one_line_error(dict(checkpoint=str(tmp_path / "junk.pt"), arch="SiT-S/2"), "cannot read checkpoint")
    good = tmp_path / "good.pt"
    torch.save(tiny_dit().state_dict(), good)
    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[:5000])
    one_line_error(dict(checkpoint=str(tmp_path / "cut.pt"), arch="SiT-S/2"), "cannot read checkpoint")
    (tmp_path / "junk.safetensors").write_bytes(b"garbage")
    one_line_error(dict(checkpoint=str(tmp_path / "junk.safetensors")), "cannot read safetensors")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    one_line_error(dict(checkpoint=str(tmp_path / "list.pt"), arch="SiT-S/2"), "not a state dict")
    torch.save({"step": 3, "lr": 0.1}, tmp_path / "dict.pt")
    one_line_error(dict(checkpoint=str(tmp_path / "dict.pt"), arch="SiT-S/2"), "no recognised state dict")
    with pytest.raises(UserError, match="checkpoint path or an arch"):
        ModelSpec()
    with pytest.raises(UserError, match="parametrization must be"):
        ModelSpec(arch="SiT-S/2", parametrization="eps")
    with pytest.raises(UserError, match="family must be"):
        ModelSpec(arch="SiT-S/2", family="unet")
