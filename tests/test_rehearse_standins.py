"""Every rehearsal stand-in is a file the project's own loader accepts (tiny sizes, fixed seeds)."""

import json

import numpy as np
import pytest
import torch

from sgbench.errors import UserError
from sgbench.models import DDPMDenoiser, EDMDenoiser, ModelSpec, RFDenoiser, VelocityDenoiser, load_denoiser
from sgbench.models.dit import dit_config
from sgbench.models.loading import read_checkpoint, read_sgbench_metadata
from sgbench.models.maskdit import maskdit_config
from sgbench.rehearse.checkpoints import (
    LAYOUTS,
    declared_layout,
    random_backbone,
    random_state_dict,
    write_checkpoint,
    write_t2i_checkpoint,
)

SMALL = dict(depth=2, hidden_size=32, num_heads=2)
SMALL_MASK = dict(SMALL, decoder_hidden_size=16, decoder_depth=2, decoder_num_heads=2)


def _dit(arch="SiT-S/2", routes=("1-1",)):
    return dit_config(arch, input_size=8, num_classes=5, routes=list(routes), **SMALL).to_dict()


@pytest.mark.parametrize("suffix,family,arch,param,trust,layout", [
    (".safetensors", None, "SiT-XL/2", None, False, "sgbench"),
    (".safetensors", "maskdit", "MaskDiT-XL/2", "velocity", True, "sgbench"),
    (".pt", None, "SiT-XL/2", "rf", False, "tread"),
    (".pt", None, "DiT-XL/2", "edm", False, "tread"),
    (".pt", "tread", "SiT-XL/2", None, False, "tread"),
    (".pt", None, "SiT-XL/2", None, False, "sit"),
    (".pt", "sit", "SiT-XL/2", "velocity", False, "sit"),
    (".pt", None, "DiT-XL/2", None, False, "dit"),
    (".pth", None, "SiT-XL/2", "velocity", True, "dit-train"),
    (".pt", None, "MaskDiT-XL/2", None, False, "maskdit"),
    (".pt", "maskdit", "MaskDiT-XL/2", "edm", True, "maskdit"),
])
def test_declared_layout_follows_the_suite(tmp_path, suffix, family, arch, param, trust, layout):
    assert declared_layout(tmp_path / f"m{suffix}", family, arch, param, trust) == layout


def test_declared_layout_of_a_pt_file_without_arch_is_sgbench_train(tmp_path):
    """Only `sgbench train`'s .pt records its architecture: a suite that declares none names one."""
    assert declared_layout(tmp_path / "m.pt", None, None, None, False) == "sgbench-train"


def test_sgbench_train_layout_records_step_and_metadata(tmp_path):
    p = write_checkpoint(tmp_path / "step_0000500.pt", "sgbench-train", "dit", _dit(), "velocity", seed=1,
                         extra={"image_size": 8, "dataset": "shapes"}, step=500)
    obj = torch.load(p, weights_only=True)  # tensors and plain containers, as sgbench train writes
    assert {"model", "ema", "opt", "step", "config"} <= set(obj) and obj["step"] == 500
    ck = read_checkpoint(p)
    assert ck.fmt == "sgbench-train" and ck.step == 500 and ck.meta["dataset"] == "shapes"
    den = load_denoiser(ModelSpec(checkpoint=str(p)))  # no arch: the file records it
    assert isinstance(den, VelocityDenoiser) and _same_weights(den, "dit", _dit(), 1)


@pytest.mark.parametrize("layout,step", [("sgbench", 1200), ("tread", 800), ("sit", None)])
def test_a_step_is_recorded_where_the_layout_records_one(tmp_path, layout, step):
    suffix = ".safetensors" if layout == "sgbench" else ".pt"
    p = write_checkpoint(tmp_path / f"m{suffix}", layout, "dit", _dit("SiT-S/2", routes=()), "velocity", seed=0,
                         arch="SiT-S/2", step=step)
    assert read_checkpoint(p).step == step


def test_random_weights_are_seeded_and_shaped():
    meta = random_backbone("dit", _dit(), seed=3)
    a, b, c = random_state_dict(meta, 3), random_state_dict(meta, 3), random_state_dict(meta, 4)
    assert a.keys() == meta.state_dict().keys()
    assert all(torch.equal(a[k], b[k]) for k in a) and not torch.equal(a["blocks.0.mlp.fc1.weight"],
                                                                        c["blocks.0.mlp.fc1.weight"])
    w = a["blocks.0.mlp.fc1.weight"]  # [128, 32]: N(0, 1/32)
    assert w.shape == (128, 32) and abs(float(w.std()) - 32 ** -0.5) < 0.03
    assert float(a["blocks.0.mlp.fc1.bias"].abs().sum()) == 0


def _keys(family, config):
    return set(random_backbone(family, config, 0).state_dict())


def _same_weights(den, family, config, seed):
    ref = random_state_dict(random_backbone(family, config, seed), seed)
    return all(torch.equal(v, ref[k]) for k, v in den.backbone.state_dict().items())


def test_sgbench_layout_records_its_parametrization(tmp_path):
    p = write_checkpoint(tmp_path / "m.safetensors", "sgbench", "dit", _dit(), "velocity", seed=1)
    meta = read_sgbench_metadata(p)
    assert meta["family"] == "dit" and meta["parametrization"] == "velocity" and meta["config"]["routes"] == ["1-1"]
    den = load_denoiser(ModelSpec(checkpoint=str(p)))  # nothing else needed, as for a real sgbench file
    assert isinstance(den, VelocityDenoiser) and _same_weights(den, "dit", _dit(), 1)


def test_tread_layout_records_no_parametrization(tmp_path):
    p = write_checkpoint(tmp_path / "step.pt", "tread", "dit", _dit(), None, seed=0)
    assert read_checkpoint(p).fmt == "tread"
    obj = torch.load(p, weights_only=True)  # a tread training file holds tensors and plain data only
    assert set(obj) == {"model_state_dict", "ema_state_dict", "optimizer_state_dict", "step"}
    assert all(k.startswith("model.") for k in obj["ema_state_dict"])
    with pytest.raises(UserError, match="parametrization"):  # the file does not say edm or rf
        load_denoiser(ModelSpec(checkpoint=str(p), arch="SiT-S/2", config=SMALL))
    den = load_denoiser(ModelSpec(checkpoint=str(p), arch="SiT-S/2", config=SMALL, routes=["1-1"], parametrization="rf"))
    assert isinstance(den, RFDenoiser) and _same_weights(den, "dit", _dit(), 0)


@pytest.mark.parametrize("layout,arch,param,cls", [("sit", "SiT-S/2", "velocity", VelocityDenoiser),
                                                   ("dit", "DiT-S/2", "ddpm", DDPMDenoiser)])
def test_released_state_dicts(tmp_path, layout, arch, param, cls):
    cfg = _dit(arch, routes=())
    p = write_checkpoint(tmp_path / "m.pt", layout, "dit", cfg, None, seed=2, arch=arch)
    assert read_checkpoint(p).fmt == "plain" and set(torch.load(p, weights_only=True)) == _keys("dit", cfg)
    den = load_denoiser(ModelSpec(checkpoint=str(p), arch=arch, config=SMALL, parametrization=param))
    assert isinstance(den, cls) and den.num_classes == 5 and _same_weights(den, "dit", cfg, 2)


@pytest.mark.parametrize("layout,family,config,arch,cls", [
    ("dit-train", "dit", _dit("SiT-S/2", routes=()), "SiT-S/2", VelocityDenoiser),
    ("maskdit", "maskdit", maskdit_config("MaskDiT-S/2", input_size=8, num_classes=5, **SMALL_MASK).to_dict(),
     "MaskDiT-S/2", EDMDenoiser),
])
def test_train_files_carry_their_codebase_args(tmp_path, layout, family, config, arch, cls):
    """{'model', 'ema', 'opt', 'args'} with the argparse Namespace the codebase's train.py stores:
    whatever the loader's trust rule for such files, the stand-in meets the same rule."""
    import argparse

    p = write_checkpoint(tmp_path / "m.pt", layout, family, config, None, seed=0, arch=arch)
    obj = torch.load(p, weights_only=False)
    assert set(obj) == {"model", "ema", "opt", "args"} and isinstance(obj["args"], argparse.Namespace)
    if layout == "dit-train":  # SiT's train.py: transport arguments (velocity prediction)
        assert (obj["args"].model, obj["args"].path_type, obj["args"].prediction) == ("SiT-S/2", "Linear", "velocity")
    else:  # Anima-Lab/MaskDiT: EDM preconditioning, 'model.' keys (EDMPrecond)
        assert obj["args"].precond == "edm" and all(k.startswith("model.") for k in obj["ema"])
    overrides = SMALL_MASK if family == "maskdit" else SMALL
    den = load_denoiser(ModelSpec(checkpoint=str(p), arch=arch, config=overrides, trust_checkpoint=True))
    assert isinstance(den, cls) and _same_weights(den, family, config, 0)
    assert read_checkpoint(p, trust=True).fmt == ("maskdit" if family == "maskdit" else "dit-train")


def test_every_layout_is_tested():
    assert set(LAYOUTS) == {"sgbench", "tread", "sit", "dit", "dit-train", "maskdit", "sgbench-train"}


def test_text_encoder_and_t2i_checkpoint_load_together(tmp_path):
    from sgbench.models.t2i_dit import t2i_config
    from sgbench.models.text_encoders import PAPER_PROMPT_PREFIX, TextEncoderSpec
    from sgbench.rehearse.text_encoder import write_text_encoder
    from sgbench.t2i.model import load_t2i

    enc_dir = write_text_encoder(tmp_path / "InternVL3-2B", hidden_size=32, seed=0)
    assert {"config.json", "tokenizer.json", "tokenizer_config.json"} <= {p.name for p in enc_dir.iterdir()}
    cfg = t2i_config("T2I-tiny", input_size=8, in_channels=4, text_dim=32)
    spec = TextEncoderSpec(kind="hf", path=str(enc_dir), prefix=PAPER_PROMPT_PREFIX, max_length=128)
    p = write_t2i_checkpoint(tmp_path / "t2i.safetensors", cfg, spec.to_dict(), image_size=64, seed=0)
    den, encoder, meta = load_t2i(p)
    assert meta["image_size"] == 64 and encoder.dim == 32 and den.backbone.config.text_dim == 32
    cond = encoder.encode(["a photo of a red car", ""])  # the empty (null) prompt keeps its prefix
    assert cond.mask.sum(1).min() > 0 and torch.isfinite(cond.emb).all()


def test_sd_vae_layout(tmp_path):
    from sgbench.rehearse.vae import downsampling_factor, write_sd_vae
    from sgbench.sampling.decode import VAEDecoder

    d = write_sd_vae(tmp_path / "sd-vae-ft-ema", seed=0)
    config = json.loads((d / "config.json").read_text())
    assert config["_class_name"] == "AutoencoderKL" and config["latent_channels"] == 4
    assert config["scaling_factor"] == 0.18215 and downsampling_factor(d) == 8
    assert (d / "diffusion_pytorch_model.safetensors").is_file()
    dec = VAEDecoder(d)
    dec.check((4, 4, 4))
    img = dec(torch.randn(2, 4, 4, 4))
    assert img.shape == (2, 32, 32, 3) and img.dtype == np.uint8


def test_inception_weights_file(tmp_path):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from sgbench.metrics.extractors import get_extractor
    from sgbench.rehearse.inception import random_inception, write_inception_weights

    p = write_inception_weights(tmp_path / "weights-inception-2015-12-05-6726825d.pth", seed=0)
    sd = torch.load(p, weights_only=True)  # plain tensors: loadable without unpickling code
    assert sd.keys() == random_inception(1).state_dict().keys()
    assert all(v.dtype == torch.float32 for v in sd.values() if v.is_floating_point())
    assert isinstance(random_inception(0), FeatureExtractorInceptionV3)
    ext = get_extractor("inception", weights_path=str(p), batch_size=2)
    out = ext(torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8))
    assert out["pool"].shape == (2, 2048) and out["spatial"].shape == (2, 2023) and out["logits"].shape == (2, 1008)
    assert torch.isfinite(out["pool"]).all() and float(out["pool"].std()) > 0


def test_adm_reference_and_its_subset(tmp_path):
    from sgbench.metrics.extractors import get_extractor
    from sgbench.metrics.image_io import count_images
    from sgbench.metrics.reference import load_reference
    from sgbench.rehearse.inception import write_inception_weights
    from sgbench.rehearse.reference import adm_statistics, random_images, subset_reference, write_adm_reference

    ext = get_extractor("inception", weights_path=str(write_inception_weights(tmp_path / "w.pth")), batch_size=4)
    p = write_adm_reference(tmp_path / "VIRTUAL_imagenet256_labeled.npz", ext, side=32, n=5, seed=0)
    with np.load(p) as f:
        assert set(f.keys()) == {"arr_0", "mu", "sigma", "mu_s", "sigma_s"}
        assert f["arr_0"].shape == (5, 32, 32, 3) and f["arr_0"].dtype == np.uint8
        assert f["mu"].shape == (2048,) and f["sigma"].shape == (2048, 2048) and f["sigma_s"].shape == (2023, 2023)
        assert f["mu"].dtype == np.float64
        np.testing.assert_allclose(f["mu"], adm_statistics(ext, random_images(5, 32, 0))["mu"])
        mu = f["mu"]
    ref = load_reference(p, ext, cache_dir=tmp_path / "cache", batch_size=4, log=lambda m: None)
    assert set(ref.gaussians) == {"pool", "spatial"} and ref.features.shape == (5, 2048)
    np.testing.assert_array_equal(ref.gaussians["pool"].mu, mu)  # ADM's own statistics are used
    sub, total = subset_reference(p, tmp_path / "sub.npz", n=2)
    assert total == 5 and count_images(sub) == 2
    with np.load(sub) as f, np.load(p) as g:
        np.testing.assert_array_equal(f["sigma_s"], g["sigma_s"])
        np.testing.assert_array_equal(f["arr_0"], g["arr_0"][:2])


def test_classifier_and_image_reference(tmp_path):
    from sgbench.metrics.extractors import get_extractor
    from sgbench.metrics.reference import load_reference
    from sgbench.rehearse.classifier import write_classifier
    from sgbench.rehearse.reference import write_image_reference

    ext = get_extractor("classifier", weights_path=str(write_classifier(tmp_path / "c.safetensors", image_size=16)))
    p = write_image_reference(tmp_path / "ref.npz", side=16, n=4)
    ref = load_reference(p, ext, cache_dir=tmp_path / "cache", log=lambda m: None)
    assert ref.features.shape == (4, ext.feature_dims["pool"])


def test_geneval_metadata_and_tiny_clip(tmp_path):
    pytest.importorskip("open_clip")
    from sgbench.rehearse.geneval import CLIP_ARCH, raising_mmcv_ops, write_metadata, write_tiny_clip
    from sgbench.t2i.geneval import TAGS, read_metadata_jsonl
    from sgbench.t2i.geneval_backends import load_clip_color_classifier

    meta = read_metadata_jsonl(write_metadata(tmp_path / "evaluation_metadata.jsonl"))  # GenEval's validation
    assert [m["tag"] for m in meta] == TAGS
    clf = load_clip_color_classifier(write_tiny_clip(tmp_path / "clip" / "ViT-L-14.pt"), CLIP_ARCH)
    from PIL import Image

    colours = clf(Image.new("RGB", (40, 30), "red"), [(np.array([0, 0, 20, 20, 0.9]), None)], "car")
    assert len(colours) == 1
    with pytest.raises(RuntimeError, match="compiled mmcv op nms called"):
        raising_mmcv_ops().nms()


def test_hpsv3_prompts_folder(tmp_path):
    from sgbench.rehearse.hpsv3 import write_prompts
    from sgbench.t2i.hpsv3_client import HPSV3_CATEGORIES, load_benchmark_prompts

    items = load_benchmark_prompts(write_prompts(tmp_path / "benchmark"))
    assert sorted(i["category"] for i in items) == sorted(HPSV3_CATEGORIES)


@pytest.mark.slow
def test_mask2former_standin_loads_in_mmdet(tmp_path, monkeypatch):
    """Needs mmdet (make geneval-cpu): the random-weight Mask2Former loads through MMDetDetector."""
    pytest.importorskip("mmdet")
    import importlib
    import sys

    from sgbench.rehearse import geneval as rg
    from sgbench.t2i.geneval_backends import MMDetDetector

    try:
        importlib.import_module("mmcv._ext")
    except ImportError:  # mmcv-lite: what the rehearsal installs (restored after the test)
        monkeypatch.setitem(sys.modules, "mmcv._ext", rg.raising_mmcv_ops())
    config = rg.mask2former_config()
    ckpt = rg.write_mask2former(tmp_path / "m2f.pth", config)
    from PIL import Image

    bbox, segm = MMDetDetector(config, ckpt, "cpu")(Image.new("RGB", (64, 48), "gray"))
    assert len(bbox) == 80 and all(b.shape[1] == 5 for b in bbox)


@pytest.mark.slow
def test_tiny_hpsv3_is_built_by_the_real_package(tmp_path):
    """Needs $SGBENCH_HPSV3_PYTHON (make hpsv3-env): the tiny base model + checkpoint pass the worker's checks."""
    from sgbench.rehearse.hpsv3 import build_tiny_hpsv3, env_python
    from sgbench.t2i.hpsv3_client import HPSv3WorkerConfig

    py = env_python()
    if py is None:
        pytest.skip("set SGBENCH_HPSV3_PYTHON to the python of an environment with hpsv3 installed")
    built = build_tiny_hpsv3(py, tmp_path)
    HPSv3WorkerConfig(python=str(py), base_model=built["base_model"], checkpoint=built["checkpoint"]).check()
    assert built["n_keys"] > 0
