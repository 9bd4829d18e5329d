"""Wire one `sgbench run`: suite -> run directory -> stages -> studies -> Runner -> report."""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

from sgbench.config.loader import load_suite
from sgbench.errors import UserError


def _log_to_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_suite(suite_path, out="results", resume: bool = False, name=None, max_trials=None,
              report: bool = True, progress: bool = True, argv=None, log=None, stages_factory=None,
              rehearse: bool = False) -> Path:
    """Run (or resume) a suite; returns the run directory.

    stages_factory(loaded, device, log) -> Stages replaces the real model/metric stages (tests).
    rehearse: tiny sizes and stand-ins for missing files, in a rehearsal directory (sgbench.rehearse).
    """
    log = log or _log_to_stderr
    started = time.perf_counter()
    loaded = load_suite(suite_path, check_files=not rehearse)  # fails fast: bad keys, values, every missing file
    rehearsal = None
    if rehearse:
        from sgbench.rehearse.session import Rehearsal

        rehearsal = Rehearsal(loaded, out, name, resume, log)  # tiny sizes; which files get stand-ins
        loaded, name = rehearsal.loaded, rehearsal.run_name
    suite = loaded.suite
    builder = report_builder(suite.report) if report and suite.report.enabled else None
    root = Path(out)
    from sgbench.run import rundir

    run_name = name or suite.name
    from sgbench.run.stages import Stages, pick_device

    device = pick_device(suite.device)
    if suite.threads:
        import torch

        torch.set_num_threads(suite.threads)
    if stages_factory is not None:
        stages = stages_factory(loaded, device, log)
    elif suite.benchmark is not None:  # text-to-image: the benchmark's prompts and scorer
        from sgbench.run.t2i_stages import T2IStages

        stages = T2IStages(loaded, device, log)
    else:
        stages = Stages(loaded, device, log)
    try:
        if rehearsal is not None:
            rehearsal.build()  # its own directory, the stand-ins inside
        if hasattr(stages, "validate"):
            stages.validate()  # cheap input checks (prompt files, sample counts) before any directory exists
    except BaseException:
        if rehearsal is not None:
            rehearsal.abandon()  # its directory holds only stand-ins: remove it
        raise

    def prepare(path):
        rundir.prepare(path, loaded, resume, device, list(argv if argv is not None else sys.argv))
        if rehearsal is not None:
            rehearsal.record(path)

    run_dir = rundir.rendezvous(root, lambda: rehearsal.run_dir if rehearsal else rundir.choose_run_dir(
        root, run_name, resume, log), prepare)
    log(f"sgbench run: {suite.name} -> {run_dir} on {device}")

    from sgbench.search.study import default_storage, open_studies

    shared = bool(suite.search and suite.search.storage)
    storage = suite.search.storage if shared else default_storage(run_dir)
    # a shared storage is shared by name: every worker, on any machine, joins the same study
    study_name = (suite.search.study_name if suite.search and suite.search.study_name else None) or (
        (name or suite.name) if shared else run_dir.name)
    worker = int(os.environ.get("RANK", "0"))
    if shared:  # workers on other machines also have rank 0: give each its own sampler stream
        import socket
        import zlib

        worker += zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode()) % 100003
    studies = open_studies(storage, study_name, suite.directions, suite.search, bool(suite.methods), worker=worker)

    stages.run_dir = run_dir  # where stages keep per-trial files (T2I images)
    from sgbench.run.pipeline import Runner, RunOptions

    try:
        t0 = time.perf_counter()
        stages.load()
        log(f"loaded models, {'benchmark' if suite.benchmark else 'extractor and reference'} in "
            f"{time.perf_counter() - t0:.1f}s")
        runner = Runner(loaded, run_dir, stages, studies, RunOptions(max_trials=max_trials, progress=progress))
        runner.run()
    except KeyboardInterrupt:
        log(f"interrupted: the current trial is re-queued; continue with "
            f"`sgbench run {suite_path}{' --rehearse' if rehearsal else ''} --resume --name {run_dir.name}"
            f"{' --out ' + str(out) if str(out) != 'results' else ''}`")
        raise
    finally:
        if hasattr(stages, "close"):
            stages.close()  # e.g. the HPSv3 worker process
    left = runner.unfinished()
    if left:
        log(f"{left} trial(s) not finished here (other workers, or --max-trials); "
            f"`sgbench run {suite_path}{' --rehearse' if rehearsal else ''} --resume --name {run_dir.name}` continues")
    elif builder is not None:
        make_report(builder, run_dir, suite.report, log)
    log(f"done in {time.perf_counter() - started:.0f}s: {run_dir / 'trials.csv'}")
    return run_dir


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


def make_report(build_report, run_dir: Path, cfg, log) -> None:
    out_dir = Path(cfg.out.replace("{run}", run_dir.name)) if cfg.out else None
    try:
        path = build_report([run_dir], out_dir, **cfg.options)
    except Exception as e:  # the results are safe on disk; the report can be rebuilt on its own
        log(f"report failed ({type(e).__name__}: {e}); the results are complete, retry with `sgbench report {run_dir}`")
        return
    log(f"report: {path}")
