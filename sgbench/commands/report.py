"""`sgbench report RUN_DIR [RUN_DIR ...]`: paper-style tables, figures and one HTML page."""

from __future__ import annotations


def register(subparsers):
    p = subparsers.add_parser(
        "report", help="tables (Markdown, LaTeX), figures and an HTML page for one or more runs",
        description="Write report.md, tables.tex, report.html and figures/ for one run, or for "
                    "several runs side by side (a run column, overlaid Pareto plot). Runs are "
                    "directories or names under results/. The report lives with its run "
                    "(RUN_DIR/report/) unless --out names another directory. Re-running replaces "
                    "the report of the same runs; a directory holding another report is refused "
                    "unless --force.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directory or name under results/")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output directory (default: RUN_DIR/report/; several runs: RUN_DIR1/report+<run2>/)")
    p.add_argument("--results", metavar="DIR", default="results",
                   help="where run names are looked up (default: results)")
    p.add_argument("--force", action="store_true",
                   help="replace --out even if it holds a report of other runs")
    return p


def main(args) -> int:
    import json
    import sys
    from pathlib import Path

    from sgbench.commands import printing_to_stderr
    from sgbench.report.build import build_report, default_out_dir
    from sgbench.report.runs import resolve_run_dir

    run_dirs = [resolve_run_dir(r, args.results) for r in args.runs]
    target = Path(args.out) if args.out else default_out_dir(run_dirs)
    replaced = (target / "report.json").is_file()
    with printing_to_stderr():  # stdout: the report's path only
        out = build_report(run_dirs, target, force=args.force)
    manifest = json.loads((out / "report.json").read_text())
    for name, problem in manifest.get("problems", {}).items():
        print(f"sgbench report: warning: {name}: nothing to report: {problem}", file=sys.stderr)
    verb = "replaced" if replaced else "wrote"
    print(f"{verb} {out}/: report.md, report.html, tables.tex and {len(manifest['figures'])} figure(s)",
          file=sys.stderr)
    print(out / "report.html")
    return 0
