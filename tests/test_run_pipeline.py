"""The runner's logic with a stand-in for the model/metric stages: exact, millisecond trials.

The stand-in yields images whose pixel value encodes the setting, so metrics are known
functions of (setting, n): pruning, TPE budgets, multi-objective and resumes are checked exactly.
"""

import csv
import math

import numpy as np
import pytest
import yaml

from sgbench.run.main import run_suite
from sgbench.run.stages import Stages


def num(g) -> float:
    """A gamma as a number (schedules count as 0.3 here)."""
    return float(g) if isinstance(g, (int, float)) else 0.3


class FakeAcc:
    def __init__(self):
        self.n = 0
        self.total = 0.0

    def update(self, images, labels):
        self.n += len(images)
        self.total += float(images.astype(np.float64).mean(axis=(1, 2, 3)).sum())


class FakeStages(Stages):
    """The Stages protocol on synthetic images; fd = pixel value + 100 / n."""

    instances = []

    def __init__(self, loaded, device, log):
        self.suite = loaded.suite
        self.streams = []
        FakeStages.instances.append(self)

    def load(self):
        pass

    @staticmethod
    def value(setting) -> int:
        return int(round(10 * abs(setting.omega - 2.0) + 20 * num(setting.gamma_strong)))

    def stream(self, setting, seed, start, stop):
        self.streams.append((setting.method, (setting.omega, setting.gamma_strong, setting.gamma_weak), None, seed,
                             start, stop))
        bs = self.suite.sampler.batch_size
        for i in range(start, stop, bs):
            idx = np.arange(i, min(i + bs, stop))
            yield idx, np.full((len(idx), 2, 2, 3), self.value(setting), np.uint8), idx % 10

    def accumulator(self, trial_id=None, seed=None):
        return FakeAcc()

    def compute(self, acc):
        return {"fd_classifier": acc.total / acc.n + 100.0 / acc.n, "class_acc": 0.5}

    def gflops(self, setting):
        return 1.0 + (1.0 - num(setting.gamma_strong)) + (0 if setting.gamma_weak is None else 1 - num(setting.gamma_weak))

    def gflops_attn(self, setting):
        return self.gflops(setting) + 0.25


def suite_file(tmp_path, **search) -> str:
    for f in ("m.safetensors", "c.safetensors"):
        (tmp_path / f).write_bytes(b"x")
    data = {
        "name": "fake",
        "device": "cpu",
        "seeds": [0, 1],
        "model": {"checkpoint": "m.safetensors"},
        "sampler": {"batch_size": 4},
        "methods": [{"name": "unguided", "method": "none"}, {"name": "cfg", "method": "cfg", "omega": 1.5}],
        "search": {"space": {"gamma_strong": [0.0, 0.5], "gamma_weak": [0.5, 0.9], "omega": [1.5, 2.0, 3.0]}, **search},
        "metrics": {"extractor": "classifier", "weights": "c.safetensors", "reference": {"dataset": "shapes", "n": 8},
                    "n_samples": 16, "keys": ["fd_classifier", "class_acc"]},
        "report": {"enabled": False, "sample_grid": 4},
    }
    p = tmp_path / "suite.yaml"
    p.write_text(yaml.safe_dump(data))
    return str(p)


def run(tmp_path, suite, **kw):
    FakeStages.instances.clear()
    return run_suite(suite, out=str(tmp_path / "results"), stages_factory=FakeStages, progress=False,
                     argv=["test"], log=lambda m: None, **kw).run_dir


def rows(run_dir):
    with open(run_dir / "trials.csv") as f:
        return list(csv.DictReader(f))


def test_grid_run_writes_baselines_and_every_grid_point_per_seed(tmp_path):
    run_dir = run(tmp_path, suite_file(tmp_path))
    got = rows(run_dir)
    assert len(got) == (2 + 9) * 2  # (2 baselines + 3 pairs x 3 omegas) x 2 seeds
    assert [r["trial_id"] for r in got[:4]] == ["b-unguided", "b-unguided", "b-cfg", "b-cfg"]
    assert {r["status"] for r in got} == {"complete"}
    sg = [r for r in got if r["role"] == "search"]
    assert all(float(r["gamma_strong"]) < float(r["gamma_weak"]) for r in sg)
    r = next(r for r in sg if r["omega"] == "3" and r["gamma_strong"] == "0.5")
    assert float(r["fd_classifier"]) == pytest.approx(10 * 1 + 20 * 0.5 + 100 / 16)  # value(setting) + 100 / n
    assert float(r["gflops"]) == pytest.approx(1 + 0.5 + 0.1) and float(r["gflops_attn"]) == pytest.approx(1.85)
    assert float(r["images_per_s"]) > 0 and r["n_samples"] == "16"
    assert (run_dir / "suite.yaml").is_file() and (run_dir / "env.json").is_file() and (run_dir / "study.db").is_file()
    assert (run_dir / "samples" / "s-0000.png").is_file()
    assert len({(r["trial_id"], r["seed"]) for r in got}) == len(got)


def test_existing_run_is_never_overwritten_without_resume(tmp_path):
    suite = suite_file(tmp_path, budget=1)
    first = run(tmp_path, suite)
    before = (first / "trials.csv").read_text()
    second = run(tmp_path, suite)
    assert second.name == "fake-2" and (first / "trials.csv").read_text() == before


def test_grid_pruning_is_rung_synchronous_with_deterministic_ties(tmp_path):
    suite = suite_file(tmp_path, pruning={"fidelities": [8], "pruner": "median"})
    run_dir = run(tmp_path, suite)
    got = [r for r in rows(run_dir) if r["role"] == "search"]
    # value at n = 8: round(10 |omega - 2| + 20 gamma_strong) + 100 / 8; grid order omega, then pairs
    # -> [5, 5, 15, 0, 0, 10, 10, 10, 20]; the median keeps the best ceil(9 / 2) = 5, the tie at 10
    # going to the first grid point
    status = {r["trial_id"]: r["status"] for r in got}
    assert sorted(t for t, s in status.items() if s == "complete") == ["s-0000", "s-0001", "s-0003", "s-0004", "s-0005"]
    assert [r["trial_id"] for r in got[::2]] == [f"s-{i:04d}" for i in range(9)]  # grid order, whatever ran first
    for r in got:
        n = "16" if status[r["trial_id"]] == "complete" else "8"
        assert r["n_samples"] == n
        if n == "8":
            expected = round(10 * abs(float(r["omega"]) - 2.0) + 20 * float(r["gamma_strong"])) + 100 / 8
            assert float(r["fd_classifier"]) == pytest.approx(expected)
    sg = [s for s in FakeStages.instances[0].streams if s[0] == "sg"]
    # every point sampled 0..8 first; the kept ones sampled their stream again, 0..16
    assert sorted(s[4:] for s in sg) == [(0, 8)] * 18 + [(0, 16)] * 10
    first_rung = [i for i, s in enumerate(sg) if s[5] == 8]
    assert max(first_rung) < min(i for i, s in enumerate(sg) if s[5] == 16)  # the whole rung before any promotion


def test_grid_pruning_decisions_do_not_depend_on_interruptions(tmp_path):
    def strip(rs):
        return [{k: v for k, v in r.items() if k not in ("images_per_s", "duration_s")} for r in rs]

    suite = suite_file(tmp_path, pruning={"fidelities": [4, 8], "pruner": "halving", "reduction_factor": 2})
    reference = strip(rows(run(tmp_path, suite, name="ref")))
    assert {r["status"] for r in reference} == {"complete", "pruned"}
    for k in (3, 8, 12):
        class Interrupting(FakeStages):
            def stream(self, setting, seed, start, stop):
                if len(self.streams) == k:
                    raise KeyboardInterrupt
                return super().stream(setting, seed, start, stop)

        with pytest.raises(KeyboardInterrupt):
            run_suite(suite, out=str(tmp_path / "results"), stages_factory=Interrupting, progress=False,
                      argv=["t"], log=lambda m: None, name=f"cut{k}")
        result = run_suite(suite, out=str(tmp_path / "results"), stages_factory=FakeStages, progress=False,
                           argv=["t"], log=lambda m: None, name=f"cut{k}", resume=True)
        assert result.exit_code == 0 and strip(rows(result.run_dir)) == reference, k


def test_tpe_with_optuna_pruner_continues_the_same_stream(tmp_path):
    suite = suite_file(tmp_path, sampler="tpe", budget=8, pruning={"fidelities": [8], "pruner": "median",
                                                                    "startup_trials": 1})
    run_dir = run(tmp_path, suite)
    got = [r for r in rows(run_dir) if r["role"] == "search"]
    assert len({r["trial_id"] for r in got}) == 8
    pruned = [r for r in got if r["status"] == "pruned"]
    assert all(r["n_samples"] == "8" for r in pruned)
    sg = [s for s in FakeStages.instances[0].streams if s[0] == "sg"]
    assert not any(s[4] == 0 and s[5] == 16 for s in sg)  # a continued trial went on from sample 8
    assert any(s[4] == 8 and s[5] == 16 for s in sg)


def test_tpe_budget_and_multi_objective_front(tmp_path):
    run_dir = run(tmp_path, suite_file(tmp_path, sampler="tpe", budget=5))
    assert len({r["trial_id"] for r in rows(run_dir) if r["role"] == "search"}) == 5
    mo = tmp_path / "mo"
    mo.mkdir()
    run_dir = run(mo, suite_file(mo, sampler="multi-objective", budget=4))
    got = [r for r in rows(run_dir) if r["role"] == "search"]
    assert len({r["trial_id"] for r in got}) == 4 and all(r["status"] == "complete" for r in got)


def test_max_trials_then_resume_runs_only_the_remaining_trials(tmp_path):
    suite = suite_file(tmp_path)
    run_dir = run(tmp_path, suite, max_trials=4)
    assert len({r["trial_id"] for r in rows(run_dir)}) == 4
    run_dir2 = run(tmp_path, suite, resume=True)
    assert run_dir2 == run_dir
    got = rows(run_dir)
    assert len(got) == 22 and len({(r["trial_id"], r["seed"]) for r in got}) == 22
    # the resumed invocation sampled 7 trials x 2 seeds, nothing of the first 4
    assert len(FakeStages.instances[0].streams) == 7 * 2


def test_interrupt_requeues_the_current_trial_and_resume_finishes_without_duplicates(tmp_path):
    suite = suite_file(tmp_path)

    class Interrupting(FakeStages):
        def stream(self, setting, seed, start, stop):
            if len(self.streams) == 9:  # mid-way through the 5th trial (2 seeds each)
                raise KeyboardInterrupt
            return super().stream(setting, seed, start, stop)

    FakeStages.instances.clear()
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, out=str(tmp_path / "results"), stages_factory=Interrupting, progress=False, argv=["t"],
                  log=lambda m: None)
    run_dir = tmp_path / "results" / "fake"
    assert len({r["trial_id"] for r in rows(run_dir)}) == 4  # the interrupted trial is not in the file
    run(tmp_path, suite, resume=True)
    got = rows(run_dir)
    assert len(got) == 22 and len({(r["trial_id"], r["seed"]) for r in got}) == 22
    assert len(FakeStages.instances[0].streams) == 7 * 2  # the interrupted one + the 6 never started


def test_resume_refuses_a_changed_suite(tmp_path):
    from sgbench.errors import UserError

    suite = suite_file(tmp_path)
    run(tmp_path, suite, max_trials=1)
    text = open(suite).read().replace("n_samples: 16", "n_samples: 32")
    open(suite, "w").write(text)
    with pytest.raises(UserError, match=r"suite differs .*suite\.metrics\.n_samples"):
        run(tmp_path, suite, resume=True)
    with pytest.raises(UserError, match="no run to resume"):
        run(tmp_path, suite, resume=True, name="other")


def test_failed_trial_is_recorded_and_the_study_goes_on(tmp_path):
    class Failing(FakeStages):
        def stream(self, setting, seed, start, stop):
            if setting.method == "cfg":
                raise RuntimeError("out of memory")
            return super().stream(setting, seed, start, stop)

    FakeStages.instances.clear()
    with pytest.warns(UserWarning, match="b-cfg .* failed: RuntimeError: out of memory"):
        result = run_suite(suite_file(tmp_path, budget=2), out=str(tmp_path / "results"), stages_factory=Failing,
                           progress=False, argv=["t"], log=lambda m: None)
    assert result.exit_code == 1 and result.failed == 1
    run_dir = result.run_dir
    got = rows(run_dir)
    failed = [r for r in got if r["status"] == "failed"]
    assert [r["trial_id"] for r in failed] == ["b-cfg"] and failed[0]["method"] == "cfg"
    assert math.isnan(float(failed[0]["fd_classifier"] or "nan"))
    assert sum(r["status"] == "complete" for r in got) == 2 + 2 * 2


def test_a_suite_of_fixed_methods_only_runs_each_once(tmp_path):
    path = suite_file(tmp_path)
    data = yaml.safe_load(open(path))
    del data["search"]
    data["methods"].append({"name": "SG_FID", "method": "sg", "omega": 2.5, "gamma_strong": "cosine:0.0:0.6",
                            "gamma_weak": "cosine:0.6:0.0"})
    open(path, "w").write(yaml.safe_dump(data))
    got = rows(run(tmp_path, path))
    assert [(r["trial_id"], r["seed"]) for r in got] == [
        ("b-unguided", "0"), ("b-unguided", "1"), ("b-cfg", "0"), ("b-cfg", "1"), ("b-SG_FID", "0"), ("b-SG_FID", "1")]
    sg = got[-1]
    assert (sg["gamma_strong"], sg["gamma_weak"], sg["schedule"], sg["label"]) == (
        "cosine:0.0:0.6", "cosine:0.6:0.0", "cosine", "SG_FID")


def test_throughput_follows_one_rule_for_every_trial(tmp_path):
    """A slow first batch (warm-up) and a last partial batch never enter images_per_s: a baseline
    that fits in one batch and a pruned search trial measure the same speed as any other trial."""
    from sgbench.config.loader import load_suite
    from sgbench.run.pipeline import Runner, RunOptions
    from sgbench.search.study import default_storage, open_studies

    clock = [0.0]

    class Timed(FakeStages):
        first = True

        def stream(self, setting, seed, start, stop):
            for batch in super().stream(setting, seed, start, stop):
                # 10 ms per image per guidance pass; the process's first batch pays 1 s of warm-up
                passes = 1 if setting.method == "none" else 2
                clock[0] += 0.01 * len(batch[0]) * passes + (1.0 if Timed.first else 0.0)
                Timed.first = False
                yield batch

    path = suite_file(tmp_path, pruning={"fidelities": [8], "pruner": "median"})
    data = yaml.safe_load(open(path))
    data["sampler"]["batch_size"] = 16  # = n_samples: every baseline is one batch
    open(path, "w").write(yaml.safe_dump(data))
    loaded = load_suite(path, check_files=False)
    run_dir = tmp_path / "run"
    (run_dir / "samples").mkdir(parents=True)
    s = loaded.suite
    studies = open_studies(default_storage(run_dir), "run", s.directions, s.search, True)
    from sgbench.run.sweep import resolve_cells

    runner = Runner(loaded, run_dir, Timed(loaded, "cpu", print), [(resolve_cells(loaded)[0], studies)],
                    RunOptions(progress=False, clock=lambda: clock[0]), log=lambda m: None)
    runner.run()
    got = rows(run_dir)
    assert {r["status"] for r in got} == {"complete", "pruned"}
    for r in got:
        assert float(r["images_per_s"]) == pytest.approx(100.0 if r["method"] == "none" else 50.0), r["trial_id"]
