"""`sgbench run --workers N`: local worker processes on one run, end to end on a tiny real suite
(both workers take trials, none twice, exit codes combine) and signals reaching every worker."""

import contextlib
import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from sgbench.run.workers import combine, exit_code_of

ROOT = Path(__file__).resolve().parents[1]


def build_suite(where: Path, n_samples: int, points: int = 12, steps: int = 8, name: str = "workers") -> Path:
    from sgbench.metrics.classifier import ClassifierConfig, ShapeClassifier, save_classifier
    from sgbench.models.dit import DiT, DiTConfig
    from sgbench.models.loading import save_sgbench_safetensors

    torch.manual_seed(0)
    cfg = DiTConfig(input_size=32, patch_size=8, in_channels=3, hidden_size=32, depth=2, num_heads=2,
                    num_classes=10, learn_sigma=False, routes=["0-1"])
    save_sgbench_safetensors(where / "model.safetensors", DiT(cfg), parametrization="velocity")
    save_classifier(ShapeClassifier(ClassifierConfig(width=4, feature_dim=8)).eval(), where / "clf.safetensors")
    data = {
        "name": name, "device": "cpu", "threads": 1, "workers": 2,
        "model": {"checkpoint": "model.safetensors"},
        "sampler": {"steps": steps, "batch_size": 16},
        "methods": [{"name": "unguided", "method": "none"}],
        "search": {"space": {"gamma_strong": [0.0], "gamma_weak": [0.25, 0.5, 0.75],
                             "omega": [1.0 + 0.5 * k for k in range(max(1, points // 3))]}},
        "metrics": {"extractor": "classifier", "weights": "clf.safetensors", "reference": {"dataset": "shapes", "n": 32},
                    "n_samples": n_samples, "batch_size": 16},
        "report": {"enabled": False, "sample_grid": 0},
    }
    path = where / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "SGBENCH_HEARTBEAT_S": "1",
       "SGBENCH_GRACE_S": "3", "PYTHONPATH": str(ROOT)}


def start(suite: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sgbench.cli", "run", str(suite), "--out", str(out),
                             "--no-progress", *extra], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "trials.csv") as f:
        return list(csv.DictReader(f))


def states(db: Path) -> dict[str, int]:
    con = sqlite3.connect(db, timeout=30)
    try:
        return dict(con.execute("SELECT state, COUNT(*) FROM trials GROUP BY state").fetchall())
    except sqlite3.OperationalError:  # the database exists, Optuna has not made its tables yet
        return {}
    finally:
        con.close()


def test_two_workers_share_the_run_and_take_each_trial_once(tmp_path):
    """--max-trials counts each worker's trials: worker 0 stops after 4 of the 7 and waits, so
    worker 1 (started once the run directory exists) takes the other 3, whatever the timing."""
    suite = build_suite(tmp_path, n_samples=16, points=6)
    proc = start(suite, tmp_path / "results", "--max-trials", "4")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err  # every trial done, by one worker or the other
    run_dir = tmp_path / "results" / "workers"
    got = rows(run_dir)
    ids = [r["trial_id"] for r in got]
    assert len(ids) == 7 and len(set(ids)) == 7  # 1 baseline + 6 grid points, none twice
    assert all(r["status"] == "complete" and r["n_samples"] == "16" for r in got)
    assert "started 1 local worker(s)" in err
    trial_lines = [line for line in err.splitlines() if line.startswith("[") and "/7]" in line]
    assert len(trial_lines) == 7, err  # worker 0 numbers every trial of the run, its own and the others'
    assert sum("[worker 1]" in line for line in trial_lines) == 3, err
    assert states(run_dir / "study.db") == {"COMPLETE": 7}  # nothing taken twice, discarded or left


def _wait_until(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _worker_pid(err_file: Path) -> int:
    for line in err_file.read_text().splitlines():
        if "started 1 local worker(s)" in line:
            return int(line.split("(pid ")[1].split(")")[0])
    raise AssertionError("no worker pid line")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as f:  # a zombie is gone for our purpose
        return f.read().split(") ")[1].split()[0] == "Z"


@contextlib.contextmanager
def two_running_workers(tmp_path):
    """A 2-worker run of long trials, started in its own session (no terminal group signal),
    once both workers sample: yields (worker 0's process, worker 1's pid, run dir, stderr file)."""
    suite = build_suite(tmp_path, n_samples=4000, points=6, steps=4)
    run_dir = tmp_path / "results" / "workers"
    err_file = tmp_path / "err.txt"
    with open(err_file, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "sgbench.cli", "run", str(suite), "--out",
                                 str(tmp_path / "results"), "--no-progress"], cwd=ROOT, env=ENV,
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            _wait_until(lambda: (run_dir / "study.db").exists() and states(run_dir / "study.db").get("RUNNING") == 2,
                        120, "two running trials")
            yield proc, _worker_pid(err_file), run_dir, err_file
        finally:
            if proc.poll() is None:
                proc.kill()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_worker_0_reaches_every_worker(tmp_path, signum):
    """While both workers sample, a signal to worker 0 only: both re-queue their trial, exit with
    the signal's code; --resume then finishes the run with every trial once (checked after SIGTERM
    only: the resume is most of the test's time, and it does not depend on the signal)."""
    with two_running_workers(tmp_path) as (proc, child, run_dir, err_file):
        proc.send_signal(signum)  # to worker 0 only
        code = proc.wait(timeout=120)
    text = err_file.read_text()
    assert code == {signal.SIGTERM: 143, signal.SIGINT: 130}[signum], text
    assert _gone(child)
    s = states(run_dir / "study.db")
    assert "RUNNING" not in s and s.get("WAITING", 0) >= 2, (s, text)  # both trials re-queued
    assert text.count("re-queued") >= 2, text  # worker 0's line and worker 1's (relayed)
    if signum != signal.SIGTERM:
        return
    again = start(tmp_path / "suite.yaml", tmp_path / "results", "--resume", "--workers", "1")
    _, err2 = again.communicate(timeout=600)
    assert again.returncode == 0, err2
    ids = [r["trial_id"] for r in rows(run_dir)]
    assert len(ids) == 7 and len(set(ids)) == 7


def test_a_worker_dies_with_worker_0(tmp_path):
    """SIGKILL of worker 0 (nothing forwarded): the other worker gets SIGTERM from the kernel
    (PR_SET_PDEATHSIG), re-queues its trial and exits."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux-only")
    with two_running_workers(tmp_path) as (proc, child, run_dir, _):
        proc.kill()
        proc.wait(timeout=30)
    _wait_until(lambda: _gone(child), 60, "the worker to exit")
    s = states(run_dir / "study.db")
    assert s.get("RUNNING") == 1 and s.get("WAITING", 0) >= 1, s  # worker 0's trial: reclaimed after the grace period


def test_exit_codes_combine_by_severity():
    assert combine([0, 0]) == 0
    assert combine([0, 3]) == 3 and combine([3, 1]) == 1 and combine([1, 2]) == 2
    assert combine([0, 143]) == 143 and combine([2, 130]) == 130 and combine([1, exit_code_of(-9)]) == 137
    assert combine([]) == 0 and exit_code_of(-15) == 143 and exit_code_of(3) == 3


def test_workers_is_a_suite_key_that_may_change_between_invocations(tmp_path):
    from sgbench.config.loader import load_suite
    from sgbench.errors import UserError
    from sgbench.run.rundir import EXECUTION_KEYS

    path = build_suite(tmp_path, n_samples=8)
    assert load_suite(path).suite.workers == 2
    assert "workers" in EXECUTION_KEYS  # --resume with another worker count is the same experiment
    data = yaml.safe_load(path.read_text())
    data["workers"] = 0
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match="suite.workers: must be >= 1"):
        load_suite(path)


@pytest.mark.parametrize("value", ["0", "-1", "two", "257"])
def test_a_bad_workers_option_is_refused_before_anything_is_written(tmp_path, capsys, value):
    from sgbench.cli import main

    suite = build_suite(tmp_path, n_samples=8)
    assert main(["run", str(suite), "--out", str(tmp_path / "results"), "--workers", value]) == 2
    err = capsys.readouterr().err
    assert "--workers" in err and "Traceback" not in err
    assert not (tmp_path / "results").exists()
