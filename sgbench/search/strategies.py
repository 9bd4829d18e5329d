"""Samplers and pruners as configuration: one registry each, name -> Optuna strategy object.

`grid` is not Optuna's GridSampler: the paper's grid is a constrained product
(gamma_strong < gamma_weak), so its points are enqueued into the study once (`seed_grid`) and
workers pop them from the storage; any number of workers and resumes then take each point once.
"""

from __future__ import annotations

from typing import Callable

import optuna

from sgbench.config.schema import PruningConfig, SearchConfig

SAMPLERS: dict[str, Callable[[SearchConfig], optuna.samplers.BaseSampler]] = {
    # grid points come from the queue; the sampler only matters if the queue ran dry mid-ask
    "grid": lambda s: optuna.samplers.RandomSampler(seed=s.seed),
    "random": lambda s: optuna.samplers.RandomSampler(seed=s.seed),
    "tpe": lambda s: optuna.samplers.TPESampler(seed=s.seed, n_startup_trials=min(10, max(2, (s.budget or 10) // 4))),
    # MOTPE copes with small budgets better than NSGA-II's 50-trial generations
    "multi-objective": lambda s: optuna.samplers.TPESampler(seed=s.seed, n_startup_trials=min(10, max(2, (s.budget or 10) // 4))),
}

PRUNERS: dict[str, Callable[[PruningConfig], optuna.pruners.BasePruner]] = {
    "median": lambda p: optuna.pruners.MedianPruner(n_startup_trials=p.startup_trials, n_warmup_steps=0),
    "percentile": lambda p: optuna.pruners.PercentilePruner(p.percentile, n_startup_trials=p.startup_trials),
    # steps are sample counts, so the first rung sits at the first fidelity
    "halving": lambda p: optuna.pruners.SuccessiveHalvingPruner(min_resource=p.fidelities[0], reduction_factor=3),
    "none": lambda p: optuna.pruners.NopPruner(),
}


def make_sampler(search: SearchConfig) -> optuna.samplers.BaseSampler:
    return SAMPLERS[search.sampler](search)


def make_pruner(search: SearchConfig) -> optuna.pruners.BasePruner:
    if search.pruning is None:
        return optuna.pruners.NopPruner()
    return PRUNERS[search.pruning.pruner](search.pruning)
