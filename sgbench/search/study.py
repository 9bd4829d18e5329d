"""Optuna studies of a run: the search study and a baseline study, in one storage URL.

The storage is the source of truth, so several workers (processes, machines) and resumed runs
share it safely:
- fixed work (baselines, grid points, retries) is enqueued once and popped from the storage, so
  each item is taken by exactly one worker;
- a trial records a heartbeat while it runs; a trial of a killed worker goes stale after
  `GRACE_S` and is failed and re-enqueued by the next worker that looks (`recover_stale`);
- an interrupted trial (Ctrl-C) is re-enqueued at once and marked, so trials.csv never shows it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from dataclasses import dataclass
from typing import Optional

import optuna
from optuna.trial import FrozenTrial, TrialState

from sgbench.config.schema import SearchConfig
from sgbench.errors import UserError
from sgbench.search.strategies import make_pruner, make_sampler

HEARTBEAT_S = 20
GRACE_S = 60  # a running trial without a heartbeat for this long belongs to a dead worker

RETRY_OF = "retry_of"  # user attr: number of the interrupted trial this one redoes
INTERRUPTED = "interrupted"  # user attr on a trial stopped by the user (not a failure)
DISCARDED = "discarded"  # user attr: asked when the queue was empty, or a duplicate queue item
SEEDED = "sgbench_seeded"  # study user attr: fixed work has been enqueued

optuna.logging.set_verbosity(optuna.logging.WARNING)
logging.getLogger("optuna").setLevel(logging.WARNING)


@contextlib.contextmanager
def _quiet():
    """Heartbeats are used deliberately with ask/tell (we record them ourselves): hide the notices."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        yield


def default_storage(run_dir) -> str:
    from pathlib import Path

    return f"sqlite:///{Path(run_dir).resolve() / 'study.db'}"


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Enqueue the same fixed params again, pointing back at the trial it redoes."""
    attrs = {k: v for k, v in trial.user_attrs.items() if k not in ("rows", INTERRUPTED)}
    attrs[RETRY_OF] = trial.number
    study.enqueue_trial(dict(trial.params), user_attrs=attrs)


def _sqlite_connect(path: str):
    """SQLite for one machine: WAL (readers never block the writer), synchronous=NORMAL (a commit
    is not an fsync, so bookkeeping stays cheap; still safe when a process crashes) and a lock
    timeout, so several local workers can share the file."""
    import sqlite3

    def connect():
        con = sqlite3.connect(path, timeout=60, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        return con

    return connect


def open_storage(url: str) -> optuna.storages.RDBStorage:
    kwargs = {}
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        kwargs["engine_kwargs"] = {"creator": _sqlite_connect(url[len("sqlite:///"):])}
    try:
        with _quiet():
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=HEARTBEAT_S,
                grace_period=GRACE_S,
                heartbeat_stale_trial_callback=requeue,
                **kwargs,
            )
    except Exception as e:  # bad URL, missing driver, unreachable server
        raise UserError(f"cannot open Optuna storage {url!r}: {str(e).splitlines()[0]}") from None


@dataclass
class Studies:
    storage: optuna.storages.RDBStorage
    name: str
    search: Optional[optuna.Study]
    baselines: Optional[optuna.Study]

    def all(self) -> list[tuple[str, optuna.Study]]:
        return [(role, s) for role, s in (("baseline", self.baselines), ("search", self.search)) if s is not None]


def open_studies(storage_url: str, name: str, directions: list[str], search: Optional[SearchConfig],
                 has_baselines: bool, worker: int = 0) -> Studies:
    storage = open_storage(storage_url)

    def create(study_name, sampler=None, pruner=None):
        try:
            return optuna.create_study(storage=storage, study_name=study_name, directions=directions,
                                       sampler=sampler, pruner=pruner, load_if_exists=True)
        except ValueError as e:  # e.g. directions differ from an existing study of that name
            raise UserError(f"Optuna study {study_name!r} in {storage_url}: {e}") from None

    search_study = None
    if search is not None:
        # distinct sampler seeds per worker, or parallel TPE workers would propose the same points
        cfg = search if worker == 0 else _with_seed(search, search.seed + 7919 * worker)
        search_study = create(name, make_sampler(cfg), make_pruner(search))
    base_study = create(f"{name}.baselines") if has_baselines else None
    return Studies(storage, name, search_study, base_study)


def _with_seed(search: SearchConfig, seed: int) -> SearchConfig:
    import dataclasses

    return dataclasses.replace(search, seed=seed)


def seed_queue(study: optuna.Study, items: list[tuple[dict, dict]]) -> int:
    """Enqueue (params, user_attrs) items once per study; returns how many were added."""
    if study.user_attrs.get(SEEDED):
        return 0
    before = len(study.get_trials(deepcopy=False))
    for params, attrs in items:
        study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=True)
    study.set_user_attr(SEEDED, True)
    return len(study.get_trials(deepcopy=False)) - before


def recover_stale(study: optuna.Study) -> None:
    """Fail and re-enqueue trials of workers that died (no heartbeat for GRACE_S)."""
    with _quiet():
        optuna.storages.fail_stale_trials(study)


def _retired(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of trials that do not count: interrupted/discarded ones and those redone by a retry."""
    out = {t.user_attrs[RETRY_OF] for t in trials if RETRY_OF in t.user_attrs}
    out |= {t.number for t in trials if t.user_attrs.get(INTERRUPTED) or t.user_attrs.get(DISCARDED)}
    return out


def counted_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Trials that count toward the budget and appear in trials.csv (not waiting)."""
    trials = study.get_trials(deepcopy=False)
    retired = _retired(trials)
    return [t for t in trials if t.number not in retired and t.state != TrialState.WAITING]


def waiting(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def _fixed(t: FrozenTrial) -> Optional[dict]:
    return t.system_attrs.get("fixed_params") or (dict(t.params) if t.params else None)


def _duplicate(study: optuna.Study, number: int, fixed: dict) -> bool:
    """An earlier live trial has the same fixed params (two workers seeded the queue at once)."""
    trials = study.get_trials(deepcopy=False)
    retired = _retired(trials)
    return any(t.number < number and t.number not in retired and _fixed(t) == fixed for t in trials)


def _discard(study: optuna.Study, trial: optuna.Trial) -> None:
    trial.set_user_attr(DISCARDED, True)
    study.tell(trial, state=TrialState.FAIL)


def pop_queued(study: optuna.Study) -> Optional[optuna.Trial]:
    """The next enqueued trial, or None when the queue is empty (taken by other workers).

    Seeding is check-then-act, so workers starting at the same moment may enqueue an item
    twice; the later copy is discarded here, which keeps "each item exactly once" exact.
    """
    while waiting(study):
        with _quiet():
            trial = study.ask()
        fixed = study._storage.get_trial_system_attrs(trial._trial_id).get("fixed_params")
        if fixed is None:
            # another worker took the last item between our check and ask: give this one back
            _discard(study, trial)
            return None
        if RETRY_OF in trial.user_attrs or not _duplicate(study, trial.number, fixed):
            return trial
        _discard(study, trial)
    return None


def ask_within_budget(study: optuna.Study, budget: int) -> Optional[optuna.Trial]:
    """Queued retries first, then new trials while fewer than `budget` count."""
    trial = pop_queued(study)
    if trial is not None:
        return trial
    if len(counted_trials(study)) >= budget:
        return None
    with _quiet():
        return study.ask()


def heartbeat(study: optuna.Study, trial: optuna.Trial) -> None:
    study._storage.record_heartbeat(trial._trial_id)


@contextlib.contextmanager
def alive(study: optuna.Study, trial: optuna.Trial):
    """Record `trial`'s heartbeat every HEARTBEAT_S from a background thread while it runs (a
    batch can take longer than the grace period; torch releases the GIL while it computes)."""
    stop = threading.Event()

    def beat():
        while not stop.wait(HEARTBEAT_S):
            try:
                heartbeat(study, trial)
            except Exception:  # a missed beat is harmless; the next one retries
                pass

    heartbeat(study, trial)
    thread = threading.Thread(target=beat, name=f"sgbench-heartbeat-{trial.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def interrupt(study: optuna.Study, trial: optuna.Trial) -> None:
    """The user stopped the run mid-trial: re-enqueue it for --resume and hide it from trials.csv."""
    frozen = study._storage.get_trial(trial._trial_id)
    requeue(study, frozen)
    trial.set_user_attr(INTERRUPTED, True)
    study.tell(trial, state=TrialState.FAIL)
