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
    lower_is_better,
    metric_keys,
)

__all__ = [
    "LoadedSuite", "load_suite", "MetricsConfig", "ModelConfig", "PruningConfig", "RangeConfig",
    "ReferenceConfig", "ReportConfig", "SamplerConfig", "SearchConfig", "SpaceConfig", "Suite",
    "lower_is_better", "metric_keys",
]
