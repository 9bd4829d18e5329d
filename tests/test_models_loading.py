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
    den = load_denoiser(ModelSpec(checkpoint=str(tmp_path / "SiT.pt"), arch="SiT-S/2", config=SMALL, parametrization="velocity"))
    assert isinstance(den, VelocityDenoiser)
    c = den.backbone.config
    assert (c.learn_sigma, c.num_classes, c.input_size, c.in_channels) == (True, 5, 8, 4)  # all inferred
    assert den.latent_shape == (4, 8, 8) and den.num_classes == 5 and not den.training
    assert same_outputs(den, m)


def test_learn_sigma_false_is_inferred_and_routes_come_from_the_spec(tmp_path):
    m = tiny_dit(learn_sigma=False)
    torch.save(m.state_dict(), tmp_path / "m.pt")
    den = load_denoiser(ModelSpec(checkpoint=str(tmp_path / "m.pt"), arch="SiT-S/2", config=SMALL, routes=["1-2"],
                                  parametrization="velocity"))
    assert den.backbone.config.learn_sigma is False and [str(r) for r in den.backbone.routes] == ["1-2"]
    routed = tiny_dit(learn_sigma=False, routes=["1-2"])
    assert same_outputs(den, routed, gamma=0.5)


def sit_args(**kw):
    """willisma/SiT train.py's Namespace (transport arguments included)."""
    return argparse.Namespace(model="SiT-S/2", image_size=256, num_classes=5, global_batch_size=256, path_type="Linear",
                              prediction="velocity", loss_weight=None, sample_eps=1e-3, train_eps=1e-5, **kw)


def dit_args():
    """facebookresearch/DiT train.py's Namespace: no transport arguments, --model DiT-*."""
    return argparse.Namespace(data_path="/in", results_dir="results", model="DiT-S/2", image_size=256, num_classes=5,
                              epochs=1400, global_batch_size=256, global_seed=0, vae="ema", num_workers=4,
                              log_every=100, ckpt_every=50000)


class NotAllowed:  # any pickled class other than argparse.Namespace
    pass


def test_dit_train_file_loads_without_trust_and_picks_ema(tmp_path):
    ema, raw = tiny_dit(seed=1), tiny_dit(seed=2)
    path = tmp_path / "0050000.pt"
    torch.save({"model": raw.state_dict(), "ema": ema.state_dict(), "opt": {}, "args": sit_args()}, path)
    den = load_denoiser(ModelSpec(checkpoint=str(path), arch="SiT-S/2", config=SMALL))  # Namespace: no trust needed
    assert isinstance(den, VelocityDenoiser) and same_outputs(den, ema)
    den = load_denoiser(ModelSpec(checkpoint=str(path), arch="SiT-S/2", config=SMALL, use_ema=False))
    assert same_outputs(den, raw)
    # other pickled objects still need trust (they could run code when unpickled)
    torch.save({"model": raw.state_dict(), "ema": ema.state_dict(), "opt": {}, "args": NotAllowed()}, path)
    with pytest.raises(UserError, match=r"NotAllowed besides tensors.*does not unpickle") as e:
        load_denoiser(ModelSpec(checkpoint=str(path), arch="SiT-S/2", config=SMALL, parametrization="velocity"))
    assert "\n" not in str(e.value) and "--trust" not in str(e.value) and "trust_checkpoint" not in str(e.value)
    den = load_denoiser(ModelSpec(checkpoint=str(path), arch="SiT-S/2", config=SMALL, parametrization="velocity",
                                  trust_checkpoint=True))
    assert same_outputs(den, ema)


def test_wrapper_prefixes_are_stripped(tmp_path):
    m = tiny_dit()
    torch.save(prefixed(prefixed(m.state_dict(), "_orig_mod."), "module."), tmp_path / "ddp.pt")
    den = load_denoiser(ModelSpec(checkpoint=str(tmp_path / "ddp.pt"), arch="SiT-S/2", config=SMALL, parametrization="velocity"))
    assert same_outputs(den, m)


def test_dit_train_file_records_ddpm_a_plain_dit_state_dict_records_nothing(tmp_path):
    m = tiny_dit()
    torch.save({"model": m.state_dict(), "ema": m.state_dict(), "opt": {}, "args": dit_args()}, tmp_path / "0050000.pt")
    den = load_denoiser(ModelSpec(checkpoint=str(tmp_path / "0050000.pt"), arch="DiT-S/2", config=SMALL))
    assert isinstance(den, DDPMDenoiser) and same_outputs(den, m)
    torch.save(m.state_dict(), tmp_path / "DiT-XL-2-256x256.pt")  # the release: weights only
    spec = dict(checkpoint=str(tmp_path / "DiT-XL-2-256x256.pt"), arch="DiT-S/2", config=SMALL)
    one_line_error(spec, "does not record how it was trained")  # no guess from the arch name
    den = load_denoiser(ModelSpec(**spec, parametrization="ddpm"))
    assert isinstance(den, DDPMDenoiser) and same_outputs(den, m)


# ---- CompVis/tread ---------------------------------------------------------------------------

@pytest.mark.parametrize("param,cls", [("edm", EDMDenoiser), ("rf", RFDenoiser)])
def test_tread_checkpoint(tmp_path, param, cls):
    ema, raw = tiny_dit(learn_sigma=False, seed=3), tiny_dit(learn_sigma=False, seed=4)
    path = tmp_path / "step_400000.pt"
    torch.save({"model_state_dict": prefixed(raw.state_dict()), "ema_state_dict": prefixed(ema.state_dict()),
                "optimizer_state_dict": {"state": {}, "param_groups": []}, "step": 400000}, path)
    msg = one_line_error(dict(checkpoint=str(path), arch="DiT-S/2", config=SMALL), "CompVis/tread training file")
    assert "edm (CompVis/tread train.py" in msg and "rf (CompVis/tread rf.py)" in msg
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
    den = load_denoiser(ModelSpec(**spec))  # its Namespace needs no trust
    assert isinstance(den, EDMDenoiser) and isinstance(den.backbone, MaskDiT)  # the train format records EDM
    assert den.backbone.config.num_classes == 5 and den.backbone.config.mask_token
    assert same_outputs(den, ema) and same_outputs(den, ema, gamma=0.5)
    assert isinstance(load_denoiser(ModelSpec(**spec, parametrization="edm")), EDMDenoiser)  # agreeing: fine
    msg = one_line_error({**spec, "parametrization": "velocity"}, "records parametrization edm")
    assert "Anima-Lab/MaskDiT train-file format" in msg and "but velocity was given" in msg
    # an EMA-only file: same layout, but without its train args it records nothing
    torch.save({"ema": prefixed(ema.state_dict())}, tmp_path / "ema.pt")
    ema_spec = dict(checkpoint=str(tmp_path / "ema.pt"), arch="DiT-S/2", family="maskdit", config=SMALL_MASK)
    one_line_error(ema_spec, "does not record how it was trained")
    assert same_outputs(load_denoiser(ModelSpec(**ema_spec, parametrization="edm")), ema)
    with pytest.raises(UserError, match="no routes"):
        load_denoiser(ModelSpec(**spec, routes=["1-2"]))


def test_maskdit_without_mask_token(tmp_path):
    m = tiny_maskdit(mask_token=False)
    torch.save({"ema": prefixed(m.state_dict())}, tmp_path / "m.pt")
    den = load_denoiser(ModelSpec(checkpoint=str(tmp_path / "m.pt"), arch="MaskDiT-S/2", config=SMALL_MASK, parametrization="edm"))
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
    den2 = load_denoiser(ModelSpec(checkpoint=str(path), routes=["1 - 2"]))  # agrees with the record
    assert isinstance(den2, RFDenoiser) and [str(r) for r in den2.backbone.routes] == ["1-2"]
    # the file records its routes (invisible in the weights): a different value is an error, not an override
    with pytest.raises(UserError, match=r"records routes=\['1-2'\], but \['0-3'\] was given"):
        load_denoiser(ModelSpec(checkpoint=str(path), routes=["0-3"]))
    with pytest.raises(UserError, match="records num_classes=5, but 7 was given"):
        load_denoiser(ModelSpec(checkpoint=str(path), num_classes=7))
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
    spec = dict(checkpoint=str(tmp_path / "sit.safetensors"), arch="SiT-S/2", config=SMALL)
    one_line_error(spec, r"\(a safetensors file\) does not record")
    assert same_outputs(load_denoiser(ModelSpec(**spec, parametrization="velocity")), m)


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


# ---- parametrization: what the file records wins; nothing is guessed ---------------------------

def test_recorded_parametrization_wins_and_an_agreeing_value_is_fine(tmp_path):
    m = tiny_dit(routes=["1-2"])
    path = save_sgbench_safetensors(tmp_path / "m.safetensors", m, "rf")
    assert isinstance(load_denoiser(ModelSpec(checkpoint=str(path))), RFDenoiser)
    assert isinstance(load_denoiser(ModelSpec(checkpoint=str(path), parametrization="rf")), RFDenoiser)
    # sgbench train .pt files record it in their 'config' entry
    torch.save({"model": m.state_dict(), "ema": None, "opt": {}, "step": 1, "config": sgbench_metadata(m, "velocity")},
               tmp_path / "t.pt")
    assert isinstance(load_denoiser(ModelSpec(checkpoint=str(tmp_path / "t.pt"), parametrization="velocity")), VelocityDenoiser)


@pytest.mark.parametrize("given", ["velocity", "edm", "ddpm"])
def test_an_explicit_value_contradicting_the_record_is_an_error_naming_both(tmp_path, given):
    path = save_sgbench_safetensors(tmp_path / "m.safetensors", tiny_dit(), "rf")
    msg = one_line_error(dict(checkpoint=str(path), parametrization=given), "records parametrization rf")
    assert f"but {given} was given" in msg and "sgbench metadata" in msg


def test_no_record_and_no_value_lists_every_choice_and_its_training_code(tmp_path):
    torch.save(tiny_dit().state_dict(), tmp_path / "m.pt")
    msg = one_line_error(dict(checkpoint=str(tmp_path / "m.pt"), arch="SiT-S/2", config=SMALL),
                         "a plain state dict.*does not record how it was trained")
    for part in ("edm (CompVis/tread train.py, Anima-Lab/MaskDiT)", "rf (CompVis/tread rf.py)",
                 "velocity (willisma/SiT, sgbench train)", "ddpm (facebookresearch/DiT)", "model.parametrization",
                 "--parametrization", "sgbench convert"):
        assert part in msg, part


def test_sit_train_args_record_velocity_and_refuse_other_transports(tmp_path):
    m = tiny_dit()
    path = tmp_path / "0400000.pt"
    torch.save({"model": m.state_dict(), "ema": m.state_dict(), "opt": {}, "args": sit_args()}, path)
    spec = dict(checkpoint=str(path), arch="SiT-S/2", config=SMALL)
    assert isinstance(load_denoiser(ModelSpec(**spec, parametrization="velocity")), VelocityDenoiser)
    msg = one_line_error({**spec, "parametrization": "rf"}, "records parametrization velocity")
    assert "willisma/SiT train args" in msg
    args = sit_args()
    args.path_type, args.prediction = "GVP", "noise"
    torch.save({"model": m.state_dict(), "ema": m.state_dict(), "opt": {}, "args": args}, path)
    one_line_error(spec, "path_type 'GVP' and prediction 'noise'.*Linear path with velocity")
    # a train file whose args are neither SiT's nor DiT's records nothing
    torch.save({"model": m.state_dict(), "ema": m.state_dict(), "opt": {}, "args": argparse.Namespace(lr=1e-4)}, path)
    one_line_error(spec, "DiT/SiT-style train file.*does not record")


def test_check_model_spec_reads_no_weights(tmp_path, monkeypatch):
    from sgbench.models import loading

    m = tiny_dit()
    torch.save({"model_state_dict": prefixed(m.state_dict())}, tmp_path / "tread.pt")
    path = save_sgbench_safetensors(tmp_path / "m.safetensors", m, "velocity")
    monkeypatch.setattr(loading, "build_backbone", lambda *a, **k: pytest.fail("built a model"))
    assert loading.check_model_spec(ModelSpec(checkpoint=str(path))) == "velocity"
    assert loading.check_model_spec(ModelSpec(checkpoint=str(tmp_path / "tread.pt"), arch="DiT-S/2", parametrization="rf")) == "rf"
    with pytest.raises(UserError, match="CompVis/tread training file"):
        loading.check_model_spec(ModelSpec(checkpoint=str(tmp_path / "tread.pt"), arch="DiT-S/2"))
    assert loading.read_checkpoint(path, lazy=True).state_dict.keys() == m.state_dict().keys()


# ---- sgbench convert ---------------------------------------------------------------------------

def test_convert_tread_file_records_parametrization_and_routes(tmp_path, capsys):
    from sgbench.cli import main

    ema = tiny_dit(learn_sigma=False, seed=3)
    src = tmp_path / "0400000.pt"
    torch.save({"model_state_dict": prefixed(ema.state_dict()), "ema_state_dict": prefixed(ema.state_dict()),
                "optimizer_state_dict": {"state": {}, "param_groups": []}, "step": 400000}, src)
    out = tmp_path / "ckpt" / "tread.safetensors"
    base = ["convert", str(src), str(out), "--arch", "DiT-S/2", "--routes", "1-2"]
    # refused before the model is built (the tiny test sizes are not a preset: the API call below passes them)
    assert main(base) == 2 and "does not record how it was trained" in capsys.readouterr().err and not out.exists()
    from sgbench.models.convert import convert_checkpoint

    spec = ModelSpec(checkpoint=str(src), arch="DiT-S/2", config=SMALL, routes=["1-2"], parametrization="edm")
    path, meta = convert_checkpoint(spec, out)
    assert meta["parametrization"] == "edm" and meta["config"]["routes"] == ["1-2"] and meta["family"] == "dit"
    assert meta["converted_from"]["format"] == "tread" and meta["converted_from"]["entry"] == "ema_state_dict"
    assert len(meta["converted_from"]["sha256"]) == 64
    den = load_denoiser(ModelSpec(checkpoint=str(out)))  # the path alone
    routed = tiny_dit(learn_sigma=False, routes=["1-2"], seed=3)
    assert isinstance(den, EDMDenoiser) and same_outputs(den, routed) and same_outputs(den, routed, gamma=0.5)
    before = out.read_bytes()
    with pytest.raises(UserError, match="exists; pass --force"):
        convert_checkpoint(spec, out)
    assert main(base + ["--parametrization", "rf"]) == 2 and "--force" in capsys.readouterr().err
    assert out.read_bytes() == before  # never replaced without --force
    convert_checkpoint(ModelSpec(checkpoint=str(src), arch="DiT-S/2", config=SMALL, routes=["1-2"], parametrization="rf"),
                       out, force=True)
    assert read_sgbench_metadata(out)["parametrization"] == "rf"
    with pytest.raises(UserError, match="is the source checkpoint itself"):
        convert_checkpoint(ModelSpec(checkpoint=str(out)), out, force=True)
    with pytest.raises(UserError, match="must be a .safetensors"):
        convert_checkpoint(spec, tmp_path / "x.pt")


@pytest.mark.parametrize("fmt", ["maskdit", "sit", "dit"])
def test_convert_train_files_that_record_their_parametrization(tmp_path, capsys, fmt):
    from sgbench.cli import main

    if fmt == "maskdit":
        m, sd, args, arch, want = tiny_maskdit(seed=5), None, argparse.Namespace(config="c.yaml"), "MaskDiT-S/2", "edm"
        sd = prefixed(m.state_dict())
    else:
        m = tiny_dit(seed=5)
        sd, args = m.state_dict(), (sit_args() if fmt == "sit" else dit_args())
        arch, want = ("SiT-S/2", "velocity") if fmt == "sit" else ("DiT-S/2", "ddpm")
    torch.save({"model": sd, "ema": sd, "opt": {}, "args": args}, tmp_path / "0050000.pt")
    out = tmp_path / "out.safetensors"
    from sgbench.models.convert import convert_checkpoint

    small = SMALL_MASK if fmt == "maskdit" else SMALL
    _, meta = convert_checkpoint(ModelSpec(checkpoint=str(tmp_path / "0050000.pt"), arch=arch, config=small), out)
    assert meta["parametrization"] == want and meta["converted_from"]["format"] in ("maskdit", "dit-train")
    den = load_denoiser(ModelSpec(checkpoint=str(out)))
    assert den.parametrization == want and same_outputs(den, m)
    with pytest.raises(UserError, match=f"records parametrization {want}"):
        convert_checkpoint(ModelSpec(checkpoint=str(tmp_path / "0050000.pt"), arch=arch, config=small,
                                     parametrization="rf"), tmp_path / "other.safetensors")
    assert not (tmp_path / "other.safetensors").exists()


def test_convert_cli_prints_what_it_recorded(tmp_path, capsys):
    from sgbench.cli import main

    m = tiny_dit()  # an sgbench train file records its architecture itself: the CLI needs no --arch
    torch.save({"model": m.state_dict(), "ema": m.state_dict(), "opt": {}, "step": 1, "config": sgbench_metadata(m, "velocity")},
               tmp_path / "s.pt")
    out = tmp_path / "s.safetensors"
    assert main(["convert", str(tmp_path / "s.pt"), str(out), "--routes", "1-2", "--no-ema"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"{out}: family dit, parametrization velocity, routes 1-2, from sgbench-train (model)"
    assert load_denoiser(ModelSpec(checkpoint=str(out))).backbone.config.routes[0].end == 2
