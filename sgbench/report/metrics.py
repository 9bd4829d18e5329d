"""Which trials.csv columns are settings, ids, metrics and costs, and how reports show them.

The facts about each metric (direction, display name, decimals, order) come from the metric
registry (`sgbench.metrics.registry`); this module adds the report's view of a run's columns.
"""

from __future__ import annotations

from sgbench.metrics import registry

# Columns of trials.csv that describe a trial rather than measure it.
SETTING_COLUMNS = ("method", "gamma_strong", "gamma_weak", "omega", "schedule", "n_samples")
ID_COLUMNS = ("trial_id", "role", "seed", "status")
COST_COLUMNS = registry.cost_keys()
GFLOPS, GFLOPS_ATTN, IMAGES_PER_S = registry.GFLOPS.key, registry.GFLOPS_ATTN.key, registry.IMAGES_PER_S.key
# Companion columns `<metric>_se` carry a standard error (bootstrap over samples); they are
# noise estimates, never metrics themselves.
SE_SUFFIX = registry.SE_SUFFIX

is_metric = registry.is_quality
higher_is_better = registry.higher_is_better
metric_order = registry.metric_order
primary_metric = registry.headline_metric  # what heatmaps and 'best' rows use


def display_name(column: str) -> str:
    """FID, sFID, IS, Prec., Rec., FD_<extractor>, Acc., GFLOPs; T2I categories as words."""
    m = registry.lookup(column)
    return m.display if m is not None else column


def arrow(column: str) -> str:
    return registry.get(column).arrow


def number_format(column: str, value: float | None = None) -> str:
    """Decimals in the paper's style (FID 2.07, IS 249.0, Prec. 0.80, GFLOPs 118.6)."""
    m = registry.lookup(column)
    return m.format_spec(value) if m is not None else ".2f"
