"""`sgbench run SUITE`: sample, measure, search and report one suite into results/<run>/.

Stdout carries only the outcome, for scripts: `run: <run directory>`, then `report: <its
report.html>` when this invocation wrote the report (run_dir=$(sgbench run S | sed -n 's/^run: //p')).
Everything else (per-trial lines, progress, warnings) goes to stderr.

Exit codes: 0 every trial done, 1 a trial failed (its traceback is in results/<run>/errors/),
2 bad input (nothing was written), 3 trials left (other workers, --max-trials), 130 SIGINT,
143 SIGTERM (the trial in progress is re-queued; --resume continues).
"""

from __future__ import annotations


def register(subparsers):
    from sgbench.config.limits import MAX_TRIALS, MAX_WORKERS, count_arg

    p = subparsers.add_parser(
        "run",
        help="run a benchmark suite (YAML): baselines + Optuna search -> results/<run>/trials.csv + report",
        description=__doc__,
    )
    p.add_argument("suite", help="suite YAML file (e.g. suites/quickstart.yaml), or a shipped one: "
                                 "sgbench:suites/quickstart.yaml (`sgbench suites` lists them)")
    p.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                   help="change one suite key for this run, checked like the file (repeatable): KEY a dotted path "
                        "with list indices (sampler.steps, methods[1].omega), VALUE YAML (20, [1.5, 2.0], null); "
                        "recorded in the run's suite.yaml, compared by --resume")
    p.add_argument("--out", default="results", metavar="DIR", help="results root (default: results)")
    p.add_argument("--name", default=None, help="run name (default: the suite's name); the run goes to DIR/NAME")
    p.add_argument("--resume", action="store_true",
                   help="continue DIR/NAME: finish the remaining trials and retry the failed ones "
                        "(otherwise an existing run gets a new -N name)")
    p.add_argument("--max-trials", type=count_arg(1, MAX_TRIALS), default=None, metavar="N",
                   help="stop after N trials in this invocation (continue later with --resume)")
    p.add_argument("--rehearse", action="store_true",
                   help="prove the suite end to end on the CPU in minutes: every baseline, 2 search points, one "
                        "pruning rung at tiny sizes, stand-ins for missing files, in DIR/NAME-rehearsal "
                        "(docs/rehearse.md)")
    p.add_argument("--no-report", action="store_true", help="skip the report at the end")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (per-trial lines still print)")
    p.add_argument("--workers", type=count_arg(1, MAX_WORKERS), default=None, metavar="N",
                   help="local worker processes sharing the run, each with the suite's torch threads "
                        "(default: the suite's `workers`, 1)")
    return p


def main(args) -> int:
    import sys

    from sgbench.commands import printing_to_stderr
    from sgbench.run.main import run_suite
    from sgbench.run.rundir import world
    from sgbench.run.signals import RunInterrupted

    try:
        with printing_to_stderr():
            result = run_suite(args.suite, out=args.out, resume=args.resume, name=args.name,
                               max_trials=args.max_trials, report=not args.no_report,
                               progress=not args.no_progress, argv=sys.argv, rehearse=args.rehearse,
                               workers=args.workers, overrides=args.overrides)
    except RunInterrupted as e:
        print(f"sgbench run: stopped by {e}", file=sys.stderr)
        return e.exit_code
    if world()[0] == 0:  # under torchrun every rank runs this; rank 0 speaks for the run
        print(f"run: {result.run_dir}")
        if result.report is not None:
            print(f"report: {result.report}")
    return result.exit_code
