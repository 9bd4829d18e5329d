"""Fault tolerance of `sgbench run`: signals, re-queuing, reclaiming dead workers' trials,
claiming run directories, the torchrun rendezvous and atomic queue pops on SQLite."""

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sgbench.run.main import run_suite
from sgbench.run.signals import Interrupts, RunInterrupted
from sgbench.search import study as st

from test_run_pipeline import FakeStages, rows, suite_file

ROOT = Path(__file__).resolve().parents[1]


# ---- signals ---------------------------------------------------------------------------------

def test_a_signal_raises_only_where_work_may_stop_and_repeats_are_ignored():
    intr = Interrupts()
    intr.handle(signal.SIGTERM)  # during bookkeeping: noted, not raised
    assert intr.requested == signal.SIGTERM
    intr.handle(signal.SIGINT)  # a second signal changes nothing
    assert intr.requested == signal.SIGTERM and intr.count == 2
    with pytest.raises(RunInterrupted) as e:
        with intr.armed():
            pass
    assert e.value.exit_code == 143
    intr = Interrupts()
    with pytest.raises(RunInterrupted) as e:
        with intr.armed():
            intr.handle(signal.SIGINT)
    assert e.value.exit_code == 130 and isinstance(e.value, KeyboardInterrupt)
    intr.handle(signal.SIGINT)  # later ones never raise, wherever they land
    intr.handle(signal.SIGTERM)


def test_real_signals_are_handled_while_installed_and_handlers_restored():
    before = signal.getsignal(signal.SIGTERM)
    intr = Interrupts()
    with intr.installed():
        with pytest.raises(RunInterrupted) as e:
            with intr.armed():
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(10**6):  # the handler runs between bytecodes
                    pass
        os.kill(os.getpid(), signal.SIGTERM)  # unarmed now: noted only
    assert e.value.exit_code == 143 and intr.count == 2
    assert signal.getsignal(signal.SIGTERM) == before


def _signalling_stages(times: int, at: int):
    class Signalling(FakeStages):
        def stream(self, setting, seed, start, stop):
            if len(self.streams) == at:
                for _ in range(times):
                    os.kill(os.getpid(), signal.SIGTERM)
            return super().stream(setting, seed, start, stop)

    return Signalling


def test_sigterm_requeues_the_trial_once_even_when_repeated_during_the_requeue(tmp_path, monkeypatch):
    suite = suite_file(tmp_path)
    real_interrupt = st.interrupt

    def interrupt(study, trial):  # more signals while the trial is being re-queued
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        real_interrupt(study, trial)

    monkeypatch.setattr(st, "interrupt", interrupt)
    with pytest.raises(RunInterrupted) as e:
        run_suite(suite, out=str(tmp_path / "results"), stages_factory=_signalling_stages(3, 9), progress=False,
                  argv=["t"], log=lambda m: None)
    assert e.value.exit_code == 143
    run_dir = tmp_path / "results" / "fake"
    assert len({r["trial_id"] for r in rows(run_dir)}) == 4  # the interrupted 5th trial is not shown
    storage = st.open_storage(st.default_storage(run_dir))
    search = optuna.load_study(study_name="fake", storage=storage)
    retries = [t for t in search.get_trials() if st.RETRY_OF in t.user_attrs]
    assert len(retries) == 1 and retries[0].state == TrialState.WAITING
    monkeypatch.setattr(st, "interrupt", real_interrupt)
    result = run_suite(suite, out=str(tmp_path / "results"), stages_factory=FakeStages, progress=False,
                       argv=["t"], log=lambda m: None, resume=True)
    got = rows(run_dir)
    assert result.exit_code == 0 and len(got) == 22 and len({(r["trial_id"], r["seed"]) for r in got}) == 22


def test_requeue_is_idempotent(tmp_path):
    study = optuna.create_study(storage=st.open_storage(f"sqlite:///{tmp_path / 's.db'}"), study_name="s")
    study.enqueue_trial({"x": 1.0}, user_attrs={st.WORK: "w"})
    trial = st.pop_queued(study)
    frozen = study._storage.get_trial(trial._trial_id)
    assert st.requeue(study, frozen) and not st.requeue(study, frozen)
    st.interrupt(study, trial)  # a third time, through the interrupt path
    assert st.waiting(study) == 1


# ---- dead workers ----------------------------------------------------------------------------

def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_reclaimed(tmp_path, monkeypatch):
    study = optuna.create_study(storage=st.open_storage(f"sqlite:///{tmp_path / 's.db'}"), study_name="s")
    study.enqueue_trial({"x": 1.0}, user_attrs={st.WORK: "a"})
    study.enqueue_trial({"x": 2.0}, user_attrs={st.WORK: "b"})
    with st._quiet():
        silent = study.ask()  # popped, then the worker died: no heartbeat was ever recorded
    alive = st.pop_queued(study)  # popped and beating
    assert st.recover_stale(study) == 0  # younger than the grace period: left alone
    monkeypatch.setattr(st, "grace_s", lambda: 0)
    assert st.recover_stale(study) == 1
    states = {t.number: t.state for t in study.get_trials()}
    assert states[silent.number] == TrialState.FAIL and states[alive.number] == TrialState.RUNNING
    (retry,) = [t for t in study.get_trials() if t.user_attrs.get(st.RETRY_OF) == silent.number]
    assert retry.state == TrialState.WAITING and retry.user_attrs[st.WORK] == "a"
    assert st.recover_stale(study) == 0  # reclaimed once


def test_a_live_worker_waits_for_and_takes_over_a_dead_peers_trial(tmp_path, monkeypatch):
    monkeypatch.setenv("SGBENCH_HEARTBEAT_S", "1")
    monkeypatch.setenv("SGBENCH_GRACE_S", "2")
    suite = suite_file(tmp_path, budget=3)
    run_dir = run_suite(suite, out=str(tmp_path / "results"), stages_factory=FakeStages, progress=False,
                        argv=["t"], log=lambda m: None, max_trials=3).run_dir
    search = optuna.load_study(study_name="fake", storage=st.open_storage(st.default_storage(run_dir)))
    dead = st.pop_queued(search)  # a peer took a grid point and died mid-trial (last heartbeat now)
    logs = []
    result = run_suite(suite, out=str(tmp_path / "results"), stages_factory=FakeStages, progress=False,
                       argv=["t"], log=logs.append, resume=True)
    got = rows(run_dir)
    assert result.exit_code == 0 and len(got) == (2 + 3) * 2 and {r["status"] for r in got} == {"complete"}
    assert len({(r["trial_id"], r["seed"]) for r in got}) == len(got)
    assert any("waiting for 1 trial(s) of other workers" in m for m in logs)
    assert search.trials[dead.number].state == TrialState.FAIL  # reclaimed, and redone by its retry


def test_failed_trials_are_retried_on_resume_with_their_tracebacks_kept(tmp_path):
    class FailingOnce(FakeStages):
        failed = False

        def stream(self, setting, seed, start, stop):
            if setting.method == "cfg" and not FailingOnce.failed:
                FailingOnce.failed = True
                raise RuntimeError("CUDA out of memory\nsecond line")
            return super().stream(setting, seed, start, stop)

    suite = suite_file(tmp_path, budget=1)
    with pytest.warns(UserWarning, match="b-cfg .* failed"):
        first = run_suite(suite, out=str(tmp_path / "results"), stages_factory=FailingOnce, progress=False,
                          argv=["t"], log=lambda m: None)
    assert first.exit_code == 1 and first.failed == 1
    (bad,) = [r for r in rows(first.run_dir) if r["status"] == "failed"]
    assert bad["error"] == "RuntimeError: CUDA out of memory"
    text = (first.run_dir / "errors" / "b-cfg.txt").read_text()
    assert "Traceback (most recent call last)" in text and "second line" in text
    again = run_suite(suite, out=str(tmp_path / "results"), stages_factory=FailingOnce, progress=False,
                      argv=["t"], log=lambda m: None, resume=True)
    got = rows(again.run_dir)
    assert again.exit_code == 0 and {r["status"] for r in got} == {"complete"} and len(got) == 3 * 2
    assert [r["trial_id"] for r in got[::2]] == ["b-unguided", "b-cfg", "s-0000"]


def test_max_trials_leaves_the_run_unfinished_with_exit_3(tmp_path):
    result = run_suite(suite_file(tmp_path), out=str(tmp_path / "results"), stages_factory=FakeStages,
                       progress=False, argv=["t"], log=lambda m: None, max_trials=2)
    assert result.exit_code == 3 and result.unfinished == 9


# ---- run directories -------------------------------------------------------------------------

def _claim(args):
    root, suite, barrier = args
    from sgbench.config.loader import load_suite
    from sgbench.run import rundir

    loaded = load_suite(suite, check_files=False)
    barrier.wait()
    return str(rundir.claim(Path(root), "x", loaded, {"pid": os.getpid()}, log=lambda m: None))


def test_concurrent_claims_of_one_name_get_distinct_complete_directories(tmp_path):
    suite = suite_file(tmp_path)
    ctx = mp.get_context("fork")
    barrier = ctx.Manager().Barrier(4)
    with ctx.Pool(4) as pool:
        dirs = pool.map(_claim, [(str(tmp_path / "r"), suite, barrier)] * 4)
    assert sorted(Path(d).name for d in dirs) == ["x", "x-2", "x-3", "x-4"]
    assert all((Path(d) / "suite.yaml").is_file() and (Path(d) / "env.json").is_file() for d in dirs)
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["x", "x-2", "x-3", "x-4"]  # no claim left


def test_a_refused_run_leaves_no_directory_and_a_killed_claim_is_cleaned(tmp_path):
    from sgbench.config.loader import load_suite
    from sgbench.run import rundir

    root = tmp_path / "r"
    root.mkdir()
    import socket

    stale = root / f".x{rundir.CLAIM}{socket.gethostname()}-{2**22 + 7}"  # a pid that cannot exist
    stale.mkdir()
    (stale / "suite.yaml").write_text("half")
    rundir.claim(root, "x", load_suite(suite_file(tmp_path), check_files=False), {}, log=lambda m: None)
    assert sorted(p.name for p in root.iterdir()) == ["x"]


# ---- torchrun rendezvous ---------------------------------------------------------------------

RANK_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from sgbench.run import rundir
    store = rundir.rendezvous_store(timeout_s=60)
    rank, _ = rundir.world()
    if rank == 0:
        rundir.publish(store, Path({path!r}))
        rundir.await_joins(store, 60)
        print("published")
    else:
        print(rundir.await_run_dir(store, 60))
""")


def _launch(tmp_path, path: str, port: int):
    env_base = {**os.environ, "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    env_base.pop("TORCHELASTIC_USE_AGENT_STORE", None)
    script = RANK_SCRIPT.format(root=str(ROOT), path=path)
    procs = [subprocess.Popen([sys.executable, "-c", script], env={**env_base, "RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (1, 0)]
    return [p.communicate(timeout=120) for p in procs]


def test_ranks_meet_in_the_launchs_own_store_so_an_old_launch_cannot_be_joined(tmp_path):
    import socket

    def port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    (out1, err1), _ = _launch(tmp_path, "/runs/first", port())
    assert out1.strip() == "/runs/first", err1
    (out2, err2), _ = _launch(tmp_path, "/runs/second", port())  # a relaunch sees only its own rank 0
    assert out2.strip() == "/runs/second", err2
    assert not list(tmp_path.iterdir())  # no marker files anywhere


# ---- SQLite queue ----------------------------------------------------------------------------

POP_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    import optuna
    from sgbench.search import study as st
    s = optuna.load_study(study_name="q", storage=st.open_storage({url!r}))
    got = []
    while (t := st.pop_queued(s)) is not None:
        got.append(t.number)
        s.tell(t, 1.0)
    print(" ".join(map(str, got)))
""")


def test_workers_on_one_sqlite_file_take_each_queued_trial_exactly_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    study = optuna.create_study(storage=st.open_storage(url), study_name="q")
    for i in range(60):
        study.enqueue_trial({"x": float(i)}, user_attrs={st.WORK: f"w{i}"})
    script = POP_SCRIPT.format(root=str(ROOT), url=url)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(4)]
    taken = [int(x) for p in procs for x in p.communicate(timeout=120)[0].split()]
    assert sorted(taken) == list(range(60))  # Optuna alone on SQLite: some taken twice (measured 83 of 80)
