"""`sgbench check NEW_RUN --baseline BASE_RUN`: the regression gate (exit 1 on a regression).
`sgbench check SWEEP_RUN --previous-checkpoint`: a checkpoint sweep's newest checkpoint against the
previous one (docs/sweeps.md)."""

from __future__ import annotations


def register(subparsers):
    p = subparsers.add_parser(
        "check", help="compare a run with a baseline run; exit 1 when a metric regressed",
        description="Compare NEW_RUN with BASE_RUN metric by metric at matching settings (method, "
                    "gamma_strong, gamma_weak, omega, schedule, n_samples). A metric regresses when "
                    "it is worse by more than its tolerance AND by more than K standard errors of the "
                    "difference (paired over seeds when both runs share them). A checkpoint sweep is "
                    "compared by its newest checkpoint; --previous-checkpoint compares that with the "
                    "sweep's previous one instead of a baseline run. Exit 0: no regression; "
                    "1: regression; 2: bad input.")
    p.add_argument("new", metavar="NEW_RUN", help="run directory or name under results/")
    base = p.add_mutually_exclusive_group(required=True)
    base.add_argument("--baseline", metavar="BASE_RUN", help="baseline run directory or name under results/")
    base.add_argument("--previous-checkpoint", action="store_true",
                      help="NEW_RUN is a checkpoint sweep (model.sweep): compare its newest checkpoint with "
                           "the previous one, setting by setting (docs/sweeps.md)")
    p.add_argument("--tolerance", action="append", default=[], metavar="SPEC",
                   help="fixed tolerances, e.g. 'fid=0.5,class_acc=0.01,default=1%%'; VALUE%% is "
                        "relative to the baseline; a bare value sets the default (built-in: 1%%)")
    p.add_argument("--k", type=float, default=2.0,
                   help="noise multiplier: a regression must exceed K·σ of the difference (default 2)")
    p.add_argument("--results", metavar="DIR", default="results",
                   help="where run names are looked up (default: results)")
    p.add_argument("-v", "--verbose", action="store_true", help="print every comparison, not only regressions")
    return p


def main(args) -> int:
    from sgbench.report.gate import compare_runs, format_result, parse_tolerances
    from sgbench.report.runs import load_run, resolve_run_dir
    from sgbench.report.sweep import newest_and_previous, newest_view
    from sgbench.rehearse.marker import refuse_real_use

    tolerances = parse_tolerances(args.tolerance)

    new_dir = resolve_run_dir(args.new, args.results)
    refuse_real_use(new_dir, "sgbench check")
    new = load_run(new_dir)
    if args.previous_checkpoint:
        new, base = newest_and_previous(new)
    else:  # a sweep run is compared by its newest checkpoint: settings never merge across checkpoints
        base_dir = resolve_run_dir(args.baseline, args.results)
        refuse_real_use(base_dir, "sgbench check --baseline")
        new, base = newest_view(new), newest_view(load_run(base_dir))
    result = compare_runs(new, base, tolerances, k=args.k)
    for line in format_result(result, new, base, args.k, verbose=args.verbose):
        print(line)
    return 0 if result.ok else 1
