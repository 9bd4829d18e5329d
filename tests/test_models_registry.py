"""The backbone registry: one entry per family, presets found through it, T2I loads through it."""

import json
from dataclasses import dataclass

import pytest
import torch

from sgbench.cli import main as cli_main
from sgbench.errors import UserError
from sgbench.models import (BackboneFamily, DiT, DiTConfig, FlopCount, ModelSpec, backbone_families, config_for,
                            family_of_config, forward_flops, get_backbone_family, load_denoiser, preset_family)
from sgbench.models import registry


def test_every_family_carries_its_facts():
    assert backbone_families() == ["dit", "maskdit", "t2i"]
    for name in backbone_families():
        fam = get_backbone_family(name)
        arch = sorted(fam.presets)[0]
        config = fam.make_config(arch)
        assert type(config) is fam.config_class and family_of_config(config) is fam
        assert preset_family(arch) is fam and fam.kept_tokens(16, 0.0) == 16
        assert callable(fam.forward_flops) and callable(fam.trace_flops)
    assert get_backbone_family("maskdit").takes_routes is False
    assert get_backbone_family("t2i").flop_inputs == ("text_len",)
    assert preset_family("SiT-XL/2").name == "dit" and preset_family("MaskDiT-XL/2").name == "maskdit"
    assert preset_family("TR-DiT-2.5B").name == "t2i" and preset_family("Nope-1") is None
    with pytest.raises(UserError, match="unknown architecture 'Nope-1'; known: .*MaskDiT-XL/2.*TR-DiT-2.5B"):
        config_for("Nope-1")
    with pytest.raises(UserError, match="maskdit has no routes"):
        config_for("MaskDiT-S/2", routes=["1-2"])


@dataclass
class ToyConfig(DiTConfig):
    """A new family that happens to reuse the DiT code: only the registry knows its presets."""


def test_a_registered_family_is_found_by_its_presets_not_by_a_name_prefix(monkeypatch, capsys):
    dit = get_backbone_family("dit")
    toy = BackboneFamily(
        name="toy", config_class=ToyConfig, build=lambda d: DiT(ToyConfig(**d)),
        presets={"Tiny-A": dict(input_size=8, patch_size=4, in_channels=1, hidden_size=8, depth=1, num_heads=2,
                                num_classes=3, learn_sigma=False)},
        make_config=lambda arch, **kw: ToyConfig(**{**toy.presets[arch], **kw}),
        kept_tokens=dit.kept_tokens, forward_flops=lambda c, g: FlopCount(7, 1), trace_flops=dit.trace_flops)
    monkeypatch.setitem(registry._FAMILIES, "toy", toy)
    monkeypatch.setitem(registry._LAZY_MODULES, "toy", __name__)
    den = load_denoiser(ModelSpec(arch="Tiny-A"))  # a randomly initialised preset of the new family
    assert type(den.backbone.config) is ToyConfig and den.latent_shape == (1, 8, 8)
    assert forward_flops(den.backbone.config) == (7, 1)  # the family's own FLOP model
    assert cli_main(["flops", "--arch", "Tiny-A", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["gflops"] == 7e-9


def test_t2i_checkpoints_load_through_the_registry(tmp_path):
    from sgbench.models.t2i_dit import T2IDenoiser, T2IDiT, t2i_config
    from sgbench.models.text_encoders import TextEncoderSpec
    from sgbench.train.export import save_sgbench_model

    cfg = t2i_config("T2I-tiny", input_size=16, patch_size=4, in_channels=3, text_dim=16)
    torch.manual_seed(0)
    model = T2IDiT(cfg)
    meta = {"family": "t2i", "config": cfg.to_dict(), "parametrization": "velocity",
            "text_encoder": TextEncoderSpec(kind="tiny", dim=16, max_length=12).to_dict()}
    save_sgbench_model(tmp_path / "t2i.safetensors", model, meta)
    den = load_denoiser(ModelSpec(checkpoint=str(tmp_path / "t2i.safetensors")))
    assert isinstance(den, T2IDenoiser) and den.text_encoder.dim == 16
    c = den.text_encoder.encode(["a red circle", "two squares"])
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(den(x, 0.3, c), model(x, torch.full((2,), 0.3), c.emb, c.mask))
    # the stored encoder spec can be overridden field by field (e.g. a local path elsewhere)
    with pytest.raises(UserError, match="width 8 does not match"):
        load_denoiser(ModelSpec(checkpoint=str(tmp_path / "t2i.safetensors"), text_encoder={"dim": 8}))
    den.use_prompt_pool(["a", "b", "c"])
    assert len(den.random_pool) == 3
