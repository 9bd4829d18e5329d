"""Search strategies: how a study hands out work. One protocol, two implementations.

- `QueueStrategy`: fixed work enqueued once and popped from the storage — the baselines, and the
  grid (the paper's grid is a constrained product, gamma_strong < gamma_weak, so it is not Optuna's
  GridSampler). With pruning, the grid is pruned rung-synchronously: every point is measured at the
  first fidelity, then the best fraction (`PruningConfig.keep_fraction`) goes on to the next one,
  ranked by value with ties broken by grid order (`sgbench.search.rungs`). Decisions are pure
  functions of complete rungs, so interrupted, resumed and multi-worker runs make the same ones. A
  promoted point samples its stream again from the start (sample i is fixed by (seed, i), so its
  first samples are those it was ranked on); the extra cost is the kept share of each lower rung.
- `OptunaStrategy`: tpe, random and multi-objective samplers ask Optuna for points within a
  budget; Optuna's pruners (median, percentile, halving = SuccessiveHalvingPruner) stop a trial at
  a fidelity as results arrive, which depends on the order trials finish (not resume-invariant).

Samplers and pruners of Optuna are configuration: one registry each, name -> strategy object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

import optuna
from optuna.trial import TrialState

from sgbench.config.schema import PruningConfig, SearchConfig
from sgbench.search import study as st
from sgbench.search.rungs import promoted, rung_sizes
from sgbench.search.space import PARAMS, grid_points, suggest, values

RUNG = "rung"  # user attr: fidelity index of a grid trial
RUNG_VALUE = "rung_value"  # user attr: its objective at that fidelity
POINT = "point"  # user attr: the grid point's index (ranking ties, trial id)
DECIDED = "sgbench_rung_decided_{}"  # study attr: promotions out of rung r are enqueued

SAMPLERS: dict[str, Callable[[SearchConfig], optuna.samplers.BaseSampler]] = {
    # grid points come from the queue; the sampler only matters if the queue ran dry mid-ask
    "grid": lambda s: optuna.samplers.RandomSampler(seed=s.seed),
    "random": lambda s: optuna.samplers.RandomSampler(seed=s.seed),
    "tpe": lambda s: optuna.samplers.TPESampler(seed=s.seed, n_startup_trials=min(10, max(2, (s.budget or 10) // 4))),
    # MOTPE copes with small budgets better than NSGA-II's 50-trial generations
    "multi-objective": lambda s: optuna.samplers.TPESampler(seed=s.seed, n_startup_trials=min(10, max(2, (s.budget or 10) // 4))),
}

STARTUP_TRIALS = 4  # Optuna pruners: finished trials before anything is pruned (default)

PRUNERS: dict[str, Callable[[PruningConfig], optuna.pruners.BasePruner]] = {
    "median": lambda p: optuna.pruners.MedianPruner(n_startup_trials=_startup(p), n_warmup_steps=0),
    "percentile": lambda p: optuna.pruners.PercentilePruner(p.percentile, n_startup_trials=_startup(p)),
    # steps are sample counts, so the first rung sits at the first fidelity
    "halving": lambda p: optuna.pruners.SuccessiveHalvingPruner(min_resource=p.fidelities[0],
                                                                reduction_factor=p.reduction_factor),
    "none": lambda p: optuna.pruners.NopPruner(),
}


def _startup(p: PruningConfig) -> int:
    return STARTUP_TRIALS if p.startup_trials is None else p.startup_trials


def make_sampler(search: SearchConfig) -> optuna.samplers.BaseSampler:
    return SAMPLERS[search.sampler](search)


def make_pruner(search: SearchConfig) -> optuna.pruners.BasePruner:
    if search.pruning is None or search.sampler == "grid":  # the grid prunes by rungs, not by Optuna
        return optuna.pruners.NopPruner()
    return PRUNERS[search.pruning.pruner](search.pruning)


@dataclass
class Task:
    """One trial this worker runs: where its point comes from and where it stops."""

    trial: optuna.Trial
    point: dict[str, Any]  # the trial's parameter values
    stops: list[int]  # sample counts at which results are computed; the trial ends at the last
    # (value, n) -> prune now? Called at every stop but the last; None: never prune within a trial
    should_prune: Optional[Callable[[float, int], bool]] = None
    note: str = ""  # e.g. 'rung 1' for the progress line


@dataclass
class Outcome:
    rows: list[dict]
    state: TrialState
    values: Optional[list[float]] = None
    note: str = ""
    error: str = ""  # first line of a failure
    final: bool = False  # a failure that a retry would repeat (objective not finite)


class Strategy(Protocol):
    """How a study hands out trials (the Runner's only view of baselines and search)."""

    def seed(self, study: optuna.Study) -> None:
        """Enqueue fixed work once per study (every worker calls it; it is idempotent)."""

    def next(self, study: optuna.Study) -> Optional[Task]:
        """The next trial for this worker, or None when there is nothing to do now (other
        workers may still be running trials; the Runner waits for them or stops)."""

    def finish(self, study: optuna.Study, task: Task, outcome: Outcome) -> None:
        """Record the outcome in the storage."""

    def remaining(self, study: optuna.Study) -> int:
        """Trials not finished yet in any worker, including ones still to be created."""


def _register(trial: optuna.Trial, point: dict, choices: dict[str, list]) -> None:
    """Record a queued trial's fixed params through suggest (the study then knows their space)."""
    for name, value in point.items():
        trial.suggest_categorical(name, choices[name])


def _record(study: optuna.Study, task: Task, outcome: Outcome, state: TrialState, values=None) -> None:
    trial = task.trial
    try:
        trial.set_user_attr(st.ROWS, outcome.rows)
        if outcome.error:
            trial.set_user_attr(st.ERROR, outcome.error)
        if outcome.final:
            trial.set_user_attr(st.FINAL_FAILURE, True)
    except optuna.exceptions.UpdateFinishedTrialError:
        return  # a peer declared this trial dead meanwhile; its re-queued copy counts
    st.tell(study, trial, state, values)


@dataclass
class QueueStrategy:
    """Fixed work: `items` are (params, user_attrs) with `work`, `order` and `trial_id` attrs."""

    items: list[tuple[dict, dict]]
    choices: dict[str, list]  # param name -> every value it takes (Optuna's distribution)
    n_samples: int
    fidelities: list[int] = field(default_factory=list)  # rung-synchronous pruning (grid)
    keep: float = 1.0
    minimize: bool = True

    @property
    def stops(self) -> list[int]:
        return [*self.fidelities, self.n_samples]

    def seed(self, study):
        st.seed_queue(study, self.items)

    def next(self, study):
        while True:
            trial = st.pop_queued(study)
            if trial is not None:
                fixed = study._storage.get_trial_system_attrs(trial._trial_id)["fixed_params"]
                point = {k: fixed[k] for k in self.choices}
                _register(trial, point, self.choices)
                rung = int(trial.user_attrs.get(RUNG, 0))
                last = rung == len(self.stops) - 1
                return Task(trial, point, [self.stops[rung]], None,
                            "" if len(self.stops) == 1 else f"fidelity {self.stops[rung]}" + ("" if last else " (rung)"))
            if not self._promote(study):
                return None

    def finish(self, study, task, outcome):
        rung = int(task.trial.user_attrs.get(RUNG, 0))
        if outcome.state == TrialState.COMPLETE and rung < len(self.stops) - 1:
            task.trial.set_user_attr(RUNG_VALUE, outcome.values[0])
            task.trial.report(outcome.values[0], self.stops[rung])
            _record(study, task, outcome, TrialState.PRUNED)  # shown as pruned unless promoted
        else:
            _record(study, task, outcome, outcome.state, outcome.values)

    # ---- rungs -----------------------------------------------------------------------------
    def _rung_trials(self, study) -> tuple[list, set]:
        trials = study.get_trials(deepcopy=False)
        gone = st.replaced(trials)
        return [t for t in trials if t.number not in gone], gone

    def _promote(self, study) -> bool:
        """Enqueue the next rung if the lowest undecided rung is complete; True if it did."""
        if len(self.stops) == 1 or not study.user_attrs.get(st.SEEDED):
            return False
        live, _ = self._rung_trials(study)
        for r in range(len(self.stops) - 1):
            if study.user_attrs.get(DECIDED.format(r)):
                continue
            at_r = [t for t in live if int(t.user_attrs.get(RUNG, 0)) == r]
            if not at_r or any(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in at_r):
                return False  # not started, or still running somewhere
            if any(t.state == TrialState.FAIL and not t.user_attrs.get(st.FINAL_FAILURE) for t in at_r):
                return False  # a failed point blocks its rung until it is retried (--resume)
            results = [(int(t.user_attrs[POINT]), float(t.user_attrs.get(RUNG_VALUE, math.nan))) for t in at_r]
            keep = set(promoted(results, self.keep, self.minimize))
            have = {t.user_attrs.get(st.WORK) for t in live}
            for t in at_r:
                point = int(t.user_attrs[POINT])
                work = _grid_work(point, r + 1)
                if point in keep and work not in have:
                    attrs = {k: v for k, v in t.user_attrs.items() if k not in st.NOT_RESULTS + (RUNG_VALUE, st.RETRY_OF)}
                    attrs.update({RUNG: r + 1, st.WORK: work, st.PROMOTED_FROM: t.number})
                    study.enqueue_trial(st._fixed(t), user_attrs=attrs)
            study.set_user_attr(DECIDED.format(r), True)
            return True
        return False

    def remaining(self, study):
        trials, gone = self._rung_trials(study)
        if len(self.stops) == 1:
            return sum(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in trials)
        sizes = rung_sizes(len(self.items), len(self.stops), self.keep)
        done = [0] * len(sizes)
        for t in trials:
            if t.state not in (TrialState.WAITING, TrialState.RUNNING):
                done[int(t.user_attrs.get(RUNG, 0))] += 1
        return sum(max(0, n - d) for n, d in zip(sizes, done))


def _grid_work(index: int, rung: int) -> str:
    return f"grid:{index}:{rung}"


@dataclass
class OptunaStrategy:
    """Points drawn by Optuna's sampler within `budget` trials; Optuna's pruner stops trials."""

    search: SearchConfig
    n_samples: int

    def seed(self, study):
        pass  # nothing fixed: retries are the only queued work

    def next(self, study):
        trial = st.ask_within_budget(study, self.search.budget)
        if trial is None:
            return None
        if st.WORK not in trial.user_attrs:  # a new point; retries inherit these
            trial.set_user_attr(st.WORK, f"trial:{trial.number}")
            trial.set_user_attr(st.ORDER, trial.number)
            trial.set_user_attr(st.TRIAL_ID, f"s-{trial.number:04d}")
        point = suggest(trial, self.search.space)
        p = self.search.pruning
        if p is None:
            return Task(trial, point, [self.n_samples])

        def should_prune(value: float, n: int) -> bool:
            trial.report(value, n)
            return trial.should_prune()

        return Task(trial, point, [*p.fidelities, self.n_samples], should_prune)

    def finish(self, study, task, outcome):
        _record(study, task, outcome, outcome.state, outcome.values)

    def remaining(self, study):
        live = sum(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in study.get_trials(deepcopy=False))
        return live + max(0, self.search.budget - len(st.counted_trials(study)))


def baseline_strategy(methods: list, settings: list[dict], n_samples: int) -> QueueStrategy:
    """The suite's fixed methods, one queue item each (trial id b-<name>)."""
    names = [m.name for m in methods]
    items = [({"baseline": name}, {"setting": s, st.TRIAL_ID: f"b-{name}", st.WORK: f"baseline:{name}", st.ORDER: i})
             for i, (name, s) in enumerate(zip(names, settings))]
    return QueueStrategy(items, {"baseline": names}, n_samples)


def search_strategy(search: SearchConfig, n_samples: int, minimize: bool) -> Strategy:
    """The search's strategy: the grid (a queue, pruned by rungs) or one of Optuna's samplers."""
    if search.sampler != "grid":
        return OptunaStrategy(search, n_samples)
    points = grid_points(search.space)
    if search.budget is not None:
        points = points[: search.budget]
    items = [(p, {POINT: i, RUNG: 0, st.TRIAL_ID: f"s-{i:04d}", st.WORK: _grid_work(i, 0), st.ORDER: i})
             for i, p in enumerate(points)]
    choices = {name: values(getattr(search.space, name)) for name in PARAMS}
    p = search.pruning
    if p is None or p.keep_fraction >= 1.0:
        return QueueStrategy(items, choices, n_samples)
    return QueueStrategy(items, choices, n_samples, list(p.fidelities), p.keep_fraction, minimize)
