"""Rehearse the shipped GPU suites on this machine (`make rehearse`; CI runs it after the slow tests).

    .venv/bin/python benchmarks/rehearse_suites.py [--suites imagenet_grid,t2i_hpsv3] [--keep DIR]

Runs `sgbench run suites/<suite>.yaml --rehearse` for each shipped suite that reads user files
(imagenet_grid, imagenet_sweep, imagenet_autoguidance_sweep, t2i_geneval, ...), one at a time, as a user would
(its own process, torch's default threads), and checks what the rehearsal promises: exit 0,
trials.csv with the suite's quality column (the first metric it measures: fid, geneval, hpsv3)
and, with metrics.lpips, lpips_cond in every row, report.html, and a sweep's figures
(sweep_training_<metric>.png, sweep_auxiliary_<metric>.png) and lpips_cond.png. Prints each wall time. The rehearsal directories go to a
temporary folder, removed at the end (they hold multi-GB stand-in checkpoints) unless --keep
names one.

Skipped with a warning, because a real run of that suite needs the same and cannot be stood in:
  t2i_hpsv3    without an HPSv3 environment ($SGBENCH_HPSV3_PYTHON, else ./.hpsv3-env/bin/python;
               `make hpsv3-env` builds it);
  t2i_geneval  without mmdet (GenEval's Mask2Former detector; `make geneval-cpu` on a CPU).
Exit 1 when a rehearsal fails or misses what it promises.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def gpu_suites() -> list[str]:
    """The shipped suites that read user files (the GPU suites), by name: every suites/*.yaml that
    loads as a suite and names a file outside the sgbench package (the quickstarts ship theirs;
    training configs are not suites)."""
    import sgbench
    from sgbench.config.loader import file_refs, load_suite
    from sgbench.errors import UserError

    package = Path(sgbench.__file__).resolve().parent
    names = []
    for path in sorted((ROOT / "suites").glob("*.yaml")):
        try:
            loaded = load_suite(path, check_files=False)
        except UserError:
            continue
        refs = file_refs(loaded.suite, path.parent)
        if any(package not in r.path.resolve().parents for r in refs):
            names.append(path.stem)
    return names


def hpsv3_python():
    py = os.environ.get("SGBENCH_HPSV3_PYTHON") or str(ROOT / ".hpsv3-env" / "bin" / "python")
    if not Path(py).is_file():
        return None
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    ok = subprocess.run([py, "-c", "import hpsv3"], capture_output=True, env=env).returncode == 0
    return py if ok else None


def skip_reason(suite: str, env: dict):
    if suite == "t2i_hpsv3":
        py = hpsv3_python()
        if py is None:
            return "no HPSv3 environment (make hpsv3-env, or set SGBENCH_HPSV3_PYTHON); a real run needs one too"
        env["SGBENCH_HPSV3_PYTHON"] = py
    if suite == "t2i_geneval" and importlib.util.find_spec("mmdet") is None:
        return "mmdet is not installed (make geneval-cpu); a real run needs GenEval's detector too"
    return None


def promised(suite_path: Path) -> tuple[list[str], list[str]]:
    """(trials.csv columns every row must fill, report figures) of a suite's rehearsal: the quality
    column (the first metric it measures: fid, geneval, hpsv3), `lpips_cond` with metrics.lpips;
    a sweep's figures (Fig. 5 left, Fig. 7 right) and LPIPS's (Fig. 7 left)."""
    from sgbench.config.loader import load_suite

    suite = load_suite(suite_path, check_files=False).suite
    quality = suite.metrics.metric_keys[0]
    columns, figures = [quality], []
    if suite.metrics.lpips is not None:
        columns.append("lpips_cond")
        figures.append("lpips_cond.png")
    if suite.model.sweep:
        figures.append(f"sweep_training_{quality}.png")
    if suite.model.weak_sweep:
        figures.append(f"sweep_auxiliary_{quality}.png")
    return columns, figures


def check_run(out: Path, name: str, columns: list[str], figures: list[str] = ()) -> list[str]:
    """What a rehearsal promises, as problems (empty: all there)."""
    run_dirs = sorted(out.glob(f"{name}-rehearsal*"))
    if not run_dirs:
        return [f"no run directory {name}-rehearsal in {out}"]
    run_dir = run_dirs[-1]
    problems = []
    try:
        with open(run_dir / "trials.csv") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        return [f"no trials.csv: {e}"]
    if not rows:
        problems.append("trials.csv has no rows")
    for r in rows:
        problems += [f"{r.get('trial_id')}: no {column}" for column in columns if not r.get(column)]
    report = run_dir / "report"
    problems += [f"no {report / f}" for f in ["report.html", *(f"figures/{f}" for f in figures)]
                 if not (report / f).is_file()]
    return problems


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suites", default=None, help="comma-separated suite names under suites/ (default: every "
                   "shipped suite that reads user files)")
    p.add_argument("--keep", default=None, metavar="DIR", help="keep the rehearsals in DIR/results, DIR/reports")
    args = p.parse_args(argv)
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sgbench-rehearse-"))
    out = base / "results"
    sgbench = [sys.executable, "-m", "sgbench.cli"]
    results, failed = [], False
    try:
        names = [s.strip() for s in args.suites.split(",") if s.strip()] if args.suites else gpu_suites()
        for name in names:
            path = ROOT / "suites" / f"{name}.yaml"
            env = dict(os.environ)
            reason = skip_reason(name, env)
            if reason:
                print(f"warning: {name}: rehearsal skipped: {reason}", file=sys.stderr, flush=True)
                results.append((name, "skipped", None))
                continue
            print(f"== sgbench run suites/{name}.yaml --rehearse", flush=True)
            t0 = time.perf_counter()
            code = subprocess.run(sgbench + ["run", str(path), "--rehearse", "--out", str(out), "--no-progress"],
                                  env=env, cwd=ROOT).returncode
            wall = time.perf_counter() - t0
            problems = [f"exit code {code}"] if code else check_run(out, name, *promised(path))
            failed |= bool(problems)
            results.append((name, "; ".join(problems) or "ok", wall))
            if not args.keep:  # multi-GB stand-ins: free the disk before the next suite
                shutil.rmtree(out, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print("\n| suite | result | wall time |\n|---|---|---|")
    for name, result, wall in results:
        print(f"| {name} | {result} | {'-' if wall is None else f'{wall:.0f} s'} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
