"""Paper-layout tables as plain data (`Table` of `Cell`s); `render.py` turns them into
Markdown, LaTeX and HTML.

- summary: paper Tables 1-3 — baselines plus, per searched method, its best setting by the
  primary metric (label METHOD_<metric>) and, where one exists, its cheapest setting at least
  as good as the best baseline (METHOD_FLOPs); FID, sFID, IS, Prec., Rec., ..., GFLOPs,
  ΔGFLOPs vs unguided. Several seeds -> mean ± std.
- hpsv3 / geneval: paper Tables 4-5 (overall + per category/tag) for the same rows.
- settings: every setting of every run (appendix-style).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sgbench.guidance.vocabulary import method_display_name, method_order
from sgbench.metrics import registry
from sgbench.report.aggregate import (Summary, best, better, summarise,
                                      unguided_reference)
from sgbench.report.metrics import (arrow, display_name, higher_is_better, metric_order,
                                     number_format, primary_metric)
from sgbench.report.runs import Run, train_sparsity



@dataclass
class Cell:
    """One table cell: `text` (may come from users; renderers escape it), an optional
    subscript (SG_FID, FD_dinov2), a ± part, an arrow and bold."""

    text: str
    sub: str = ""
    pm: str = ""
    arrow: str = ""
    bold: bool = False
    numeric: bool = False


@dataclass
class Table:
    key: str
    title: str
    caption: str
    header: list[Cell]
    rows: list[list[Cell]] = field(default_factory=list)

    @property
    def align(self) -> list[str]:
        if not self.rows:
            return ["l"] * len(self.header)
        return ["r" if self.rows[0][i].numeric else "l" for i in range(len(self.header))]


@dataclass
class RunSummaries:
    """A run with its per-setting summaries and primary metric, computed once."""

    run: Run
    summaries: list[Summary]
    primary: str | None

    @classmethod
    def of(cls, run: Run) -> "RunSummaries":
        summaries = summarise(run.trials) if run.problem is None else []
        return cls(run, summaries, primary_metric(run.metrics) if summaries else None)


def header_cell(column: str, with_arrow: bool = True) -> Cell:
    name = display_name(column)
    text, _, sub = name.partition("_")
    return Cell(text, sub=sub, arrow=arrow(column) if with_arrow else "")


def value_cell(summary: Summary, column: str) -> Cell:
    stat = summary.stats.get(column)
    if not stat:
        return Cell("–", numeric=True)
    fmt = number_format(column, stat.mean)
    # no "± 0.0" for values that do not vary over seeds (GFLOPs)
    pm = format(stat.std, fmt) if stat.n > 1 and stat.std > 0 else ""
    return Cell(format(stat.mean, fmt), pm=pm, numeric=True)


def _delta_cell(summary: Summary, ref: Summary | None) -> Cell:
    if ref is None or "gflops" not in summary.stats:
        return Cell("–", numeric=True)
    if summary is ref:
        return Cell("0 (baseline)", numeric=True)
    d = summary.mean("gflops") - ref.mean("gflops")
    return Cell(("+" if d >= 0 else "−") + format(abs(d), number_format("gflops", ref.mean("gflops"))), numeric=True)


def _bold_best(table: Table, columns: list[str | None]) -> None:
    """Bold the best value per metric column (ties all bold), as the paper does."""
    for j, col in enumerate(columns):
        if col is None:
            continue
        values = [(i, float(r[j].text)) for i, r in enumerate(table.rows) if _is_number(r[j].text)]
        if len(values) < 2:
            continue
        top = values[0][1]
        for _, v in values[1:]:
            if better(col, v, top):
                top = v
        for i, v in values:
            if v == top:
                table.rows[i][j].bold = True


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def selected_rows(rs: RunSummaries) -> list[tuple[Cell, Summary]]:
    """Rows of the Tables 1-3 layout for one run: baselines, then best (and cheapest
    baseline-beating) setting per searched method."""
    summaries, primary = rs.summaries, rs.primary
    baselines = sorted((s for s in summaries if s.role == "baseline"),
                       key=lambda s: (method_order(s.setting.method), s.setting.sort_key()))
    rows = [(Cell(s.setting.method_name), s) for s in baselines]
    searched = [s for s in summaries if s.role != "baseline"]
    if primary is None:
        return rows + [(Cell(s.setting.method_name), s) for s in searched]
    best_base = best(baselines, primary)
    methods = sorted({s.setting.method for s in searched}, key=lambda m: (method_order(m), m))
    for method in methods:
        group = [s for s in searched if s.setting.method == method]
        name = method_display_name(method)
        top = best(group, primary)
        if top is None:
            continue
        rows.append((Cell(name, sub=display_name(primary).split("_")[0]), top))
        if best_base is None:
            continue
        target = best_base.mean(primary)
        ok = [s for s in group if "gflops" in s.stats and primary in s.stats
              and not better(primary, target, s.mean(primary))]
        if ok:
            cheap = min(ok, key=lambda s: (s.mean("gflops"), s.setting.sort_key()))
            if cheap is not top:
                rows.append((Cell(name, sub="FLOPs"), cheap))
    return rows


def _context_columns(all_rs: list[RunSummaries], summaries: list[Summary], multi: bool):
    """Header cells and per-row cell builders for the descriptive columns."""
    cols = []
    if multi:
        cols.append((Cell("Run"), lambda rs, s: Cell(rs.run.name)))
    if any(train_sparsity(rs.run) for rs in all_rs):
        cols.append((Cell("Train sparsity"), lambda rs, s: Cell(train_sparsity(rs.run) or "–")))
    cols.append((Cell("Sparsity γ_s / γ_w"), lambda rs, s: Cell(s.setting.sparsity())))
    cols.append((Cell("ω"), lambda rs, s: Cell("–" if s.setting.omega is None else f"{s.setting.omega:g}",
                                               numeric=True)))
    if len({s.setting.n_samples for s in summaries}) > 1:
        cols.append((Cell("N"), lambda rs, s: Cell(str(s.setting.n_samples), numeric=True)))
    if any(len(s.seeds) > 1 for s in summaries):
        cols.append((Cell("Seeds"), lambda rs, s: Cell(str(len(s.seeds)), numeric=True)))
    return cols


def _overall_metrics(all_rs: list[RunSummaries]) -> list[str]:
    """Metric columns of the main tables: all but T2I per-category/per-tag columns."""
    breakdown = tuple(b.family.prefix for b in registry.breakdowns())
    seen: list[str] = []
    for rs in all_rs:
        for m in rs.run.metrics:
            if m not in seen and not m.startswith(breakdown):
                seen.append(m)
    return metric_order(seen)


def _samples_note(summaries: list[Summary], primary: str | None) -> str:
    ns = sorted({s.setting.n_samples for s in summaries if isinstance(s.setting.n_samples, int)})
    if primary and len(ns) == 1:
        k = ns[0]
        size = f"{k // 1000}k" if k >= 1000 and k % 1000 == 0 else str(k)
        return f" {display_name(primary)}@{size}."
    return ""


def summary_table(all_rs: list[RunSummaries]) -> Table | None:
    """Paper Tables 1-3 layout (one block of rows per run when several runs are given)."""
    picked = [(rs, label, s) for rs in all_rs for label, s in selected_rows(rs)]
    if not picked:
        return None
    multi = len(all_rs) > 1
    summaries = [s for _, _, s in picked]
    context = _context_columns(all_rs, summaries, multi)
    metrics = _overall_metrics(all_rs)
    has_gflops = any("gflops" in s.stats for s in summaries)
    has_ips = any("images_per_s" in s.stats for s in summaries)
    header = [Cell("Method")] + [c for c, _ in context] + [header_cell(m) for m in metrics]
    keys: list[str | None] = [None] * (1 + len(context)) + list(metrics)
    if has_gflops:
        header += [header_cell("gflops"), Cell("ΔGFLOPs", arrow="↓")]
        keys += ["gflops", None]
    if has_ips:
        header.append(header_cell("images_per_s"))
        keys.append("images_per_s")
    refs = {id(rs): unguided_reference(rs.summaries) for rs in all_rs}
    table = Table("summary", "Guidance methods", "", header)
    for rs, label, s in picked:
        row = [label] + [make(rs, s) for _, make in context] + [value_cell(s, m) for m in metrics]
        if has_gflops:
            row += [value_cell(s, "gflops"), _delta_cell(s, refs[id(rs)])]
        if has_ips:
            row.append(value_cell(s, "images_per_s"))
        table.rows.append(row)
    _bold_best(table, keys)
    primaries = {rs.primary for rs in all_rs if rs.primary}
    primary = primaries.pop() if len(primaries) == 1 else None
    if not metrics:
        table.caption = "The runs measured no quality metric: every completed setting is listed."
        return table
    caption = ("Baselines and, per searched method, the setting with the best "
               f"{display_name(primary) if primary else 'primary metric'} (subscript) and the "
               "cheapest setting at least as good as the best baseline (subscript FLOPs)."
               + _samples_note(summaries, primary))
    if any(len(s.seeds) > 1 for s in summaries):
        caption += " Mean ± std over seeds."
    if has_gflops:
        caption += " ΔGFLOPs relative to the unguided baseline of the same run."
    table.caption = caption + " Best in bold."
    return table


def category_table(all_rs: list[RunSummaries], breakdown: registry.Breakdown) -> Table | None:
    """A benchmark's overall metric and its per-group columns: paper Table 4 (HPSv3 per
    category) or Table 5 (GenEval per tag)."""
    family, overall_key = breakdown.family.prefix, breakdown.overall.key
    columns: list[str] = []
    for rs in all_rs:
        for m in rs.run.metrics:
            if m.startswith(family) and m not in columns:
                columns.append(m)
    overall = any(overall_key in rs.run.metrics for rs in all_rs)
    if not columns and not overall:
        return None
    columns = ([overall_key] if overall else []) + columns
    multi = len(all_rs) > 1
    header = [Cell("Method")] + ([Cell("Run")] if multi else []) + [Cell("Sparsity γ_s / γ_w"), Cell("ω")]
    first_metric = len(header)
    for c in columns:
        header.append(Cell("Overall", arrow=arrow(c)) if c == overall_key else header_cell(c, with_arrow=False))
    table = Table(overall_key, breakdown.title, "", header)
    for rs in all_rs:
        for label, s in selected_rows(rs):
            omega = "–" if s.setting.omega is None else f"{s.setting.omega:g}"
            row = [label] + ([Cell(rs.run.name)] if multi else []) + [Cell(s.setting.sparsity()),
                                                                       Cell(omega, numeric=True)]
            table.rows.append(row + [value_cell(s, c) for c in columns])
    if not table.rows:
        return None
    _bold_best(table, [None] * first_metric + columns)
    direction = "Higher" if breakdown.overall.higher_is_better else "Lower"
    table.caption = (f"{breakdown.overall.display} overall and per {breakdown.group} for the "
                     f"rows of the guidance table. {direction} is better; best in bold.")
    return table


def settings_table(all_rs: list[RunSummaries]) -> Table | None:
    """Every setting of every run, sorted by method then the primary metric."""
    rows = []
    for rs in all_rs:
        primary = rs.primary
        def key(s):
            q = s.mean(primary) if primary else math.nan
            q = -q if primary and higher_is_better(primary) else q
            return (method_order(s.setting.method), s.setting.method,
                    math.inf if math.isnan(q) else q, s.setting.sort_key())

        rows += [(rs, s) for s in sorted(rs.summaries, key=key)]
    if not rows:
        return None
    multi = len(all_rs) > 1
    summaries = [s for _, s in rows]
    metrics = _overall_metrics(all_rs)
    schedules = any(s.setting.schedule for s in summaries)
    vary_n = len({s.setting.n_samples for s in summaries}) > 1
    header = ([Cell("Run")] if multi else []) + [Cell("Method"), Cell("Role"), Cell("γ_s"), Cell("γ_w"), Cell("ω")]
    header += ([Cell("Schedule")] if schedules else []) + ([Cell("N")] if vary_n else []) + [Cell("Seeds")]
    costs = [c for c in ("gflops", "images_per_s") if any(c in s.stats for s in summaries)]
    header += [header_cell(m) for m in metrics + costs]
    table = Table("settings", "All settings", "", header)

    def g(v):
        return "–" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))

    for rs, s in rows:
        st = s.setting
        row = ([Cell(rs.run.name)] if multi else []) + [
            Cell(st.method_name), Cell(s.role), Cell(g(st.gamma_strong), numeric=True),
            Cell(g(st.gamma_weak), numeric=True), Cell(g(st.omega), numeric=True)]
        row += ([Cell(st.schedule or "–")] if schedules else []) + (
            [Cell(g(st.n_samples), numeric=True)] if vary_n else []) + [Cell(str(len(s.seeds)), numeric=True)]
        table.rows.append(row + [value_cell(s, c) for c in metrics + costs])
    table.caption = "Every completed setting; mean ± std over seeds where several."
    return table


def build_tables(all_rs: list[RunSummaries]) -> list[Table]:
    tables = [summary_table(all_rs), *(category_table(all_rs, b) for b in registry.breakdowns()),
              settings_table(all_rs)]
    return [t for t in tables if t is not None]
