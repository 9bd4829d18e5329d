"""Suite YAML -> typed, checked configuration (`load_suite`)."""

from sgbench.config.loader import LoadedSuite, load_suite
from sgbench.config.schema import (
    MethodConfig,
    MetricsConfig,
    ModelConfig,
    PruningConfig,
    RangeConfig,
    ReferenceConfig,
    ReportConfig,
    SamplerConfig,
    SearchConfig,
    SpaceConfig,
    Suite,
    parse_gamma,
)

__all__ = [
    "LoadedSuite", "load_suite", "MethodConfig", "MetricsConfig", "ModelConfig", "PruningConfig", "RangeConfig",
    "ReferenceConfig", "ReportConfig", "SamplerConfig", "SearchConfig", "SpaceConfig", "Suite",
    "parse_gamma",
]
