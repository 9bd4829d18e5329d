"""Backbone registry: family name -> how to build a backbone from its config dict.

The config dict is what sgbench writes into checkpoint metadata (`backbone.config.to_dict()`),
so `load_denoiser` can rebuild any registered family from an sgbench file alone. A family module
registers itself at import (`register_backbone("t2i", build=...)`); families listed in
`_LAZY_MODULES` are imported on first use so loading never needs an explicit import.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import torch.nn as nn

from sgbench.errors import UserError


@dataclass(frozen=True)
class BackboneFamily:
    name: str
    #: config dict (as stored in sgbench metadata) -> backbone nn.Module with `.config.to_dict()`
    build: Callable[[Mapping[str, Any]], nn.Module]
    #: (backbone, parametrization, **denoiser_kwargs) -> Denoiser; None = class-conditional default
    make_denoiser: Optional[Callable[..., nn.Module]] = None


_FAMILIES: dict[str, BackboneFamily] = {}
# families whose modules register themselves on import
_LAZY_MODULES = {"dit": "sgbench.models.dit", "maskdit": "sgbench.models.maskdit", "t2i": "sgbench.models.t2i_dit"}


def register_backbone(name: str, build: Callable[[Mapping[str, Any]], nn.Module], make_denoiser=None) -> None:
    _FAMILIES[name] = BackboneFamily(name, build, make_denoiser)


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


def build_backbone(family: str, config: Mapping[str, Any]) -> nn.Module:
    """Build a backbone of `family` from a config dict; unknown keys are a UserError."""
    fam = get_backbone_family(family)
    try:
        return fam.build(dict(config))
    except TypeError as e:
        raise UserError(f"invalid {family} config {dict(config)}: {e}") from None
