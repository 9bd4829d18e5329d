"""Search space, strategies, the study queue and trials.csv as a view of the studies."""

import csv

import optuna
import pytest
from optuna.trial import TrialState

from sgbench.config.schema import PruningConfig, RangeConfig, SearchConfig, SpaceConfig
from sgbench.errors import UserError
from sgbench.search import study as st
from sgbench.search.space import grid_points, suggest
from sgbench.search.store import LEAD, collect_rows, write_trials_csv
from sgbench.search.strategies import PRUNERS, SAMPLERS, make_pruner, make_sampler


def test_paper_grid_keeps_only_strong_below_weak():
    space = SpaceConfig(gamma_strong=RangeConfig(0.0, 0.8, 0.1), gamma_weak=RangeConfig(0.1, 0.9, 0.1),
                        omega=[1.3, 1.5, 1.7, 1.9])
    pts = grid_points(space)
    assert len(pts) == 4 * 45  # 9 x 9 lattice, strictly upper triangle incl. diagonal offsets: 45 pairs
    assert all(p["gamma_strong"] < p["gamma_weak"] for p in pts)
    assert pts[0] == {"gamma_strong": 0.0, "gamma_weak": 0.1, "omega": 1.3}
    assert {p["omega"] for p in pts} == {1.3, 1.5, 1.7, 1.9}
    assert 0.3 in {p["gamma_strong"] for p in pts}  # lattice values are exact, not 0.30000000000000004


@pytest.mark.parametrize("space", [
    SpaceConfig(gamma_strong=[0.0, 0.5, 0.9], gamma_weak=[0.5, 0.9], omega=[1.5, 3.0]),
    SpaceConfig(gamma_strong=RangeConfig(0.0, 0.8), gamma_weak=RangeConfig(0.3, 0.9), omega=RangeConfig(1.0, 4.0)),
    SpaceConfig(gamma_strong=RangeConfig(0.0, 0.8, 0.2), gamma_weak=RangeConfig(0.2, 0.8, 0.2), omega=[2.0]),
])
def test_tpe_suggestions_respect_the_constraint(space):
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5))
    seen = []
    for i in range(25):
        t = study.ask()
        p = suggest(t, space)
        assert 0.0 <= p["gamma_strong"] < p["gamma_weak"] < 1.0
        lo, hi = space.bounds("omega")
        assert lo <= p["omega"] <= hi
        seen.append(p)
        study.tell(t, p["gamma_weak"] - p["gamma_strong"] + p["omega"])
    assert len({(p["gamma_strong"], p["gamma_weak"]) for p in seen}) > 1


def test_every_registered_strategy_builds():
    search = SearchConfig(sampler="tpe", budget=4)
    for name in SAMPLERS:
        assert isinstance(SAMPLERS[name](search), optuna.samplers.BaseSampler)
    prune = PruningConfig(fidelities=[100])
    for name in PRUNERS:
        assert isinstance(PRUNERS[name](prune), optuna.pruners.BasePruner)
    assert isinstance(make_pruner(SearchConfig()), optuna.pruners.NopPruner)
    assert isinstance(make_sampler(SearchConfig(sampler="multi-objective", budget=3)), optuna.samplers.TPESampler)


def studies(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    return st.open_studies(url, "s", ["minimize"], SearchConfig(), has_baselines=True)


def test_queue_is_seeded_once_and_popped_exactly_once_across_handles(tmp_path):
    a = studies(tmp_path)
    b = studies(tmp_path)  # a second worker on the same storage
    items = [({"gamma_strong": 0.0, "gamma_weak": 0.5, "omega": w}, {}) for w in (1.5, 2.0, 2.5)]
    assert st.seed_queue(a.search, items) == 3
    assert st.seed_queue(b.search, items) == 0  # already seeded
    taken = []
    for s in (a.search, b.search, a.search, b.search):
        t = st.pop_queued(s)
        if t is not None:
            taken.append(t.suggest_categorical("omega", [1.5, 2.0, 2.5]))
            s.tell(t, 1.0)
    assert sorted(taken) == [1.5, 2.0, 2.5]
    assert st.pop_queued(a.search) is None


def test_interrupted_trial_is_requeued_and_hidden(tmp_path):
    s = studies(tmp_path).search
    st.seed_queue(s, [({"omega": 1.5}, {"trial_id": "x"})])
    t = st.pop_queued(s)
    t.suggest_categorical("omega", [1.5])
    st.interrupt(s, t)
    assert st.waiting(s) == 1 and st.counted_trials(s) == []
    again = st.pop_queued(s)
    assert again.suggest_categorical("omega", [1.5]) == 1.5
    assert again.user_attrs[st.RETRY_OF] == t.number and again.user_attrs["trial_id"] == "x"
    s.tell(again, 2.0)
    assert [x.number for x in st.counted_trials(s)] == [again.number]


def test_stale_trial_of_a_dead_worker_is_failed_and_requeued(tmp_path, monkeypatch):
    s = studies(tmp_path).search
    st.seed_queue(s, [({"omega": 1.5}, {})])
    t = st.pop_queued(s)
    t.suggest_categorical("omega", [1.5])
    st.heartbeat(s, t)
    # the worker dies; pretend the grace period has passed
    monkeypatch.setattr(s._storage, "_get_stale_trial_ids", lambda study_id: [t._trial_id], raising=False)
    st.recover_stale(s)
    assert s.trials[t.number].state == TrialState.FAIL
    assert st.waiting(s) == 1 and st.counted_trials(s) == []


def test_budget_counts_finished_and_running_trials(tmp_path):
    s = studies(tmp_path).search
    t1 = st.ask_within_budget(s, 2)
    t2 = st.ask_within_budget(s, 2)
    assert t1 is not None and t2 is not None
    assert st.ask_within_budget(s, 2) is None  # two running already fill the budget
    s.tell(t1, 1.0)
    s.tell(t2, state=TrialState.PRUNED)
    assert st.ask_within_budget(s, 2) is None


def test_trials_csv_is_a_view_of_the_studies(tmp_path):
    ss = studies(tmp_path)
    st.seed_queue(ss.baselines, [({"baseline": "cfg"}, {"trial_id": "b-cfg"})])
    b = st.pop_queued(ss.baselines)
    b.suggest_categorical("baseline", ["cfg"])
    b.set_user_attr("rows", [{"trial_id": "b-cfg", "method": "cfg", "omega": 1.5, "seed": s, "n_samples": 8,
                              "fd_classifier": 10.0 + s, "gflops": 2.0} for s in (0, 1)])
    ss.baselines.tell(b, 10.5)
    t = st.ask_within_budget(ss.search, 5)
    t.set_user_attr("rows", [{"trial_id": "s-0000", "method": "sg", "gamma_strong": 0.0, "gamma_weak": 0.5,
                              "omega": 3.0, "seed": 0, "n_samples": 4, "fd_classifier": 99.0}])
    ss.search.tell(t, state=TrialState.PRUNED)
    running = st.ask_within_budget(ss.search, 5)  # still running: not in the file
    rows = collect_rows(ss)
    path = write_trials_csv(tmp_path / "trials.csv", rows)
    with open(path) as f:
        reader = csv.DictReader(f)
        got = list(reader)
        header = reader.fieldnames
    assert header[: len(LEAD)] == LEAD and header[len(LEAD)] == "fd_classifier"
    assert header[-8:] == ["gflops", "gflops_attn", "images_per_s", "status", "label", "interval", "duration_s", "error"]
    assert [(r["trial_id"], r["role"], r["seed"], r["status"]) for r in got] == [
        ("b-cfg", "baseline", "0", "complete"), ("b-cfg", "baseline", "1", "complete"),
        ("s-0000", "search", "0", "pruned")]
    assert got[0]["fd_classifier"] == "10" and got[2]["gamma_weak"] == "0.5" and got[0]["gamma_weak"] == ""
    assert running.number == 1
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left nothing behind


def test_items_enqueued_twice_by_racing_workers_are_popped_once(tmp_path):
    a = studies(tmp_path)
    items = [({"omega": w}, {}) for w in (1.5, 2.0)]
    for _ in range(2):  # both workers passed the "already seeded?" check before either marked it
        for params, attrs in items:
            a.search.enqueue_trial(params, user_attrs=attrs)
    taken = []
    while (t := st.pop_queued(a.search)) is not None:
        taken.append(t.suggest_categorical("omega", [1.5, 2.0]))
        a.search.tell(t, 1.0)
    assert taken == [1.5, 2.0]
    assert len(st.counted_trials(a.search)) == 2


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_every_lattice_point_is_reachable_and_exact(sampler):
    """A stepped range reaches both ends of its lattice for every gamma_strong (0.8 and 0.9 were
    lost to floating-point floor division: (0.9 - 0.3) // 0.1 == 5), and values are lattice values."""
    space = SpaceConfig(gamma_strong=RangeConfig(0.0, 0.8, 0.1), gamma_weak=RangeConfig(0.1, 0.9, 0.1),
                        omega=RangeConfig(3.0, 12.0, 3.0))
    lattice = {(p["gamma_strong"], p["gamma_weak"], p["omega"]) for p in grid_points(space)}
    study = optuna.create_study(sampler=SAMPLERS[sampler](SearchConfig(sampler=sampler, budget=40)))
    seen = set()
    for _ in range(1500 if sampler == "random" else 200):
        t = study.ask()
        p = suggest(t, space)
        seen.add((p["gamma_strong"], p["gamma_weak"], p["omega"]))
        study.tell(t, p["omega"])
    assert seen <= lattice  # exact lattice values (no 0.30000000000000004)
    if sampler == "random":
        assert seen == lattice  # all 180 points, including gamma_strong 0.8 and (0.1, 0.9), (0.3, 0.9), (0.7, 0.9)


def test_ranges_keep_strong_below_the_weak_bound():
    """gamma_strong's values stop below gamma_weak's upper bound, on its own lattice."""
    space = SpaceConfig(gamma_strong=RangeConfig(0.0, 0.8, 0.2), gamma_weak=RangeConfig(0.5, 0.9, 0.2))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    strong = set()
    for _ in range(200):
        t = study.ask()
        p = suggest(t, space)
        assert p["gamma_strong"] < p["gamma_weak"]
        strong.add(p["gamma_strong"])
        study.tell(t, 0.0)
    assert strong == {0.0, 0.2, 0.4, 0.6, 0.8}  # 0.8 < 0.9: kept (the weak lattice ends at 0.9)


def test_two_copies_popped_at_once_by_two_workers_keep_exactly_one(tmp_path):
    """Both workers ask before either checks for a duplicate: each sees the other copy running.
    Exactly one copy (the lower-numbered) keeps the work; before, both gave it up and the work was
    lost (a rung short for good: the run exited 3 on every --resume)."""
    a = studies(tmp_path)
    for _ in range(2):  # two workers promoted the same rung at once
        a.search.enqueue_trial({"omega": 1.5}, user_attrs={st.WORK: "grid:0:1"})
    first, second = a.search.ask(), a.search.ask()
    fixed = {"omega": 1.5}
    verdicts = [st._duplicate(a.search, first, fixed), st._duplicate(a.search, second, fixed)]
    assert verdicts == [False, True]
    a.search.tell(first, 1.0)
    a.search.enqueue_trial({"omega": 1.5}, user_attrs={st.WORK: "grid:0:1"})
    third = a.search.ask()
    assert st._duplicate(a.search, third, fixed)  # a finished copy keeps the work against any later one


def test_studies_name_their_objectives_for_optuna_dashboard(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    names = ["fid", "gflops"]
    st.open_studies(url, "s", ["minimize", "minimize"], SearchConfig(), has_baselines=True, metric_names=names)
    st.open_studies(url, "s", ["minimize", "minimize"], SearchConfig(), has_baselines=True, metric_names=names)  # a joining worker
    for study_name in ("s", "s.baselines"):
        assert optuna.load_study(study_name=study_name, storage=url).metric_names == names
    with pytest.raises(UserError, match="1 metric names for 2 objectives"):
        st.open_studies(url, "t", ["minimize", "minimize"], SearchConfig(), has_baselines=False, metric_names=["fid"])
