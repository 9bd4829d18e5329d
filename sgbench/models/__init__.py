"""Sparse DiT backbones (TREAD routing, MaskDiT masking), the Denoiser interface and loading.

Backbone registry (one entry per family: 'dit' for DiT/SiT/tread layouts, 'maskdit', 't2i'):
`BackboneFamily` carries the config class, presets, config-from-weights inference, the Denoiser
maker, the kept-token rule and the FLOP model; each family module registers its entry
(`register_backbone`). `load_denoiser` rebuilds any registered family, `config_for(arch)` finds a
preset of any family, `forward_flops(config, gamma)` counts one forward by the family's model.
"""

from sgbench.models.denoiser import (
    PARAMETRIZATIONS,
    DDPMDenoiser,
    Denoiser,
    EDMDenoiser,
    RFDenoiser,
    VelocityDenoiser,
    make_denoiser,
)
from sgbench.models.dit import DIT_PRESETS, DiT, DiTConfig, Route, dit_config
from sgbench.models.loading import (
    ModelSpec,
    load_backbone,
    load_denoiser,
    read_checkpoint,
    read_sgbench_metadata,
    save_sgbench_safetensors,
    sgbench_metadata,
)
from sgbench.models.maskdit import MASKDIT_PRESETS, MaskDiT, MaskDiTConfig, maskdit_config
from sgbench.models.flop_count import forward_flops, trace_model_flops
from sgbench.models.registry import (
    BackboneFamily,
    FlopCount,
    backbone_families,
    build_backbone,
    config_for,
    family_of_config,
    get_backbone_family,
    known_presets,
    preset_family,
    register_backbone,
)
from sgbench.models.routing import num_dropped, num_kept, sample_keep_indices

__all__ = [
    "DIT_PRESETS", "MASKDIT_PRESETS", "PARAMETRIZATIONS",
    "DiT", "DiTConfig", "Route", "dit_config",
    "MaskDiT", "MaskDiTConfig", "maskdit_config",
    "Denoiser", "VelocityDenoiser", "RFDenoiser", "EDMDenoiser", "DDPMDenoiser", "make_denoiser",
    "ModelSpec", "load_backbone", "load_denoiser", "read_checkpoint", "read_sgbench_metadata",
    "save_sgbench_safetensors", "sgbench_metadata",
    "BackboneFamily", "FlopCount", "register_backbone", "get_backbone_family", "build_backbone", "backbone_families",
    "config_for", "family_of_config", "known_presets", "preset_family", "forward_flops", "trace_model_flops",
    "num_dropped", "num_kept", "sample_keep_indices",
]
