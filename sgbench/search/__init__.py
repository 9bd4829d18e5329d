"""Optuna search over (gamma_strong, gamma_weak, omega): space, strategies, studies, trials.csv."""

from sgbench.search.space import grid_points, suggest
from sgbench.search.store import collect_rows, read_trials_csv, write_trials_csv
from sgbench.search.strategies import PRUNERS, SAMPLERS, make_pruner, make_sampler
from sgbench.search.study import Studies, default_storage, open_studies

__all__ = [
    "grid_points", "suggest", "collect_rows", "read_trials_csv", "write_trials_csv", "PRUNERS", "SAMPLERS",
    "make_pruner", "make_sampler", "Studies", "default_storage", "open_studies",
]
