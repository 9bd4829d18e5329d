"""Optuna studies of a run: the search study and a baseline study, in one storage URL.

The storage is the source of truth, so several workers (processes, machines) and resumed runs
share it safely:
- every unit of work (a baseline, a grid point at a fidelity, a retry) carries a `work` key; it is
  enqueued once and popped from the storage, and a second live trial of one key is discarded when
  popped (workers that seed the queue at the same moment), so each is done exactly once;
- a trial records a heartbeat while it runs; a trial of a dead worker — also one that died before
  its first heartbeat — goes stale after the grace period and is failed and re-enqueued by any
  live worker (`recover_stale`, which workers call between trials and while they wait);
- an interrupted trial (SIGINT, SIGTERM) is re-enqueued at once and marked, so trials.csv never
  shows it; re-enqueuing is idempotent, so repeated signals or a peer that declares the same
  trial dead never duplicate it;
- a failed trial keeps its error; `retry_failed` re-enqueues every failed trial (on --resume).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Optional

import optuna
from optuna.trial import FrozenTrial, TrialState

from sgbench.config.schema import SearchConfig
from sgbench.errors import UserError
from sgbench.secrets import redact, redact_url

# user attributes of a trial
WORK = "work"  # identity of a unit of work; one live trial per key
ORDER = "order"  # position in trials.csv
TRIAL_ID = "trial_id"
ROWS = "rows"
RETRY_OF = "retry_of"  # number of the trial this one redoes (interrupted, dead worker, failed)
PROMOTED_FROM = "promoted_from"  # number of the lower-fidelity trial of the same grid point
INTERRUPTED = "interrupted"  # stopped by a signal (not a failure)
DISCARDED = "discarded"  # asked when the queue was empty, or a duplicate queue item
ERROR = "error"  # first line of the failure
FINAL_FAILURE = "final_failure"  # a failure a retry would repeat (objective not finite): not retried
# study user attributes
SEEDED = "sgbench_seeded"  # fixed work has been enqueued
SUITE = "sgbench_suite"  # the suite snapshot (credentials masked) every worker must match

NOT_RESULTS = (ROWS, INTERRUPTED, ERROR, FINAL_FAILURE, DISCARDED)  # attributes a retry does not inherit

optuna.logging.set_verbosity(optuna.logging.WARNING)
logging.getLogger("optuna").setLevel(logging.WARNING)


def heartbeat_s() -> int:
    """Seconds between a running trial's heartbeats (env SGBENCH_HEARTBEAT_S, default 20)."""
    return max(1, int(float(os.environ.get("SGBENCH_HEARTBEAT_S", "20"))))


def grace_s() -> int:
    """Seconds without a heartbeat after which a trial belongs to a dead worker (env
    SGBENCH_GRACE_S, default 60; at least two heartbeats)."""
    return max(2 * heartbeat_s(), int(float(os.environ.get("SGBENCH_GRACE_S", "60"))))


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


def _fixed(t: FrozenTrial) -> Optional[dict]:
    return t.system_attrs.get("fixed_params") or (dict(t.params) if t.params else None)


def requeue(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Enqueue the same work again, pointing back at the trial it redoes; a no-op if that trial
    already has a retry (repeated signals, a peer that found it stale). Returns True if enqueued."""
    if any(t.user_attrs.get(RETRY_OF) == trial.number for t in study.get_trials(deepcopy=False)):
        return False
    attrs = {k: v for k, v in trial.user_attrs.items() if k not in NOT_RESULTS}
    attrs[RETRY_OF] = trial.number
    study.enqueue_trial(_fixed(trial) or {}, user_attrs=attrs)
    return True


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


class _SQLiteStorage(optuna.storages.RDBStorage):
    """RDBStorage whose trial state changes are atomic across the processes of one machine.

    Optuna takes a queued trial, and finishes one, by reading its state and then writing the new
    one; on PostgreSQL/MySQL the read locks the row (SELECT ... FOR UPDATE), but SQLite has no
    row locks and its driver runs the read outside the write transaction, so two workers could
    both take one queued trial (measured: two workers popping one queue). Here every state
    change holds an exclusive lock on `<db>.lock` (flock) from the read to the commit.
    """

    def __init__(self, url: str, lock_path: str, **kwargs):
        self._lock_path = lock_path
        self._thread_lock = threading.Lock()
        super().__init__(url, **kwargs)

    @contextlib.contextmanager
    def _locked(self):
        import fcntl

        with self._thread_lock, open(self._lock_path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def set_trial_state_values(self, trial_id, state, values=None):
        with self._locked():
            return super().set_trial_state_values(trial_id, state, values)


def open_storage(url: str) -> optuna.storages.RDBStorage:
    kwargs, cls = {}, optuna.storages.RDBStorage
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = url[len("sqlite:///"):]
        kwargs["engine_kwargs"] = {"creator": _sqlite_connect(path)}
        kwargs["lock_path"], cls = f"{path}.lock", _SQLiteStorage
    for attempt in range(3):  # workers starting together may race to create the schema: retry
        try:
            with _quiet():
                return cls(
                    url,
                    heartbeat_interval=heartbeat_s(),
                    grace_period=grace_s(),
                    heartbeat_stale_trial_callback=requeue,
                    **kwargs,
                )
        except Exception as e:  # bad URL, missing driver, unreachable server, read-only file
            if attempt < 2 and "already exists" in str(e):
                time.sleep(0.5 + attempt)
                continue
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"cannot open Optuna storage {redact_url(url)!r}: {redact(first)}") from None


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
    from sgbench.search.strategies import make_pruner, make_sampler

    storage = open_storage(storage_url)

    def create(study_name, sampler=None, pruner=None):
        try:
            return optuna.create_study(storage=storage, study_name=study_name, directions=directions,
                                       sampler=sampler, pruner=pruner, load_if_exists=True)
        except ValueError as e:  # e.g. directions differ from an existing study of that name
            raise UserError(f"Optuna study {study_name!r} in {redact_url(storage_url)}: {e}") from None
        except Exception as e:  # the database refused (read-only file, lost connection)
            raise UserError(f"Optuna storage {redact_url(storage_url)}: {redact(str(e).splitlines()[0])}") from None

    search_study = None
    if search is not None:
        # distinct sampler seeds per worker, or parallel TPE workers would propose the same points
        cfg = search if worker == 0 else _with_seed(search, (search.seed + 7919 * worker) % 2**31)
        search_study = create(name, make_sampler(cfg), make_pruner(search))
    base_study = create(f"{name}.baselines") if has_baselines else None
    return Studies(storage, name, search_study, base_study)


def _with_seed(search: SearchConfig, seed: int) -> SearchConfig:
    import dataclasses

    return dataclasses.replace(search, seed=seed)


# ---- the suite every worker of a study must run ------------------------------------------------

def recorded_suite(study: optuna.Study) -> Optional[dict]:
    text = study.user_attrs.get(SUITE)
    return json.loads(text) if isinstance(text, str) else None


def record_suite(study: optuna.Study, snapshot: dict) -> None:
    if study.user_attrs.get(SUITE) is None:
        study.set_user_attr(SUITE, json.dumps(snapshot, sort_keys=True))


# ---- the queue ------------------------------------------------------------------------------

def seed_queue(study: optuna.Study, items: list[tuple[dict, dict]]) -> int:
    """Enqueue (params, user_attrs) items once per study, each carrying a `work` key; items whose
    key is already in the study are skipped (a worker that died while seeding). Returns how many
    were added."""
    if study.user_attrs.get(SEEDED):
        return 0
    have = {t.user_attrs[WORK] for t in study.get_trials(deepcopy=False) if WORK in t.user_attrs}
    added = 0
    for params, attrs in items:
        if attrs.get(WORK) is None or attrs[WORK] not in have:
            study.enqueue_trial(params, user_attrs=attrs)
            added += 1
    study.set_user_attr(SEEDED, True)
    return added


def replaced(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of trials that are not results: interrupted, discarded, or redone by a retry."""
    out = {t.user_attrs[RETRY_OF] for t in trials if RETRY_OF in t.user_attrs}
    out |= {t.number for t in trials if t.user_attrs.get(INTERRUPTED) or t.user_attrs.get(DISCARDED)}
    return out


def superseded(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of lower-fidelity trials of grid points that went on to a higher fidelity."""
    return {t.user_attrs[PROMOTED_FROM] for t in trials if PROMOTED_FROM in t.user_attrs}


def counted_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Trials that count toward the budget and appear in trials.csv (not waiting)."""
    trials = study.get_trials(deepcopy=False)
    hidden = replaced(trials) | superseded(trials)
    return [t for t in trials if t.number not in hidden and t.state != TrialState.WAITING]


def waiting(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def running(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


def failed(study: optuna.Study) -> list[FrozenTrial]:
    """Failed trials that are results (not redone, not interrupted)."""
    return [t for t in counted_trials(study) if t.state == TrialState.FAIL]


def _is_live_holder(t: FrozenTrial, gone: set[int]) -> bool:
    if t.number in gone:
        return False
    return t.state != TrialState.FAIL or bool(t.user_attrs.get(FINAL_FAILURE))


def _duplicate(study: optuna.Study, trial: optuna.Trial, fixed: dict) -> bool:
    """Another live trial does the same work (two workers seeded, requeued or promoted at once).

    Of two unfinished holders the lower-numbered one keeps the work, whatever their states: two
    workers that pop both copies at the same moment must not each see the other running and
    both give the work up. A finished holder always keeps it."""
    trials = study.get_trials(deepcopy=False)
    gone = replaced(trials)
    key = trial.user_attrs.get(WORK)
    for t in trials:
        if t.number == trial.number or not _is_live_holder(t, gone):
            continue
        same = t.user_attrs.get(WORK) == key if key is not None else (
            RETRY_OF not in trial.user_attrs and _fixed(t) == fixed)
        if same and (t.state.is_finished() or t.number < trial.number):
            return True
    return False


def _discard(study: optuna.Study, trial: optuna.Trial) -> None:
    trial.set_user_attr(DISCARDED, True)
    study.tell(trial, state=TrialState.FAIL)


def pop_queued(study: optuna.Study) -> Optional[optuna.Trial]:
    """The next enqueued trial, or None when the queue is empty (taken by other workers)."""
    while waiting(study):
        with _quiet():
            trial = study.ask()
        heartbeat(study, trial)  # at once: a peer reclaims a silent trial only after the grace period
        fixed = study._storage.get_trial_system_attrs(trial._trial_id).get("fixed_params")
        if fixed is None:
            # another worker took the last item between our check and ask: give this one back
            _discard(study, trial)
            return None
        if not _duplicate(study, trial, fixed):
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
        trial = study.ask()
    heartbeat(study, trial)
    return trial


def retry_failed(study: optuna.Study) -> int:
    """Re-enqueue every failed trial whose failure a retry may not repeat; returns how many."""
    return sum(requeue(study, t) for t in failed(study) if not t.user_attrs.get(FINAL_FAILURE))


# ---- dead workers ------------------------------------------------------------------------------

def _has_heartbeat(storage, trial_id: int) -> bool:
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    rdb = getattr(storage, "_backend", storage)  # optuna wraps an RDBStorage in a _CachedStorage
    with _create_scoped_session(rdb.scoped_session) as session:
        return models.TrialHeartbeatModel.where_trial_id(trial_id, session) is not None


def recover_stale(study: optuna.Study) -> int:
    """Fail and re-enqueue trials of dead workers: no heartbeat for the grace period, or none ever
    recorded although the trial started longer ago than that. Returns how many were reclaimed."""
    storage = study._storage
    before = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    with _quiet():
        optuna.storages.fail_stale_trials(study)  # calls `requeue` for each trial it failed
    now = _dt.datetime.now()  # the clock Optuna stamps datetime_start with
    for t in running(study):
        if t.datetime_start is None or (now - t.datetime_start).total_seconds() <= grace_s():
            continue
        if _has_heartbeat(storage, t._trial_id):
            continue  # its heartbeat decides (fail_stale_trials above)
        try:
            if storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                requeue(study, storage.get_trial(t._trial_id))
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another worker reclaimed it first
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,))) - before


def heartbeat(study: optuna.Study, trial: optuna.Trial) -> None:
    study._storage.record_heartbeat(trial._trial_id)


@contextlib.contextmanager
def alive(study: optuna.Study, trial: optuna.Trial):
    """Record `trial`'s heartbeat every heartbeat_s() from a background thread while it runs (a
    batch can take longer than the grace period; torch releases the GIL while it computes)."""
    stop = threading.Event()
    interval = heartbeat_s()

    def beat():
        while not stop.wait(interval):
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
    """A signal stopped the run mid-trial: re-enqueue it for --resume and hide it from trials.csv.
    Order matters for a kill in between: the retry exists before the trial is marked, and a
    trial with a retry is never shown."""
    frozen = study._storage.get_trial(trial._trial_id)
    requeue(study, frozen)
    try:
        trial.set_user_attr(INTERRUPTED, True)
        study.tell(trial, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass  # a peer declared it dead meanwhile; the retry above (or the peer's) redoes it


def tell(study: optuna.Study, trial: optuna.Trial, state: TrialState, values=None) -> bool:
    """Finish `trial`; False if a peer had declared it dead meanwhile (its retry counts)."""
    try:
        if state == TrialState.COMPLETE:
            study.tell(trial, values)
        else:
            study.tell(trial, state=state)
        return True
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
