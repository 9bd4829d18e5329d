"""Suite YAML -> typed, checked configuration (`load_suite`)."""

from sgbench.config.loader import LoadedSuite, load_suite
from sgbench.config.schema import (
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
)

__all__ = [
    "LoadedSuite", "load_suite", "MetricsConfig", "ModelConfig", "PruningConfig", "RangeConfig",
    "ReferenceConfig", "ReportConfig", "SamplerConfig", "SearchConfig", "SpaceConfig", "Suite",
]
