"""Backbone registry: one entry per family ('dit', 'maskdit', 't2i') with every fact about it.

An entry carries the family's config class and named presets, how to build a backbone from its
config dict (what sgbench writes into checkpoint metadata), how to infer a config from foreign
weights, how to wrap a backbone in its Denoiser, its kept-token rule and its FLOP model. Each
family module registers its entry at import (next to the model); the modules listed in
`_LAZY_MODULES` are imported on first use, so no caller needs an explicit import. Presets are
found through the registry (`preset_family`), never by a name prefix.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple, Optional

import torch.nn as nn

from sgbench.errors import UserError


class FlopCount(NamedTuple):
    """FLOPs of one forward of one image (1 fused multiply-add = 1 FLOP)."""

    fvcore: int  # fvcore's count (scaled_dot_product_attention not counted): the paper's GFLOPs
    attention: int  # the attention-score products (Q K^T and A V) fvcore leaves out

    @property
    def with_attention(self) -> int:
        return self.fvcore + self.attention


@dataclass(frozen=True)
class BackboneFamily:
    name: str
    config_class: type
    #: config dict (as stored in sgbench metadata) -> backbone nn.Module with `.config.to_dict()`
    build: Callable[[Mapping[str, Any]], nn.Module]
    #: named sizes: preset name -> config fields
    presets: Mapping[str, Mapping[str, Any]]
    #: (preset name, **overrides) -> config (accepts the family's own spellings of its presets)
    make_config: Callable[..., Any]
    #: (n_tokens, gamma) -> tokens the sparse part of the network keeps
    kept_tokens: Callable[[int, float], int]
    #: (config, gamma, **inputs) -> FlopCount of one forward of one image (fast composed path)
    forward_flops: Callable[..., FlopCount]
    #: (model, gamma, **inputs) -> FlopCount from a full fvcore trace (the reference of forward_flops)
    trace_flops: Callable[..., FlopCount]
    #: (preset config dict, state dict) -> config fields the weights determine; None: sgbench files only
    config_from_weights: Optional[Callable[[dict, Mapping[str, Any]], dict]] = None
    #: state dict -> whether it is this family's layout (checked when a file records no family)
    detect: Optional[Callable[[Mapping[str, Any]], bool]] = None
    #: (backbone, parametrization, context) -> Denoiser; None = the class-conditional default
    make_denoiser: Optional[Callable[..., nn.Module]] = None
    takes_routes: bool = True  # TREAD routes in the config (MaskDiT masks before its encoder instead)
    flop_inputs: tuple[str, ...] = ()  # inputs its FLOP count needs besides gamma (T2I: 'text_len')


_FAMILIES: dict[str, BackboneFamily] = {}
# families whose modules register themselves on import
_LAZY_MODULES = {"dit": "sgbench.models.dit", "maskdit": "sgbench.models.maskdit", "t2i": "sgbench.models.t2i_dit"}


def register_backbone(family: BackboneFamily) -> None:
    _FAMILIES[family.name] = family


def get_backbone_family(name: str) -> BackboneFamily:
    if name not in _FAMILIES and name in _LAZY_MODULES:
        try:
            importlib.import_module(_LAZY_MODULES[name])
        except ImportError as e:
            raise UserError(f"backbone family {name!r} is unavailable: {e}") from None
    if name not in _FAMILIES:
        known = sorted(set(_FAMILIES) | set(_LAZY_MODULES))
        raise UserError(f"unknown backbone family {name!r}; known: {', '.join(known)}")
    return _FAMILIES[name]


def backbone_families() -> list[str]:
    return sorted(set(_FAMILIES) | set(_LAZY_MODULES))


def _all_families() -> list[BackboneFamily]:
    return [get_backbone_family(n) for n in backbone_families()]


def build_backbone(family: str, config: Mapping[str, Any]) -> nn.Module:
    """Build a backbone of `family` from a config dict; unknown keys are a UserError."""
    fam = get_backbone_family(family)
    try:
        return fam.build(dict(config))
    except TypeError as e:
        raise UserError(f"invalid {family} config {dict(config)}: {e}") from None


def known_presets() -> list[str]:
    return sorted(p for fam in _all_families() for p in fam.presets)


def preset_family(arch: str) -> Optional[BackboneFamily]:
    """The family whose presets name `arch` (None if no family does)."""
    for fam in _all_families():
        if arch in fam.presets:
            return fam
    return None


def family_of_config(config) -> Optional[BackboneFamily]:
    """The family whose config class `config` is (else: an instance of); None for foreign configs."""
    families = _all_families()
    for fam in families:
        if type(config) is fam.config_class:
            return fam
    for fam in families:
        if isinstance(config, fam.config_class):
            return fam
    return None


def config_for(arch, routes=None, **overrides):
    """A backbone config from a preset name (any family) or a config, with routes and overrides.

    `routes=None` keeps the preset's or config's routes; a sequence, even an empty one, replaces
    them (families without routes refuse a non-empty one). Overrides apply to preset names only.
    """
    from dataclasses import replace

    fam = family_of_config(arch) if not isinstance(arch, str) else preset_family(arch)
    if fam is None:
        if isinstance(arch, str):
            raise UserError(f"unknown architecture {arch!r}; known: {', '.join(known_presets())}")
        raise UserError(f"{type(arch).__name__} is not the config of a registered backbone family")
    if routes is not None and not fam.takes_routes:
        if list(routes):
            raise UserError(f"{fam.name} has no routes: it masks gamma of the tokens before its encoder "
                            "(leave out --routes)")
        routes = None
    if not isinstance(arch, str):
        if overrides:
            raise UserError("config overrides apply to preset names, not to configs")
        return arch if routes is None else replace(arch, routes=tuple(routes))
    fields = set(fam.config_class.__dataclass_fields__)
    bad = sorted(set(overrides) - fields)
    if bad:
        raise UserError(f"{', '.join(bad)} does not apply to the {fam.name} architecture {arch!r}")
    if routes is not None:
        overrides["routes"] = tuple(routes)
    return fam.make_config(arch, **overrides)
