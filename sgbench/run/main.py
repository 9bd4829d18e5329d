"""Wire one `sgbench run`: suite -> checks -> stages -> run directory -> studies -> Runner -> report.

Every check a suite can fail — its keys and files, the run root, --resume's run, the report's
destination, a shared study's suite, loading models, extractor and reference — runs before the
run directory exists, so a refused run leaves nothing behind and changes no earlier result.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from sgbench.config.loader import load_suite
from sgbench.errors import UserError
from sgbench.guidance.vocabulary import method_spec
from sgbench.run.rundir import log_to_stderr
from sgbench.run.signals import Interrupts
from sgbench.secrets import redact

# `sgbench run` exit codes (README, "Scaling out"; docs/reliability.md, "Exit codes")
EXIT_DONE, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_UNFINISHED = 0, 1, 2, 3


@dataclass
class RunResult:
    run_dir: Path
    failed: int  # failed trials in trials.csv
    unfinished: int  # trials not done (other workers, --max-trials, a rung blocked by a failure)
    worker_codes: list[int] = field(default_factory=list)  # exit codes of local workers 1..N-1 (--workers)
    report: Optional[Path] = None  # the report's report.html, when this invocation wrote one

    @property
    def exit_code(self) -> int:
        own = EXIT_FAILED if self.failed else EXIT_UNFINISHED if self.unfinished else EXIT_DONE
        if not self.worker_codes:
            return own
        from sgbench.run.workers import combine

        return combine([own, *self.worker_codes])


class _HeldLog:
    """Log lines (credentials masked) held back until the run directory exists: a refused run
    prints its one error line and nothing else."""

    def __init__(self, sink):
        self.sink, self.held = sink, []

    def __call__(self, msg: str) -> None:
        if self.held is None:
            self.sink(redact(msg))
        else:
            self.held.append(msg)

    def release(self) -> None:
        held, self.held = self.held or [], None
        for msg in held:
            self(msg)


def run_suite(suite_path, out="results", resume: bool = False, name=None, max_trials=None,
              report: bool = True, progress: bool = True, argv=None, log=None, stages_factory=None,
              retry_failed: Optional[bool] = None, rehearse: bool = False, workers: Optional[int] = None,
              progress_factory=None, overrides=()) -> RunResult:
    """Run (or resume) a suite; returns the run directory and what is left (`exit_code`).

    stages_factory(loaded, device, log) -> Stages replaces the real model/metric stages (tests).
    retry_failed: re-queue failed trials first (default: with --resume). SIGINT and SIGTERM
    raise `sgbench.run.signals.RunInterrupted` after re-queuing the trial in progress.
    rehearse: tiny sizes and stand-ins for missing files, in a rehearsal directory (sgbench.rehearse).
    workers: local worker processes (default: the suite's `workers`; sgbench.run.workers);
    progress_factory replaces the progress bar (a local worker's goes to worker 0).
    overrides: `--set KEY=VALUE` texts applied to the suite before its check (sgbench.config.overrides).
    """
    say = _HeldLog(log or log_to_stderr)
    interrupts = Interrupts()
    with interrupts.installed():
        return _run(suite_path, Path(out), resume, name, max_trials, report, progress,
                    list(argv if argv is not None else sys.argv), say, stages_factory,
                    resume if retry_failed is None else retry_failed, interrupts, rehearse, workers,
                    progress_factory, tuple(overrides))


def _run(suite_path, root: Path, resume, name, max_trials, report, progress, argv, log, stages_factory,
         retry_failed, interrupts: Interrupts, rehearse: bool = False, workers=None, progress_factory=None,
         overrides=()) -> RunResult:
    from sgbench.run import rundir
    from sgbench.run.env import environment
    from sgbench.run.stages import pick_device
    from sgbench.search.study import default_storage, record_suite

    started = time.perf_counter()
    # fails fast: bad keys, values (the file's and --set's), every missing file
    loaded = load_suite(suite_path, check_files=not rehearse, overrides=overrides)
    rehearsal = None
    if rehearse:
        from sgbench.rehearse.session import Rehearsal

        rehearsal = Rehearsal(loaded, root, name, resume, log)  # tiny sizes; which files get stand-ins
        loaded, name = rehearsal.loaded, rehearsal.run_name
    suite = loaded.suite
    run_name = name or suite.name
    rundir.check_run_root(root, run_name)
    rank, size = rundir.world()
    if rehearsal is not None and (suite.workers if workers is None else workers) > 1:
        log("rehearsal: one worker (a rehearsal is small; its workers would need stand-ins of their own)")
        workers = 1
    local = _local_workers(suite, suite_path, workers, size, max_trials, argv, log, loaded.overrides)
    if local is not None:
        interrupts.listeners.append(local.signalled)
        progress_factory = local.make_progress
    device = pick_device(suite.device)
    if suite.threads:
        import torch

        torch.set_num_threads(suite.threads)
    try:
        if rehearsal is not None:  # claims its own directory and makes the stand-ins inside
            loaded = rehearsal.build(environment(device, argv, loaded.overrides))
        stages = make_stages(loaded, device, log, stages_factory)
        loaded = stages.validate() or loaded  # cheap input checks (prompt files, sample counts; T2I: n_samples)
        suite = loaded.suite
        target = rehearsal.run_dir if rehearsal is not None else None
        if resume and rank == 0 and rehearsal is None:
            target = rundir.existing_run(root, run_name)
        if target is not None:
            rundir.check_same_suite(target, loaded)
            rundir.read_env(target)  # a corrupt env.json is refused now, not overwritten later
        builder = report_builder(suite.report) if report and suite.report.enabled and rank == 0 else None
        if builder is not None:
            check_report_target(loaded, root, target, run_name)

        from sgbench.run.sweep import resolve_cells

        cells = resolve_cells(loaded)  # a checkpoint sweep's files: steps, parametrization, one architecture
        stages.cells = cells
        stages.progress = progress and rank == 0  # the reference features' bar (the other ranks: none)
        shared = loaded.storage is not None
        studies = None
        if shared:  # a shared study is joined by name: its suite must be ours
            studies = _open(loaded, loaded.storage, name or suite.name, rank, cells)
            _check_study_suite(studies, loaded, loaded.storage)

        with interrupts.armed():
            t0 = time.perf_counter()
            stages.load()  # models, decoder, extractor, reference: every file is checked here
            log(f"loaded models, {'benchmark' if suite.benchmark else 'extractor and reference'} in "
                f"{time.perf_counter() - t0:.1f}s")
    except BaseException:
        if rehearsal is not None:
            rehearsal.abandon()  # a rehearsal refused before its run starts leaves nothing behind
        raise

    def open_run_studies(run_dir: Path):
        """The run's studies (its own study.db unless the suite names a shared storage), opened by
        rank 0 before the other ranks join, so they never race to create the database."""
        opened = studies or _open(loaded, default_storage(run_dir), run_dir.name, rank, cells)
        if studies is None:
            _check_study_suite(opened, loaded, "the run's study.db")
        for _, cell_studies in opened:
            for _, study in cell_studies.all():
                record_suite(study, rundir.comparable(loaded.snapshot()))
        return opened

    env = environment(device, argv, loaded.overrides)
    resumed = rehearsal is None or not rehearsal.created  # a fresh rehearsal claimed its directory in build()
    run_dir, studies = _claim_or_join(loaded, root, run_name, target, env, log, rank, size, open_run_studies, resumed)
    interrupts.check()
    log(f"sgbench run: {suite.name} -> {run_dir} on {device}")
    log.release()
    stages.run_dir = run_dir  # where stages keep per-trial files (T2I images)

    from sgbench.run.pipeline import Runner, RunOptions

    options = RunOptions(max_trials=max_trials, progress=progress, retry_failed=retry_failed,
                         workers=local.count if local is not None else 1)
    if progress_factory is not None:
        options.progress_factory = progress_factory
    runner = Runner(loaded, run_dir, stages, studies, options, interrupts, log)
    hint = resume_hint(suite_path, run_dir, root, rehearsal is not None, loaded.overrides)
    stopped = True
    try:
        if local is not None:
            local.started(run_dir)
        runner.run()
        stopped = False
    except KeyboardInterrupt:
        log(f"interrupted: the current trial is re-queued; continue with {hint}")
        raise
    finally:
        stages.close()  # e.g. the HPSv3 worker process
        worker_codes = local.wait(stop=stopped) if local is not None else []  # the others re-queue theirs
    result = RunResult(run_dir, runner.failed(), runner.unfinished(), worker_codes)
    if result.failed:
        log(f"{result.failed} trial(s) failed (tracebacks in {run_dir / 'errors'}); {hint} retries them")
    if result.unfinished:
        log(f"{result.unfinished} trial(s) not finished here (other workers, or --max-trials); {hint} continues")
    elif builder is not None:
        result.report = make_report(builder, run_dir, loaded, log)
    interrupts.check()
    log(f"done in {time.perf_counter() - started:.0f}s: {run_dir / 'trials.csv'}")
    return result


def resume_hint(suite_path, run_dir: Path, root: Path, rehearsal: bool, overrides=()) -> str:
    """The command that continues this run, to copy and paste (with its --set options)."""
    import shlex

    from sgbench.config.overrides import options

    sets = options(overrides)
    return (f"`sgbench run {shlex.quote(str(suite_path))}{' ' + sets if sets else ''}"
            f"{' --rehearse' if rehearsal else ''} --resume --name {shlex.quote(run_dir.name)}"
            f"{' --out ' + shlex.quote(str(root)) if str(root) != 'results' else ''}`")


def _local_workers(suite, suite_path, workers: Optional[int], size: int, max_trials, argv, log, overrides=()):
    """The other local workers of `--workers N` / suite `workers` (None: this process alone)."""
    count = suite.workers if workers is None else workers
    if count <= 1:
        return None
    if size > 1:  # torchrun already starts one worker per rank
        log(f"workers: {count} ignored under torchrun (WORLD_SIZE={size}: one worker per rank)")
        return None
    from sgbench.run.workers import LocalWorkers

    return LocalWorkers(count, suite_path, suite.threads, max_trials, argv, log, overrides)


def make_stages(loaded, device, log, stages_factory=None):
    if stages_factory is not None:
        return stages_factory(loaded, device, log)
    if loaded.suite.benchmark is not None:  # text-to-image: the benchmark's prompts and scorer
        from sgbench.run.t2i_stages import T2IStages

        return T2IStages(loaded, device, log)
    from sgbench.run.stages import ClassStages

    return ClassStages(loaded, device, log)


def _open(loaded, storage: str, study_name: str, rank: int, cells: list) -> list:
    """[(cell, its Studies)]: per cell of a checkpoint sweep its own baseline and search studies
    (named `<study>@<cell tag>`), holding the work of the methods that run in it; one storage."""
    from sgbench.search.study import open_storage, open_studies

    suite = loaded.suite
    shared = loaded.storage is not None
    name = (suite.search.study_name if suite.search and suite.search.study_name else None) or study_name
    worker = rank
    if shared:  # workers on other machines also have rank 0: give each its own sampler stream
        import socket
        import zlib

        worker += zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode()) % 100003
    rdb = open_storage(storage)
    out = []
    for cell in cells:
        search = suite.search if suite.search is not None and cell.runs(method_spec(suite.search.method)
                                                                        .needs_weak_network) else None
        baselines = any(cell.runs(m.needs_weak_network) for m in suite.methods)
        out.append((cell, open_studies(storage, cell.study_name(name), suite.directions, search, baselines,
                                       worker=worker, storage_object=rdb,
                                       metric_names=suite.objective_keys)))
    return out


def _check_study_suite(studies, loaded, where: str) -> None:
    from sgbench.config.typed import first_difference
    from sgbench.run.rundir import comparable
    from sgbench.search.study import recorded_suite

    for study in (study for _, cell_studies in studies for _, study in cell_studies.all()):
        old = recorded_suite(study)
        if old is not None:
            diff = first_difference(old, comparable(loaded.snapshot()), "suite")
            if diff:
                raise UserError(f"study {study.study_name!r} in {where} was started with another suite ({diff}); "
                                "use the same suite, or a new study_name for a new experiment")


def _claim_or_join(loaded, root: Path, run_name: str, target, env: dict, log, rank: int, size: int, open_studies,
                   resumed: bool = True):
    """(run directory, its studies): rank 0 (or a single worker) claims or resumes the directory and
    opens the studies; under torchrun the other ranks then receive the directory through the
    launch's rendezvous store and join it. A directory claimed now is removed again if its studies
    cannot be opened (a refused run leaves nothing behind)."""
    import shutil

    from sgbench.run import rundir

    def own() -> tuple[Path, object]:
        if target is not None:
            if resumed:
                rundir.record_resume(target, env)
            return target, open_studies(target)
        path = rundir.claim(root, run_name, loaded, env, log)
        try:
            return path, open_studies(path)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise

    if size <= 1:
        return own()
    store = rundir.rendezvous_store()
    if rank == 0:
        import atexit

        atexit.register(rundir.await_joins, store)  # keep a store rank 0 hosts until every rank has read it
        try:
            path, studies = own()
        except BaseException as e:
            rundir.publish(store, None, str(e) or type(e).__name__)
            raise
        rundir.publish(store, path)
        return path, studies
    path = rundir.await_run_dir(store)
    rundir.check_same_suite(path, loaded, "joining worker")
    rundir.record_resume(path, env)
    return path, open_studies(path)


def report_builder(cfg):
    """The report stage's entry point, with the suite's options checked now (not after the run);
    None (and a warning) when sgbench.report is not installed."""
    try:
        from sgbench.report import build_report
    except ImportError as e:
        warnings.warn(f"report skipped: sgbench.report is not available ({e})")
        return None
    import inspect

    try:
        inspect.signature(build_report).bind(["run"], None, **cfg.options)
    except TypeError as e:
        raise UserError(f"suite.report.options: {e}") from None
    return build_report


def report_dir(loaded, run_dir: Path) -> Optional[Path]:
    """report.out with {run} replaced, relative to the suite file (None: the default <run>/report)."""
    from sgbench.config.files import resolve_path

    out = loaded.suite.report.out
    if not out:
        return None
    return resolve_path(out.replace("{run}", run_dir.name), loaded.source.resolve().parent)


def check_report_target(loaded, root: Path, target, run_name: str) -> None:
    """The report's directory must be one sgbench may write (checked before the run starts)."""
    from sgbench.config.files import check_output_dir
    from sgbench.report.build import check_target, default_out_dir
    from sgbench.run.rundir import free_name

    run_dir = target if target is not None else root / free_name(root, run_name)
    out = report_dir(loaded, run_dir) or default_out_dir([run_dir])
    check_output_dir(out, "suite.report.out")
    sources = [str(run_dir.resolve())] if target is not None else None
    check_target(out, sources, bool(loaded.suite.report.options.get("force", False)))


def make_report(build_report, run_dir: Path, loaded, log) -> Optional[Path]:
    """The report's report.html (None: it failed; the log says why). `sgbench run` prints the path
    on stdout (commands/run.py), so it is not logged here."""
    try:
        path = build_report([run_dir], report_dir(loaded, run_dir), **loaded.suite.report.options)
    except Exception as e:  # the results are safe on disk; the report can be rebuilt on its own
        log(f"report failed ({type(e).__name__}: {e}); the results are complete, retry with `sgbench report {run_dir}`")
        return None
    return path / "report.html"
