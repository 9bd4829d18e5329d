"""`build_report(run_dirs, out_dir)`: tables, figures, sample grids -> report.md, tables.tex,
report.html (self-contained) and report.json in one directory, written atomically.

The report directory is built next to its destination and swapped in at the end, so readers
never see a half-written report. A directory holding a report of *other* runs is never
replaced silently (UserError unless `force`); re-running for the same runs replaces it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from sgbench.errors import UserError
from sgbench.rehearse.marker import NOTICE as REHEARSAL_NOTICE
from sgbench.rehearse.marker import is_rehearsal
from sgbench.report.figures import build_figures
from sgbench.report.html_page import html_page
from sgbench.report.render import md_escape, table_markdown, tables_latex
from sgbench.report.runs import Run, load_run, run_facts, status_line
from sgbench.report.samples import collect_grids
from sgbench.report.sweep_figures import SweepReport
from sgbench.report.tables import RunSummaries, build_tables

MANIFEST = "report.json"


REPORT_DIR = "report"  # a run's report: results/<run>/report/


def default_out_dir(run_dirs: list[Path]) -> Path:
    """The report lives with its run: <run>/report/; a report of several runs lives with the
    first one: <run1>/report+<run2>[+...]/."""
    first = Path(run_dirs[0])
    others = [Path(d).resolve().name for d in run_dirs[1:]]
    return first / "+".join([REPORT_DIR, *others])


def markdown_page(all_rs, tables, figures, grids, out_dir: Path) -> str:
    runs = [rs.run for rs in all_rs]
    title = " vs ".join(r.name for r in runs)
    lines = [f"# sgbench report: {md_escape(title)}", ""]
    for r in runs:
        if is_rehearsal(r.path):
            lines += [f"> **{md_escape(r.name)}: {md_escape(REHEARSAL_NOTICE)}**", ""]
    for r in runs:
        facts = "; ".join(f"{md_escape(k)}: {md_escape(v)}" for k, v in run_facts(r).items())
        lines.append(f"- **{md_escape(r.name)}** ({md_escape(r.path)}): {status_line(r)}"
                     + (f"; {facts}" if facts else ""))
    lines.append("")
    for r in runs:
        if r.problem:
            lines += [f"> **{md_escape(r.name)}: nothing to report: {md_escape(r.problem)}.**", ""]
    for t in tables:
        if t.key == "settings":
            continue
        lines += [f"## {md_escape(t.title)}", "", table_markdown(t), "", f"*{md_escape(t.caption)}*", ""]
    if figures:
        lines += ["## Figures", ""]
        for caption, p in figures:
            lines += [f"![{md_escape(_alt(caption))}](figures/{p.name})", "", f"*{md_escape(caption)}*", ""]
    if grids:
        lines += ["## Samples", ""]
        for g in grids:
            lines += [f"[![{md_escape(_alt(g.caption))}](figures/{g.path.name})](figures/{g.full.name})", "",
                      f"*{md_escape(g.caption)}*", ""]
    for t in tables:
        if t.key == "settings":
            lines += [f"## {md_escape(t.title)}", "", table_markdown(t), "", f"*{md_escape(t.caption)}*", ""]
    lines += ["LaTeX tables: `tables.tex`; self-contained page: `report.html`.", ""]
    return "\n".join(lines)


def _alt(caption: str) -> str:
    """A figure's alt text: its caption's first clause (the caption follows in full)."""
    return caption.split("; ")[0].split(". ")[0]


def check_target(out_dir: Path, sources: Optional[list[str]], force: bool) -> None:
    """Refuse to replace a directory that holds something other than our own report: a report of
    other runs only with `force`, anything else (not an sgbench report) never. `sources` None:
    runs not created yet (only an empty or absent directory, or with `force` a report, will do)."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise UserError(f"report output {out_dir} exists and is not a directory")
    if not any(out_dir.iterdir()):
        return
    try:
        owner = json.loads((out_dir / MANIFEST).read_text()).get("runs")
    except (OSError, ValueError, AttributeError):
        owner = None
    if not isinstance(owner, list):
        raise UserError(f"{out_dir} already holds files that are not an sgbench report; sgbench never replaces "
                        "it (not even with --force): choose another --out")
    if owner != sources and not force:
        raise UserError(f"{out_dir} already holds a report of {', '.join(owner)}; choose another --out or pass --force")


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Replace out_dir by tmp with two renames (the old copy is removed afterwards)."""
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.replace(out_dir, old / "r")
    os.replace(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_report(run_dirs, out_dir=None, *, force: bool = False) -> Path:
    """Write the report of one or several run directories; returns the report directory.

    out_dir defaults to `default_out_dir(run_dirs)`. Raises UserError on bad input (missing
    run directory, unreadable trials.csv, out_dir owned by another report without `force`).
    A run with no completed trial still gets a report that says so.
    """
    if isinstance(run_dirs, (str, os.PathLike)):
        run_dirs = [run_dirs]
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise UserError("no run directory given")
    resolved = [str(d.resolve()) for d in run_dirs]
    if len(set(resolved)) != len(resolved):
        raise UserError("the same run directory is given twice")
    runs = [load_run(d) for d in run_dirs]
    names = [r.name for r in runs]
    if len(set(names)) != len(names):  # tables and figure names key on the run name
        for i, r in enumerate(runs):
            r.name = f"{r.name} ({i + 1})"
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(run_dirs)
    check_target(out_dir, resolved, force)
    out_dir.parent.mkdir(parents=True, exist_ok=True)

    sweeps = SweepReport.of(runs)  # checkpoint sweeps: the ordinary parts read the newest checkpoint
    all_rs = [RunSummaries.of(r) for r in sweeps.views]
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        fig_dir = tmp / "figures"
        fig_dir.mkdir()
        tables = build_tables(all_rs) + sweeps.tables()
        figures = build_figures(all_rs, fig_dir) + sweeps.figures(all_rs, fig_dir)
        grids = collect_grids(all_rs, fig_dir)
        (tmp / "report.md").write_text(markdown_page(all_rs, tables, figures, grids, out_dir), encoding="utf-8")
        source = ", ".join(names)
        (tmp / "tables.tex").write_text(
            tables_latex(tables, source) if tables else f"% sgbench: no completed trials in {source}\n",
            encoding="utf-8")
        (tmp / "report.html").write_text(html_page(all_rs, tables, figures, grids), encoding="utf-8")
        manifest = {"runs": resolved, "names": [r.name for r in runs],
                    "primary": [rs.primary for rs in all_rs],
                    "problems": {r.name: r.problem for r in runs if r.problem},
                    "tables": [t.key for t in tables],
                    "figures": [p.name for _, p in figures], "samples": [g.path.name for g in grids],
                    "samples_full": [g.full.name for g in grids]}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700 directories
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
