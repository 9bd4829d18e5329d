"""`sgbench run`: baselines and search trials -> sample, measure, record.

A trial samples `metrics.n_samples` images per seed as a stream into the metric accumulators.
Its strategy (`sgbench.search.strategies`) says where it stops: Optuna's pruners stop a TPE trial
at a fidelity (e.g. 1000 of 5000 samples) and otherwise let it continue the *same* stream (sample
i is fixed by (seed, i), so the first 1000 images of FD@5k are those of FD@1k); a grid point is
measured at one fidelity per trial (rung-synchronous pruning).

Throughput (`images_per_s`), one rule for every trial: the trial's first batch is warm-up and is
not timed; every later batch of exactly min(sampler.batch_size, n_samples) images is timed
(generation + decoding, not metric extraction). A trial with no such batch samples one extra batch
of that size (its first seed's first samples again, not measured) and times it.
"""

from __future__ import annotations

import math
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import optuna
from optuna.trial import TrialState

from sgbench.config.loader import LoadedSuite
from sgbench.errors import UserError
from sgbench.guidance.vocabulary import GuidanceConfig
from sgbench.metrics import registry
from sgbench.run.progress import Progress, fmt_duration
from sgbench.run.rundir import log_to_stderr, write_atomic
from sgbench.run.signals import Interrupts
from sgbench.run.stages import Stages
from sgbench.search import study as st
from sgbench.run.sweep import Cell
from sgbench.search.store import SWEEP_ATTR, collect_rows, write_trials_csv
from sgbench.search.strategies import Outcome, Strategy, Task, baseline_strategy, search_strategy
from sgbench.secrets import redact


@dataclass
class RunOptions:
    max_trials: Optional[int] = None  # stop this invocation after this many trials (resume later)
    workers: int = 1  # local workers of this invocation (the progress bar plans for all of them)
    progress: bool = True
    retry_failed: bool = False  # re-queue failed trials first (--resume)
    clock: Callable[[], float] = time.perf_counter  # throughput timing (tests use a fake one)
    # (total_images, total_trials, enabled) -> the progress display (local workers: worker 0's bar)
    progress_factory: Callable[..., Progress] = Progress


@dataclass
class Plan:
    role: str  # baseline | search (the trials.csv column)
    study: optuna.Study
    strategy: Strategy
    setting: Callable[[Task], GuidanceConfig]  # a task's guidance setting
    cell: Cell  # the networks its trials sample with (sgbench.run.sweep)


class SamplingTimer:
    """The throughput rule of the module docstring."""

    def __init__(self, full: int):
        self.full = full  # images of a timed batch
        self.seen = 0  # batches so far (the first is warm-up)
        self.seconds = 0.0
        self.images = 0

    def add(self, n: int, seconds: float) -> None:
        if self.seen and n == self.full:
            self.seconds += seconds
            self.images += n
        self.seen += 1

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else math.nan


@dataclass
class Runner:
    loaded: LoadedSuite
    run_dir: Path
    stages: Stages
    studies: list[tuple[Cell, st.Studies]]  # per cell of the run (one outside checkpoint sweeps)
    options: RunOptions = field(default_factory=RunOptions)
    interrupts: Interrupts = field(default_factory=Interrupts)
    log: Callable[[str], None] = log_to_stderr

    def __post_init__(self):
        self.suite = self.loaded.suite
        self.csv_path = self.run_dir / "trials.csv"
        self.trials_run = 0
        s, n = self.suite, self.suite.metrics.n_samples
        self.plans: list[Plan] = []
        for cell, studies in self.studies:
            if studies.baselines is not None:
                methods = [m for m in s.methods if cell.runs(m.needs_weak_network)]
                settings = [m.to_dict() for m in methods]
                self.plans.append(Plan("baseline", studies.baselines, baseline_strategy(methods, settings, n),
                                       lambda task: GuidanceConfig.from_dict(task.trial.user_attrs["setting"]), cell))
            if studies.search is not None:
                minimize = s.directions[0] == "minimize"
                self.plans.append(Plan("search", studies.search, search_strategy(s.search, n, minimize),
                                       self.search_setting, cell))

    def search_setting(self, task: Task) -> GuidanceConfig:
        s, p = self.suite.search, task.point
        interval = tuple(s.interval) if s.interval else None
        return GuidanceConfig(s.method, p["omega"], p["gamma_strong"], p["gamma_weak"], interval, s.schedule)

    # ---- the loop ---------------------------------------------------------------------------
    def run(self) -> Path:
        for plan in self.plans:
            st.recover_stale(plan.study)
            plan.strategy.seed(plan.study)
            if self.options.retry_failed:
                n = st.retry_failed(plan.study)
                if n:
                    self.log(f"retrying {n} failed {plan.role} trial(s)")
        self.write_csv()
        planned = sum(p.strategy.remaining(p.study) for p in self.plans)
        if self.options.max_trials is not None:
            planned = min(planned, self.options.max_trials * self.options.workers)
        per_trial = self.suite.metrics.n_samples * len(self.suite.seeds)
        self.progress = self.options.progress_factory(planned * per_trial, planned, self.options.progress)
        try:
            self._loop()
        finally:
            self.progress.close()
            self.write_csv()
        self._summary()
        return self.csv_path

    def _loop(self) -> None:
        waited = False
        while True:
            did = False
            for plan in self.plans:
                while not self._budget_spent():
                    self.interrupts.check()
                    st.recover_stale(plan.study)
                    task = plan.strategy.next(plan.study)
                    if task is None:
                        break
                    self._run_task(plan, task)
                    did = True
            if self._budget_spent():
                return
            busy = sum(len(st.running(p.study)) for p in self.plans)
            if not busy:
                if did:
                    continue  # one more pass: work may have appeared meanwhile (promotions, retries)
                return
            if not waited:
                self.log(f"waiting for {busy} trial(s) of other workers (a dead worker's trial is taken over "
                         f"after {st.grace_s()} s without its heartbeat)")
                waited = True
            with self.interrupts.armed():
                time.sleep(min(5.0, st.heartbeat_s()))

    def _budget_spent(self) -> bool:
        return self.options.max_trials is not None and self.trials_run >= self.options.max_trials

    def _run_task(self, plan: Plan, task: Task) -> None:
        trial = task.trial
        setting = plan.setting(task)
        trial_id = self._trial_id(plan.cell, trial, setting)
        if plan.role == "search":
            trial.set_user_attr("setting", setting.to_dict())
        started = time.perf_counter()
        try:
            with self.interrupts.armed(), st.alive(plan.study, trial):
                self.stages.use(plan.cell)
                out = self.evaluate(setting, trial_id, task, plan.cell)
        except KeyboardInterrupt:  # a signal (or Ctrl-C in a test): re-queue at once, then stop
            st.interrupt(plan.study, trial)
            self.write_csv()
            raise
        except UserError as e:  # bad input discovered late (e.g. a checkpoint that does not fit)
            self._keep_error(trial_id, trial, str(e), traceback.format_exc())
            plan.strategy.finish(plan.study, task, Outcome([], TrialState.FAIL, error=str(e)))
            self.write_csv()
            raise
        except Exception as e:  # a failed trial (e.g. out of memory) must not end the study
            text = str(e).strip()
            msg = redact(f"{type(e).__name__}: {text.splitlines()[0] if text else ''}")
            warnings.warn(f"trial {trial_id} ({setting.describe()}) failed: {msg}; traceback in "
                          f"{self.run_dir / 'errors' / (trial_id + '.txt')}")
            self._keep_error(trial_id, trial, msg, traceback.format_exc())
            out = Outcome([], TrialState.FAIL, note=msg, error=msg)
        plan.strategy.finish(plan.study, task, out)
        self.trials_run += 1
        self.write_csv()
        note = f"{task.note}: " if task.note else ""
        self.progress.trial_done(f"{trial_id} {setting.describe()}: {note}{out.note or out.state.name.lower()} "
                                 f"({fmt_duration(time.perf_counter() - started)})")

    @staticmethod
    def _trial_id(cell: Cell, trial, setting: GuidanceConfig) -> str:
        """The trial's id; in a sweep tagged with its cell once, with the cell's columns kept for
        the row of a trial that fails without results (retries and promotions inherit both)."""
        base = trial.user_attrs.get(st.TRIAL_ID) or f"t-{trial.number:04d}"
        if not cell.sweep or SWEEP_ATTR in trial.user_attrs:
            return base
        trial_id = cell.trial_id(base, setting.needs_weak_network)
        trial.set_user_attr(st.TRIAL_ID, trial_id)
        trial.set_user_attr(SWEEP_ATTR, cell.columns(setting))
        return trial_id

    def _keep_error(self, trial_id: str, trial, message: str, tb: str) -> None:
        """The full traceback of every failed attempt: results/<run>/errors/<trial_id>.txt."""
        path = self.run_dir / "errors" / f"{trial_id}.txt"
        try:
            path.parent.mkdir(exist_ok=True)
            old = path.read_text(encoding="utf-8") if path.is_file() else ""
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            write_atomic(path, old + f"--- trial {trial_id} (Optuna trial {trial.number}) failed at {stamp}: "
                                     f"{message}\n{redact(tb)}\n")
        except OSError as e:
            warnings.warn(f"could not keep the traceback of {trial_id}: {e}")

    # ---- one trial ------------------------------------------------------------------------------
    def evaluate(self, setting: GuidanceConfig, trial_id: str, task: Task, cell: Optional[Cell] = None) -> Outcome:
        seeds = self.suite.seeds
        started = time.perf_counter()
        accs = {seed: self.stages.accumulator(trial_id=trial_id, seed=seed) for seed in seeds}
        timer = SamplingTimer(min(self.suite.sampler.batch_size, task.stops[-1]))
        done = 0
        grid_images: list[np.ndarray] = []
        grid_labels: list = []
        want_grid = self.suite.report.sample_grid
        metrics: dict = {}
        state = TrialState.COMPLETE
        for n in task.stops:
            for seed in seeds:
                for idx, images, labels in self._timed(self.stages.stream(setting, seed, done, n), timer):
                    accs[seed].update(images, labels)
                    if seed == seeds[0] and len(grid_images) < want_grid:
                        room = want_grid - len(grid_images)
                        grid_images.extend(list(images[:room]))
                        grid_labels.extend(np.asarray(labels)[:room].tolist())
                    self.progress.update(len(idx))
            metrics = {seed: self.stages.compute(accs[seed]) for seed in seeds}
            done = n
            if n < task.stops[-1] and task.should_prune is not None:
                if task.should_prune(self._objective(metrics, setting)[0], n):
                    self.progress.shrink((task.stops[-1] - n) * len(seeds))
                    state = TrialState.PRUNED
                    break
        ips = math.nan
        if self.suite.metrics.throughput != "off":
            if not timer.images:  # no batch after the warm-up: time one more (not measured)
                for _ in self._timed(self.stages.stream(setting, seeds[0], 0, timer.full), timer):
                    pass
            ips = timer.images_per_s
        self._save_grid(trial_id, grid_images, grid_labels)
        gflops = self.stages.gflops(setting)
        sweep = cell.columns(setting) if cell is not None else {}
        costs = {registry.GFLOPS.key: gflops, registry.GFLOPS_ATTN.key: self.stages.gflops_attn(setting),
                 registry.IMAGES_PER_S.key: ips}
        rows = [{"trial_id": trial_id, **setting.columns(), "n_samples": done, "seed": seed, **sweep, **metrics[seed],
                 **costs, "duration_s": round(time.perf_counter() - started, 3)}
                for seed in seeds]
        values = self._objective(metrics, setting, gflops, ips)
        note = ", ".join(f"{k}={np.mean([m[k] for m in metrics.values()]):.4g}"
                         for k in self.suite.metrics.metric_keys if all(k in m for m in metrics.values()))
        if state == TrialState.PRUNED:
            return Outcome(rows, state, None, f"pruned at n={done}: {note}")
        if any(not math.isfinite(v) for v in values):
            return Outcome(rows, TrialState.FAIL, None, f"objective not finite: {note}",
                           error=f"objective not finite ({note})", final=True)
        return Outcome(rows, state, values, note)

    def _timed(self, batches, timer: SamplingTimer):
        """Yield the stream's batches, adding the time each took to produce to `timer`."""
        it = iter(batches)
        clock = self.options.clock
        while True:
            t0 = clock()
            try:
                batch = next(it)
            except StopIteration:
                return
            timer.add(len(batch[0]), clock() - t0)
            yield batch

    def _objective(self, metrics: dict, setting: GuidanceConfig, gflops: float = math.nan, ips: float = math.nan) -> list[float]:
        out = []
        for k in self.suite.objective_keys:
            if k == registry.GFLOPS.key:
                out.append(gflops if gflops == gflops else self.stages.gflops(setting))
            elif k == registry.IMAGES_PER_S.key:
                out.append(ips)
            else:
                vals = [m.get(k, math.nan) for m in metrics.values()]
                out.append(float(np.mean(vals)))
        return out

    def _save_grid(self, trial_id: str, images: list, labels: list) -> None:
        """samples/<trial>.png and its layout (`sgbench.run.sample_grid`), with each sample's caption
        from the stages (T2I: its prompt)."""
        if images:
            from sgbench.run.sample_grid import write_grid

            write_grid(self.run_dir / "samples" / f"{trial_id}.png", np.stack(images), labels,
                       self.stages.captions(labels), self.suite.seeds[0])

    # ---- results ---------------------------------------------------------------------------------
    def write_csv(self) -> None:
        try:
            write_trials_csv(self.csv_path, self.rows())
        except OSError as e:
            raise UserError(f"cannot write {self.csv_path}: {e.strerror or e}; the results are safe in the "
                            "study storage: free space or fix permissions, then --resume") from None

    def rows(self) -> list[dict]:
        """trials.csv's rows: cell by cell (in order of step), each its baselines then its search."""
        return [r for _, studies in self.studies for r in collect_rows(studies)]

    def unfinished(self) -> int:
        """Trials still waiting, running in any worker, or still to be created."""
        return sum(p.strategy.remaining(p.study) for p in self.plans)

    def failed(self) -> int:
        return sum(len(st.failed(p.study)) for p in self.plans)

    def _summary(self) -> None:
        rows = self.rows()
        counts = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        text = ", ".join(f"{v} {k}" for k, v in counts.items()) or "no rows"
        self.progress.write(f"trials.csv: {len(rows)} rows ({text}) -> {self.csv_path}")
        for cell, studies in self.studies:
            search = studies.search
            if search is not None and len(search.directions) > 1:
                front = [t for t in search.best_trials]
                ids = [t.user_attrs.get(st.TRIAL_ID, f"s-{t.number:04d}") for t in front]
                where = f" ({cell.describe()})" if cell.sweep else ""
                self.progress.write(f"Pareto front{where}: trials {', '.join(ids) or '-'}")
