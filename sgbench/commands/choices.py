"""The fixed value sets of command-line options, torch-free (commands register their parsers
without importing torch). Where the suite schema already spells a set (a `Literal` field), the
option reads it from there; the sets whose owners import torch (parametrizations, checkpoint
families, feature extractors) are spelled once more here, and tests/test_cli_front_door.py checks
them against their registries."""

from __future__ import annotations

import typing

from sgbench.config.schema import SamplerConfig, Suite


def literal(cls, name: str) -> tuple[str, ...]:
    """The values of a `Literal[...]` field of a schema dataclass."""
    tp = typing.get_type_hints(cls)[name]
    assert typing.get_origin(tp) is typing.Literal, f"{cls.__name__}.{name} is not a Literal"
    return typing.get_args(tp)


SOLVERS = literal(SamplerConfig, "solver")  # sgbench.sampling.SOLVERS
LABEL_MODES = literal(SamplerConfig, "labels")  # sgbench.sampling.LABEL_MODES
ROUNDINGS = literal(SamplerConfig, "rounding")  # sgbench.sampling.decode.ROUNDINGS
DEVICES = literal(Suite, "device")  # auto | cpu | cuda (cuda: this worker's cuda:LOCAL_RANK)
PARAMETRIZATIONS = ("velocity", "rf", "edm", "ddpm")  # sgbench.models.PARAMETRIZATIONS
FAMILIES = ("dit", "maskdit", "t2i")  # sgbench.models.registry.backbone_families()
FAMILY_ALIASES = ("sit", "tread", "t2i_dit")  # sgbench.models.loading.FAMILY_ALIASES (sit, tread: dit)
EXTRACTORS = ("inception", "dinov2", "classifier")  # sgbench.metrics.available_extractors()
