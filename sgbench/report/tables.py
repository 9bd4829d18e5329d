"""Paper-layout tables as plain data (`Table` of `Cell`s); `render.py` turns them into
Markdown, LaTeX and HTML.

- summary: paper Tables 1-3 — baselines plus, per searched method, its best setting by the
  primary metric (label METHOD_<metric>) and, where one exists, its cheapest setting at least
  as good as the best baseline (METHOD_FLOPs); FID, sFID, IS, Prec., Rec., ..., GFLOPs,
  ΔGFLOPs vs unguided, GFLOPs with attention, img/s.
- hpsv3 / geneval: paper Tables 4-5 (overall + per category/tag) for the same rows.
- settings: every complete and pruned setting of every run (appendix-style).
- failed: every failed trial with its first error line (Markdown and HTML only).

Every quality value is printed as mean ± its standard error (`Stat.se`: bootstrap over samples,
combined over seeds by `significance.seed_mean_se`). A value whose difference to the run's
reference row (the unguided setting, else its first baseline) is within noise —
|Δ| ≤ NOISE_K · SE of the difference (`significance.difference`: paired over shared seeds) — is
marked with a dagger; the caption says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sgbench.guidance.vocabulary import method_display_name, method_order
from sgbench.metrics import registry
from sgbench.report.aggregate import (FailedTrial, Summary, best, better, failed_trials, summarise,
                                      unguided_reference)
from sgbench.report.metrics import (GFLOPS, GFLOPS_ATTN, IMAGES_PER_S, arrow, display_name, higher_is_better, is_metric, metric_order,
                                     number_format, primary_metric)
from sgbench.report.runs import Run, train_sparsity
from sgbench.report.significance import difference

NOISE_K = 2.0  # a difference is beyond noise when |Δ| > NOISE_K · SE (about 95 %, two-sided)
WITHIN_NOISE = "†"  # mark of a value within noise of the reference row
COST_ORDER = (GFLOPS, GFLOPS_ATTN, IMAGES_PER_S)  # cost columns of the tables, in this order


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
    mark: str = ""  # WITHIN_NOISE, rendered as a superscript after the value


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
    """A run with its per-setting summaries (complete; pruned at their fidelity), failed trials,
    primary metric and reference row, computed once."""

    run: Run
    summaries: list[Summary]  # complete settings
    primary: str | None
    pruned: list[Summary] = field(default_factory=list)  # pruned settings (n_samples = fidelity)
    failed: list[FailedTrial] = field(default_factory=list)

    @classmethod
    def of(cls, run: Run) -> "RunSummaries":
        summaries = summarise(run.trials) if run.problem is None else []
        return cls(run, summaries, primary_metric(run.metrics) if summaries else None,
                   summarise(run.trials, "pruned"), failed_trials(run.trials, run.path))

    @property
    def reference(self) -> Summary | None:
        """The row differences are tested against: the unguided setting, else the first baseline."""
        ref = unguided_reference(self.summaries)
        if ref is not None:
            return ref
        baselines = sorted((s for s in self.summaries if s.role == "baseline"),
                           key=lambda s: (method_order(s.setting.method), s.setting.sort_key()))
        return baselines[0] if baselines else None


def header_cell(column: str, with_arrow: bool = True) -> Cell:
    name = display_name(column)
    text, _, sub = name.partition("_")
    return Cell(text, sub=sub, arrow=arrow(column) if with_arrow else "")


def se_text(se: float, fmt: str, zero: bool = True) -> str:
    """A standard error in the value's format ('<0.01' when below the last printed digit, '0.00'
    when zero); '' when unknown, or zero and not `zero` (costs: GFLOPs do not vary)."""
    if not (se == se) or se < 0 or math.isinf(se) or (se == 0 and not zero):
        return ""
    text = format(se, fmt)
    if float(text) != 0 or se == 0:
        return text
    unit = format(0, fmt)[:-1] + "1" if "." in format(0, fmt) else "1"
    return f"<{unit}"


def within_noise(summary: Summary, ref: Summary | None, column: str, k: float = NOISE_K) -> bool | None:
    """True when the quality value's difference to `ref` is within k standard errors, False
    when beyond, None when not tested: no reference, the row is the reference, another sample
    count (a pruned fidelity), a cost column, or unknown noise."""
    if (ref is None or summary is ref or not is_metric(column) or column not in summary.stats
            or column not in ref.stats or summary.setting.n_samples != ref.setting.n_samples):
        return None
    d = difference(summary.per_seed[column], ref.per_seed[column], summary.se(column), ref.se(column))
    sig = d.significant(k)
    return None if sig is None else not sig


class NoiseMarks:
    """Collects, while a table is built, which differences to the reference were tested, so
    the caption describes exactly what the marks mean."""

    def __init__(self):
        self.tested = self.marked = self.untested = 0

    def cell(self, summary: Summary, column: str, ref: Summary | None) -> Cell:
        c = value_cell(summary, column)
        if ref is None or summary is ref or not is_metric(column) or column not in summary.stats:
            return c
        w = within_noise(summary, ref, column)
        if w is None:
            self.untested += summary.setting.n_samples == ref.setting.n_samples
            return c
        self.tested += 1
        if w:
            self.marked += 1
            c.mark = WITHIN_NOISE
        return c

    def caption(self, ref_name: str) -> str:
        text = (" Values: mean ± standard error (bootstrap over samples; over several seeds the larger "
                "of the seed spread and the bootstrap).")
        rule = f"{NOISE_K:g} SE of the difference, paired over seeds when two or more ran"
        if self.marked:
            text += f" {WITHIN_NOISE}: within noise of {ref_name} (|Δ| ≤ {rule})."
        elif self.tested:
            text += f" Every tested difference to {ref_name} is beyond noise (|Δ| > {rule})."
        if self.untested:
            text += f" Differences without a standard error ({self.untested}) are not tested."
        return text


def value_cell(summary: Summary, column: str) -> Cell:
    """Mean ± standard error (no ± when the error is unknown or zero)."""
    stat = summary.stats.get(column)
    if not stat:
        return Cell("–", numeric=True)
    fmt = number_format(column, stat.mean)
    return Cell(format(stat.mean, fmt), pm=se_text(stat.se, fmt, zero=is_metric(column)), numeric=True)


def _delta_cell(summary: Summary, ref: Summary | None) -> Cell:
    if ref is None or GFLOPS not in summary.stats:
        return Cell("–", numeric=True)
    if summary is ref:
        return Cell("0 (baseline)", numeric=True)
    d = summary.mean(GFLOPS) - ref.mean(GFLOPS)
    return Cell(("+" if d >= 0 else "−") + format(abs(d), number_format(GFLOPS, ref.mean(GFLOPS))), numeric=True)


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
        ok = [s for s in group if GFLOPS in s.stats and primary in s.stats
              and not better(primary, target, s.mean(primary))]
        if ok:
            cheap = min(ok, key=lambda s: (s.mean(GFLOPS), s.setting.sort_key()))
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


def _ref_name(all_rs: list[RunSummaries]) -> str:
    """How captions name the reference row(s)."""
    refs = [rs.reference for rs in all_rs]
    names = {r.setting.method_name for r in refs if r is not None}
    if not names:
        return "the reference"
    name = names.pop() if len(names) == 1 else "the reference"
    return f"{name} of the same run" if len(all_rs) > 1 else name


def _costs(summaries: list[Summary]) -> list[str]:
    return [c for c in COST_ORDER if any(c in s.stats for s in summaries)]


def summary_table(all_rs: list[RunSummaries]) -> Table | None:
    """Paper Tables 1-3 layout (one block of rows per run when several runs are given)."""
    picked = [(rs, label, s) for rs in all_rs for label, s in selected_rows(rs)]
    if not picked:
        return None
    multi = len(all_rs) > 1
    summaries = [s for _, _, s in picked]
    context = _context_columns(all_rs, summaries, multi)
    metrics = _overall_metrics(all_rs)
    costs = _costs(summaries)
    header = [Cell("Method")] + [c for c, _ in context] + [header_cell(m) for m in metrics]
    keys: list[str | None] = [None] * (1 + len(context)) + list(metrics)
    for c in costs:
        header.append(header_cell(c))
        keys.append(c)
        if c == GFLOPS:
            header.append(Cell("ΔGFLOPs", arrow="↓"))
            keys.append(None)
    unguided = {id(rs): unguided_reference(rs.summaries) for rs in all_rs}
    marks = NoiseMarks()
    table = Table("summary", "Guidance methods", "", header)
    for rs, label, s in picked:
        ref = rs.reference
        row = [label] + [make(rs, s) for _, make in context] + [marks.cell(s, m, ref) for m in metrics]
        for c in costs:
            row.append(value_cell(s, c))
            if c == GFLOPS:
                row.append(_delta_cell(s, unguided[id(rs)]))
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
    caption += marks.caption(_ref_name(all_rs))
    if GFLOPS in costs:
        caption += " ΔGFLOPs relative to the unguided baseline of the same run."
    if GFLOPS_ATTN in costs:
        caption += " GFLOPs: fvcore's count (the paper's); GFLOPs (attn.): with the attention-score products."
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
    marks = NoiseMarks()
    for rs in all_rs:
        ref = rs.reference
        for label, s in selected_rows(rs):
            omega = "–" if s.setting.omega is None else f"{s.setting.omega:g}"
            row = [label] + ([Cell(rs.run.name)] if multi else []) + [Cell(s.setting.sparsity()),
                                                                       Cell(omega, numeric=True)]
            table.rows.append(row + [marks.cell(s, c, ref) for c in columns])
    if not table.rows:
        return None
    _bold_best(table, [None] * first_metric + columns)
    direction = "Higher" if breakdown.overall.higher_is_better else "Lower"
    table.caption = (f"{breakdown.overall.display} overall and per {breakdown.group} for the "
                     f"rows of the guidance table. {direction} is better; best in bold."
                     + marks.caption(_ref_name(all_rs)))
    return table


def plain_text(v) -> str:
    """A setting's value as the tables print it: '–' for none, floats by :g."""
    return "–" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))


def fidelity_text(n) -> str:
    """A sample count as the reports write fidelities: 200, 1k, 2.5k, 50k."""
    if not isinstance(n, int):
        return "?" if n is None else str(n)
    return f"{n / 1000:g}k" if n >= 1000 and n % 100 == 0 else str(n)


def settings_table(all_rs: list[RunSummaries]) -> Table | None:
    """Every complete and pruned setting of every run: by method, complete before pruned, then
    by the primary metric."""
    rows = []
    for rs in all_rs:
        primary = rs.primary
        def key(s):
            q = s.mean(primary) if primary else math.nan
            q = -q if primary and higher_is_better(primary) else q
            return (method_order(s.setting.method), s.setting.method, s.pruned,
                    math.inf if math.isnan(q) else q, s.setting.sort_key())

        rows += [(rs, s) for s in sorted(rs.summaries + rs.pruned, key=key)]
    if not rows:
        return None
    multi = len(all_rs) > 1
    summaries = [s for _, s in rows]
    metrics = _overall_metrics(all_rs)
    schedules = any(s.setting.schedule for s in summaries)
    vary_n = len({s.setting.n_samples for s in summaries}) > 1
    any_pruned = any(s.pruned for s in summaries)
    header = ([Cell("Run")] if multi else []) + [Cell("Method"), Cell("Role"), Cell("γ_s"), Cell("γ_w"), Cell("ω")]
    header += ([Cell("Schedule")] if schedules else []) + ([Cell("N")] if vary_n else []) + [Cell("Seeds")]
    header += [Cell("Status")] if any_pruned else []
    costs = _costs(summaries)
    header += [header_cell(m) for m in metrics + costs]
    table = Table("settings", "All settings", "", header)
    marks = NoiseMarks()

    for rs, s in rows:
        st = s.setting
        row = ([Cell(rs.run.name)] if multi else []) + [
            Cell(st.method_name), Cell(s.role), Cell(plain_text(st.gamma_strong), numeric=True),
            Cell(plain_text(st.gamma_weak), numeric=True), Cell(plain_text(st.omega), numeric=True)]
        row += ([Cell(st.schedule or "–")] if schedules else []) + (
            [Cell(plain_text(st.n_samples), numeric=True)] if vary_n else []) + [Cell(str(len(s.seeds)), numeric=True)]
        row += [Cell(f"pruned @{fidelity_text(st.n_samples)}" if s.pruned else "complete")] if any_pruned else []
        ref = None if s.pruned else rs.reference  # a lower fidelity is not comparable (FD is biased by N)
        table.rows.append(row + [marks.cell(s, c, ref) for c in metrics] + [value_cell(s, c) for c in costs])
    caption = "Every completed setting"
    if any_pruned:
        caption += (", then every pruned one at the fidelity it reached (Status, N): its values are "
                    "not comparable with complete rows (FID and FD grow as N shrinks)")
    table.caption = caption + "." + marks.caption(_ref_name(all_rs))
    return table


def failed_table(all_rs: list[RunSummaries]) -> Table | None:
    """Every failed trial with its first error line and where its traceback is kept."""
    items = [(rs, f) for rs in all_rs for f in rs.failed]
    if not items:
        return None
    multi = len(all_rs) > 1

    header = ([Cell("Run")] if multi else []) + [Cell("Trial"), Cell("Method"), Cell("γ_s"), Cell("γ_w"),
                                                 Cell("ω"), Cell("Error"), Cell("Traceback")]
    table = Table("failed", "Failed trials", "", header)
    for rs, f in items:
        st = f.setting
        table.rows.append(([Cell(rs.run.name)] if multi else []) + [
            Cell(f.trial_id), Cell(st.method_name), Cell(plain_text(st.gamma_strong)), Cell(plain_text(st.gamma_weak)),
            Cell(plain_text(st.omega)), Cell(f.error or "(no error line recorded)"), Cell(f.traceback or "–")])
    table.caption = ("Trials that failed, with the first line of their error; the traceback of every "
                     "attempt is in the run directory (Traceback); sgbench run SUITE --resume retries them.")
    return table


def build_tables(all_rs: list[RunSummaries]) -> list[Table]:
    tables = [summary_table(all_rs), *(category_table(all_rs, b) for b in registry.breakdowns()),
              settings_table(all_rs), failed_table(all_rs)]
    return [t for t in tables if t is not None]
