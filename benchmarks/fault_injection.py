"""Fault injection for `sgbench run`: kills, signals and concurrent workers, then resume as README says.

Builds a tiny suite in a temporary directory (a random 2-block DiT and classifier, 2 baselines, an
8-point grid pruned rung-synchronously at 8 of 16 samples: 14 trials), runs it once uninterrupted
as the reference, then runs each scenario and continues it the way README says
(`sgbench run SUITE --resume` until it exits 0; a run that never got its directory is started
again). It compares each final trials.csv with the reference's (ignoring the timing columns) and
the study storage for trials left running or waiting.

Scenarios: SIGKILL at a random point of the trials and during start-up, SIGTERM, three SIGTERMs,
two SIGINTs 10 ms apart, two concurrent workers (torchrun's environment), two workers with one
SIGKILLed (the other takes its trial over), and a SIGKILL of both workers.

Prints one line per scenario and the counts: scenarios, recovered, duplicated, missing, stuck.
Exit code 0 when every scenario recovered with 0 duplicated, 0 missing and 0 stuck trials.

    .venv/bin/python benchmarks/fault_injection.py [--seed 0] [--repeats 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMING = ("images_per_s", "duration_s")
ENV = {"SGBENCH_HEARTBEAT_S": "1", "SGBENCH_GRACE_S": "3", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def build_suite(where: Path) -> Path:
    """The tiny suite's files: a random DiT (32x32 RGB, 16 tokens, route 0-1); features from the
    shipped shapes classifier, so the guidance settings get distinct FDs to rank."""
    import torch
    import yaml

    sys.path.insert(0, str(ROOT))
    from sgbench.models.dit import DiT, DiTConfig
    from sgbench.models.loading import save_sgbench_safetensors

    torch.manual_seed(0)
    cfg = DiTConfig(input_size=32, patch_size=8, in_channels=3, hidden_size=32, depth=2, num_heads=2,
                    num_classes=10, learn_sigma=False, routes=["0-1"])
    model = DiT(cfg)
    with torch.no_grad():  # DiT's zero-initialised output layers would make every setting alike
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_sgbench_safetensors(where / "model.safetensors", model, parametrization="velocity")
    suite = {
        "name": "faults", "device": "cpu", "threads": 1, "seeds": [0],
        "model": {"checkpoint": "model.safetensors"},
        "sampler": {"steps": 2, "batch_size": 4},
        "methods": [{"name": "unguided", "method": "none"}, {"name": "cfg", "method": "cfg", "omega": 1.5}],
        "search": {"sampler": "grid",
                   "space": {"gamma_strong": [0.0, 0.25], "gamma_weak": [0.5, 0.75], "omega": [1.5, 3.0]},
                   "pruning": {"fidelities": [8], "pruner": "halving", "reduction_factor": 2}},
        "metrics": {"extractor": "classifier", "weights": "sgbench:assets/quickstart/classifier.safetensors",
                    "reference": {"dataset": "shapes", "n": 32}, "n_samples": 16, "batch_size": 16},
        "report": {"enabled": False, "sample_grid": 4},
    }
    path = where / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Worker:
    proc: subprocess.Popen
    log: Path


class Harness:
    def __init__(self, suite: Path, work: Path):
        self.suite, self.work = suite, work

    def start(self, out: Path, resume: bool = False, rank=None, world=None, port=None, tag="w") -> Worker:
        env = {**os.environ, **ENV}
        if world:
            env.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                       MASTER_PORT=str(port), TORCHELASTIC_RUN_ID="faults")
        cmd = [sys.executable, "-m", "sgbench.cli", "run", str(self.suite), "--out", str(out), "--no-progress"]
        if resume:
            cmd.append("--resume")
        log = out.parent / f"{out.name}.{tag}.{time.monotonic_ns()}.log"
        f = open(log, "w")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
        f.close()
        return Worker(proc, log)

    @staticmethod
    def wait(w: Worker, timeout: float = 300) -> int:
        try:
            return w.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait()
            return -999  # hung

    def finish(self, out: Path) -> tuple[int, int]:
        """Continue as README says until the run is complete: (last exit code, invocations)."""
        code, n = None, 0
        while n < 5 and code != 0:
            resume = (out / "faults" / "suite.yaml").is_file()
            code = self.wait(self.start(out, resume=resume, tag="resume"))
            n += 1
        return code, n


def wait_for_run_dir(out: Path, proc: subprocess.Popen, timeout: float = 120) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout and proc.poll() is None:
        if (out / "faults" / "suite.yaml").is_file():
            return time.monotonic()
        time.sleep(0.01)
    return time.monotonic()


def wait_for_trials(w: Worker, k: int, timeout: float = 120) -> None:
    """Until worker `w` has finished k trials (its per-trial progress lines), or has exited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout and w.proc.poll() is None:
        text = w.log.read_text(errors="replace") if w.log.is_file() else ""
        if k == 0 and "sgbench run: faults ->" in text or k and f"[{k}/" in text:
            return
        time.sleep(0.01)


def read_rows(out: Path) -> list[dict]:
    path = out / "faults" / "trials.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(f)]


def stuck_trials(out: Path) -> int:
    db = out / "faults" / "study.db"
    if not db.is_file():
        return 0
    with sqlite3.connect(db) as con:
        return con.execute("SELECT COUNT(*) FROM trials WHERE state IN ('RUNNING', 'WAITING')").fetchone()[0]


@dataclass
class Result:
    name: str
    detail: str
    exit_codes: list = field(default_factory=list)
    recovered: bool = False
    duplicated: int = 0
    missing: int = 0
    differing: int = 0
    stuck: int = 0
    seconds: float = 0.0


def compare(name: str, detail: str, out: Path, reference: list[dict], final_code: int, codes: list) -> Result:
    rows = read_rows(out)
    key = lambda r: (r["trial_id"], r["seed"])  # noqa: E731
    ref = {key(r): r for r in reference}
    seen: dict = {}
    for r in rows:
        seen.setdefault(key(r), []).append(r)
    duplicated = sum(len(v) - 1 for v in seen.values()) + sum(1 for k in seen if k not in ref)
    missing = sum(1 for k in ref if k not in seen)
    differing = sum(1 for k, v in seen.items() if k in ref and v[0] != ref[k])
    stuck = stuck_trials(out)
    ok = final_code == 0 and not (duplicated or missing or differing or stuck) and rows == reference
    return Result(name, detail, codes, ok, duplicated, missing, differing, stuck)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="random kill points")
    ap.add_argument("--repeats", type=int, default=1, help="runs of each scenario (different kill points)")
    ap.add_argument("--keep", default=None, help="keep the work directory here (default: a deleted temp dir)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sgbench-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        suite = build_suite(work)
        h = Harness(suite, work)

        # the reference: one uninterrupted run, timed (start-up until its directory exists, then trials)
        out = work / "reference"
        t0 = time.monotonic()
        w = h.start(out)
        t_dir = wait_for_run_dir(out, w.proc)
        code = h.wait(w)
        t_end = time.monotonic()
        reference = read_rows(out)
        if code != 0 or len(reference) != 10 or sum(r["status"] == "pruned" for r in reference) != 4:
            print(f"reference run failed (exit {code}, {len(reference)} rows); see {w.log}")
            return 1
        startup, trials = t_dir - t0, t_end - t_dir
        per_trial = trials / 14
        print(f"reference: {len(reference)} rows (2 baselines; 8 grid points at 8 samples, 4 of them on to 16) in "
              f"{t_end - t0:.1f}s (start-up {startup:.1f}s, trials {trials:.1f}s)")

        results: list[Result] = []

        def single(name: str, signals: list[int], gap: float = 0.01, during_startup: bool = False):
            out = work / f"{name}-{len(results)}"
            t_start = time.monotonic()
            w = h.start(out)
            if during_startup:
                delay = rng.uniform(0.3, max(0.4, startup))
                time.sleep(delay)
                detail = f"{'+'.join(signal.Signals(s).name for s in signals)} {delay:.2f}s after start"
            else:  # after a random number of finished trials, at a random point of the next one
                k = rng.randrange(0, 13)
                wait_for_trials(w, k)
                delay = rng.uniform(0.0, per_trial)
                time.sleep(delay)
                detail = f"{'+'.join(signal.Signals(s).name for s in signals)} {delay:.2f}s after trial {k}"
            for i, s in enumerate(signals):
                if w.proc.poll() is None:
                    w.proc.send_signal(s)
                if i + 1 < len(signals):
                    time.sleep(gap)
            first = h.wait(w)
            expected = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -9}[signals[0]]
            bad_exit = first not in (expected, 0) or (during_startup and (out / "faults").exists()
                                                      and not (out / "faults" / "suite.yaml").is_file())
            final, n = h.finish(out)
            r = compare(name, detail, out, reference, final, [first] + [final] * n)
            if bad_exit:
                r.recovered = False
                r.detail += f" (unexpected exit {first})"
            r.seconds = time.monotonic() - t_start
            results.append(r)

        def pair(name: str, kill: str = ""):
            out = work / f"{name}-{len(results)}"
            t_start = time.monotonic()
            port = free_port()
            ws = [h.start(out, rank=r, world=2, port=port, tag=f"rank{r}") for r in (0, 1)]
            detail = "2 workers"
            victims = {"": [], "one": ws[1:], "both": ws}[kill]
            if victims:
                k = rng.randrange(0, 4)
                wait_for_trials(ws[1], k)
                delay = rng.uniform(0.0, per_trial)
                time.sleep(delay)
                for v in victims:
                    if v.proc.poll() is None:
                        v.proc.send_signal(signal.SIGKILL)
                detail += (f", SIGKILL of {'rank 1' if kill == 'one' else 'both'} {delay:.2f}s after rank 1's "
                           f"trial {k}")
            codes = [h.wait(v) for v in ws]
            live_ok = all(c == 0 for w, c in zip(ws, codes) if w not in victims)  # survivors finish the run
            final, n = h.finish(out)  # README: --resume (a finished run: nothing to do, exit 0)
            r = compare(name, detail, out, reference, final, codes + [final] * n)
            if not live_ok:
                r.recovered = False
                r.detail += " (a live worker did not exit 0)"
            r.seconds = time.monotonic() - t_start
            results.append(r)

        for _ in range(args.repeats):
            single("sigkill", [signal.SIGKILL])
            single("sigkill-startup", [signal.SIGKILL], during_startup=True)
            single("sigterm", [signal.SIGTERM])
            single("sigterm-x3", [signal.SIGTERM] * 3, gap=0.005)
            single("sigint-x2", [signal.SIGINT] * 2, gap=0.01)
            pair("two-workers")
            pair("two-workers-kill-one", kill="one")
            pair("two-workers-kill-both", kill="both")

        print(f"{'scenario':<24} {'recovered':<9} {'dup':>3} {'miss':>4} {'diff':>4} {'stuck':>5} {'time':>6}  exit codes / what")
        for r in results:
            print(f"{r.name:<24} {'yes' if r.recovered else 'NO':<9} {r.duplicated:>3} {r.missing:>4} {r.differing:>4} "
                  f"{r.stuck:>5} {r.seconds:>5.1f}s  {r.exit_codes} {r.detail}")
        n_ok = sum(r.recovered for r in results)
        dup, miss, stuck = (sum(getattr(r, k) for r in results) for k in ("duplicated", "missing", "stuck"))
        print(f"scenarios {len(results)}, recovered {n_ok}, duplicated {dup}, missing {miss}, stuck {stuck} "
              f"({time.monotonic() - started:.0f}s)")
        return 0 if n_ok == len(results) and not (dup or miss or stuck) else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
