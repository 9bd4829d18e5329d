"""`sgbench run`: baselines and search trials -> sample, measure, record, then the report.

A trial samples `metrics.n_samples` images per seed as a stream into the metric accumulators.
With pruning, it stops at each fidelity (e.g. 1000 of 5000 samples), reports the objective to
Optuna and continues the *same* stream if not pruned: sample i is fixed by (seed, i), so the
first 1000 images of FD@5k are those of FD@1k and no work is repeated.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import optuna
from optuna.trial import TrialState

from sgbench.config.loader import LoadedSuite
from sgbench.errors import UserError
from sgbench.guidance.vocabulary import GuidanceConfig
from sgbench.run.progress import Progress, fmt_duration
from sgbench.search import study as st
from sgbench.search.space import PARAMS, grid_points, suggest, values
from sgbench.search.store import collect_rows, write_trials_csv


@dataclass
class Outcome:
    rows: list[dict]
    state: TrialState
    values: Optional[list[float]] = None
    note: str = ""


@dataclass
class RunOptions:
    max_trials: Optional[int] = None  # stop this invocation after this many trials (resume later)
    report: bool = True
    progress: bool = True


@dataclass
class Runner:
    loaded: LoadedSuite
    run_dir: Path
    stages: object  # sgbench.run.stages.Stages (or a stand-in with the same methods)
    studies: st.Studies
    options: RunOptions = field(default_factory=RunOptions)

    def __post_init__(self):
        self.suite = self.loaded.suite
        self.csv_path = self.run_dir / "trials.csv"
        self.trials_run = 0

    # ---- planning -------------------------------------------------------------------------
    def seed_queues(self) -> None:
        """Enqueue the fixed work once per study: every baseline, and the grid points."""
        s = self.suite
        if self.studies.baselines is not None:
            st.seed_queue(self.studies.baselines,
                          [({"baseline": m.name}, {"setting": m.to_dict(),
                                                   "trial_id": f"b-{m.name}"}) for m in s.methods])
        if self.studies.search is not None and s.search.sampler == "grid":
            points = grid_points(s.search.space)
            if s.search.budget is not None:
                points = points[: s.search.budget]
            st.seed_queue(self.studies.search, [(p, {}) for p in points])

    def planned_trials(self) -> tuple[int, int]:
        """(baseline trials, search trials) this worker may still run."""
        base = st.waiting(self.studies.baselines) if self.studies.baselines is not None else 0
        search = 0
        if self.studies.search is not None:
            waiting = st.waiting(self.studies.search)
            if self.suite.search.sampler == "grid":
                search = waiting
            else:
                search = max(waiting, self.suite.search.budget - len(st.counted_trials(self.studies.search)))
        return base, search

    # ---- the loop ---------------------------------------------------------------------------
    def run(self) -> Path:
        for _, study in self.studies.all():
            st.recover_stale(study)
        self.seed_queues()
        self.write_csv()
        n_base, n_search = self.planned_trials()
        if self.options.max_trials is not None:
            n_base = min(n_base, self.options.max_trials)
            n_search = max(0, min(n_search, self.options.max_trials - n_base))
        per_trial = self.suite.metrics.n_samples * len(self.suite.seeds)
        self.progress = Progress((n_base + n_search) * per_trial, n_base + n_search, self.options.progress)
        try:
            if self.studies.baselines is not None:
                while not self._budget_spent():
                    trial = st.pop_queued(self.studies.baselines)
                    if trial is None:
                        break
                    self._run_trial(self.studies.baselines, trial, "baseline")
            if self.studies.search is not None:
                while not self._budget_spent():
                    trial = self._next_search_trial()
                    if trial is None:
                        break
                    self._run_trial(self.studies.search, trial, "search")
        finally:
            self.progress.close()
            self.write_csv()
        self._summary()
        return self.csv_path

    def _budget_spent(self) -> bool:
        return self.options.max_trials is not None and self.trials_run >= self.options.max_trials

    def _next_search_trial(self):
        search = self.suite.search
        if search.sampler == "grid":
            return st.pop_queued(self.studies.search)
        return st.ask_within_budget(self.studies.search, search.budget)

    def search_setting(self, trial) -> GuidanceConfig:
        s = self.suite.search
        if s.sampler == "grid":  # fixed params popped from the queue: suggest returns them
            point = {p: float(trial.suggest_categorical(p, values(getattr(s.space, p)))) for p in PARAMS}
        else:
            point = suggest(trial, s.space)
        interval = tuple(s.interval) if s.interval else None
        return GuidanceConfig(s.method, point["omega"], point["gamma_strong"], point["gamma_weak"], interval, s.schedule)

    def _run_trial(self, study: optuna.Study, trial, role: str) -> None:
        if role == "baseline":
            setting = GuidanceConfig.from_dict(trial.user_attrs["setting"])
            trial_id = trial.user_attrs["trial_id"]
            trial.suggest_categorical("baseline", [m.name for m in self.suite.methods])
        else:
            setting = self.search_setting(trial)
            trial_id = f"s-{trial.number:04d}"
            trial.set_user_attr("setting", setting.to_dict())
            trial.set_user_attr("trial_id", trial_id)
        started = time.perf_counter()
        try:
            with st.alive(study, trial):
                out = self.evaluate(setting, trial_id, trial, prune=(role == "search"))
        except KeyboardInterrupt:
            st.interrupt(study, trial)
            self.write_csv()
            raise
        except UserError as e:  # bad input discovered late (e.g. a checkpoint that does not fit)
            trial.set_user_attr("error", str(e))
            study.tell(trial, state=TrialState.FAIL)
            self.write_csv()
            raise
        except Exception as e:  # a failed trial (e.g. out of memory) must not end the study
            msg = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            warnings.warn(f"trial {trial_id} ({setting.describe()}) failed: {msg}")
            out = Outcome([], TrialState.FAIL, note=msg)
            trial.set_user_attr("error", msg)
        try:
            trial.set_user_attr("rows", out.rows)
            if out.state == TrialState.COMPLETE:
                study.tell(trial, out.values)
            else:
                study.tell(trial, state=out.state)
        except optuna.exceptions.UpdateFinishedTrialError:
            # another worker declared this trial dead (no heartbeat) and re-queued it
            warnings.warn(f"trial {trial_id} was failed by another worker while it ran; its re-queued copy counts")
        self.trials_run += 1
        self.write_csv()
        self.progress.trial_done(f"{trial_id} {setting.describe()}: {out.note or out.state.name.lower()} "
                                 f"({fmt_duration(time.perf_counter() - started)})")

    # ---- one trial ------------------------------------------------------------------------------
    def ladder(self, prune: bool) -> list[int]:
        n = self.suite.metrics.n_samples
        p = self.suite.search.pruning if self.suite.search else None
        return ([*p.fidelities, n] if (prune and p is not None) else [n])

    def evaluate(self, setting: GuidanceConfig, trial_id: str, trial, prune: bool) -> Outcome:
        seeds = self.suite.seeds
        started = time.perf_counter()
        accs = {seed: self.stages.accumulator(trial_id=trial_id, seed=seed) for seed in seeds}
        gen_s, gen_n = 0.0, 0  # generation time after each stream's warm-up batch
        all_s, all_n = 0.0, 0  # including warm-up (used when every stream is one batch)
        done = 0
        grid_images: list[np.ndarray] = []
        want_grid = self.suite.report.sample_grid
        metrics: dict = {}
        state = TrialState.COMPLETE
        ladder = self.ladder(prune)
        for n in ladder:
            for seed in seeds:
                batches = iter(self.stages.stream(setting, seed, done, n))
                first = done == 0
                while True:
                    t0 = time.perf_counter()
                    try:
                        idx, images, labels = next(batches)
                    except StopIteration:
                        break
                    dt = time.perf_counter() - t0
                    all_s, all_n = all_s + dt, all_n + len(idx)
                    if not first:  # each stream's first batch is warm-up (allocation, caches)
                        gen_s, gen_n = gen_s + dt, gen_n + len(idx)
                    first = False
                    accs[seed].update(images, labels)
                    if seed == seeds[0] and len(grid_images) < want_grid:
                        grid_images.extend(list(images[: want_grid - len(grid_images)]))
                    self.progress.update(len(idx))
            metrics = {seed: self.stages.compute(accs[seed]) for seed in seeds}
            done = n
            if n < ladder[-1]:
                value = self._objective(metrics, setting)[0]
                trial.report(value, n)
                if trial.should_prune():
                    self.progress.shrink((ladder[-1] - n) * len(seeds))
                    state = TrialState.PRUNED
                    break
        self._save_grid(trial_id, grid_images)
        gflops = self.stages.gflops(setting)
        ips = gen_n / gen_s if gen_s > 0 else (all_n / all_s if all_s > 0 else math.nan)
        if self.suite.metrics.throughput == "off":
            ips = math.nan
        rows = [{"trial_id": trial_id, **setting.columns(), "n_samples": done, "seed": seed, **metrics[seed],
                 "gflops": gflops, "gflops_attn": self.stages.gflops_attn(setting), "images_per_s": ips,
                 "duration_s": round(time.perf_counter() - started, 3)}
                for seed in seeds]
        values = self._objective(metrics, setting, gflops, ips)
        note = ", ".join(f"{k}={np.mean([m[k] for m in metrics.values()]):.4g}"
                         for k in self.suite.metrics.metric_keys if all(k in m for m in metrics.values()))
        if state == TrialState.PRUNED:
            return Outcome(rows, state, None, f"pruned at n={done}: {note}")
        if any(not math.isfinite(v) for v in values):
            return Outcome(rows, TrialState.FAIL, None, f"objective not finite: {note}")
        return Outcome(rows, state, values, note)

    def _objective(self, metrics: dict, setting: GuidanceConfig, gflops: float = math.nan, ips: float = math.nan) -> list[float]:
        s = self.suite.search
        keys = (s.objectives or [s.objective]) if s else [self.suite.metrics.metric_keys[0]]
        out = []
        for k in keys:
            if k == "gflops":
                out.append(gflops if gflops == gflops else self.stages.gflops(setting))
            elif k == "images_per_s":
                out.append(ips)
            else:
                vals = [m.get(k, math.nan) for m in metrics.values()]
                out.append(float(np.mean(vals)))
        return out

    def _save_grid(self, trial_id: str, images: list) -> None:
        if not images:
            return
        from PIL import Image

        from sgbench.run.stages import images_to_grid

        grid = images_to_grid(np.stack(images))
        path = self.run_dir / "samples" / f"{trial_id}.png"
        tmp = path.with_name(f".{path.name}.tmp.png")  # atomic: never a half-written PNG
        Image.fromarray(grid.squeeze(-1) if grid.shape[-1] == 1 else grid).save(tmp)
        tmp.replace(path)

    # ---- results ---------------------------------------------------------------------------------
    def write_csv(self) -> None:
        write_trials_csv(self.csv_path, collect_rows(self.studies))

    def unfinished(self) -> int:
        """Trials still waiting or running in any worker."""
        n = 0
        for _, study in self.studies.all():
            n += len(study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING)))
        if self.studies.search is not None and self.suite.search.sampler != "grid":
            n += max(0, self.suite.search.budget - len(st.counted_trials(self.studies.search)))
        return n

    def _summary(self) -> None:
        rows = collect_rows(self.studies)
        counts = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        text = ", ".join(f"{v} {k}" for k, v in counts.items()) or "no rows"
        self.progress.write(f"trials.csv: {len(rows)} rows ({text}) -> {self.csv_path}")
        if self.studies.search is not None and self.suite.search.sampler == "multi-objective":
            front = [t.number for t in self.studies.search.best_trials]
            self.progress.write(f"Pareto front: trials {', '.join(f's-{n:04d}' for n in front) or '-'}")
