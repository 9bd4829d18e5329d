"""Sparse DiT backbones (TREAD routing, MaskDiT masking), the Denoiser interface and loading.

Backbone registry (one per pluggable family): `register_backbone(name, build, make_denoiser=None)`
maps a family name ('dit', 'maskdit', 't2i') to a builder from its config dict; `load_denoiser`
uses it to rebuild sgbench checkpoints from their metadata alone.
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
from sgbench.models.registry import backbone_families, build_backbone, get_backbone_family, register_backbone
from sgbench.models.routing import num_dropped, num_kept, sample_keep_indices

__all__ = [
    "DIT_PRESETS", "MASKDIT_PRESETS", "PARAMETRIZATIONS",
    "DiT", "DiTConfig", "Route", "dit_config",
    "MaskDiT", "MaskDiTConfig", "maskdit_config",
    "Denoiser", "VelocityDenoiser", "RFDenoiser", "EDMDenoiser", "DDPMDenoiser", "make_denoiser",
    "ModelSpec", "load_backbone", "load_denoiser", "read_checkpoint", "read_sgbench_metadata",
    "save_sgbench_safetensors", "sgbench_metadata",
    "register_backbone", "get_backbone_family", "build_backbone", "backbone_families",
    "num_dropped", "num_kept", "sample_keep_indices",
]
