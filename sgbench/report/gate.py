"""The regression gate behind `sgbench check`: compare two runs metric by metric at matching
settings, with a noise-aware tolerance.

Rule, per (setting, metric) present in both runs:
    worse = new - base        (lower is better: FID, sFID, FD_*, GFLOPs; the metric registry)
    worse = base - new        (higher is better: IS, Prec., Rec., Acc., HPSv3, GenEval, img/s)
    noise = k * se_diff
    regression  <=>  worse > tolerance  and  worse > noise
where se_diff is the standard error of the difference of `report.significance.difference`,
the rule the report's tables use too:
  - paired:   std(new_i - base_i, ddof=1) / sqrt(n)  when both runs have the same n >= 2 seeds
              (the same seeds draw the same noise, so seed-to-seed variation cancels);
  - unpaired: sqrt(se_new^2 + se_base^2), each the standard error of a run's mean over its seeds
              and of its `<metric>_se` bootstrap errors (`significance.seed_mean_se`), else 0
              (unknown: the tolerance decides).
tolerance is absolute (`fid=0.5`) or relative to |base| (`fid=2%`); unnamed metrics use the
default (1% unless `default=` or a bare value says otherwise).
A setting that completed in the base run but only failed in the new one is a regression too.
Throughput (images_per_s) depends on the machine; it is compared only when a tolerance names it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sgbench.errors import UserError
from sgbench.report.aggregate import Setting, Stat, Summary, setting_of, summarise
from sgbench.report.metrics import COST_COLUMNS, IMAGES_PER_S, display_name, higher_is_better, is_metric
from sgbench.report.runs import Run
from sgbench.report.significance import difference


@dataclass(frozen=True)
class Tolerance:
    value: float
    relative: bool = False  # value is a fraction of |baseline mean|

    def allowed(self, base: float) -> float:
        return self.value * abs(base) if self.relative else self.value

    def __str__(self) -> str:
        return f"{self.value * 100:g}%" if self.relative else f"{self.value:g}"


DEFAULT_TOLERANCE = Tolerance(0.01, relative=True)


def _parse_value(text: str, item: str) -> Tolerance:
    t = text.strip()
    relative = t.endswith("%")
    try:
        v = float(t[:-1] if relative else t)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or v < 0:
        raise UserError(f"bad --tolerance item {item!r}: expected NAME=VALUE or NAME=VALUE% with VALUE >= 0")
    return Tolerance(v / 100 if relative else v, relative)


def parse_tolerances(specs) -> dict[str, Tolerance]:
    """'fid=0.5,class_acc=0.01,default=2%' (or a bare '2%' for the default) -> {name: Tolerance}.
    Several specs may be given (repeated --tolerance); later ones win."""
    out: dict[str, Tolerance] = {"default": DEFAULT_TOLERANCE}
    for spec in [specs] if isinstance(specs, str) else (specs or []):
        for item in str(spec).split(","):
            item = item.strip()
            if not item:
                continue
            name, eq, value = item.partition("=")
            if not eq:
                name, value = "default", item
            name = name.strip().lower()
            if name != "default" and not (is_metric(name) or name in COST_COLUMNS):
                raise UserError(f"unknown metric {name!r} in --tolerance (e.g. fid=0.5,class_acc=0.01,default=1%)")
            out[name] = _parse_value(value, item)
    return out


@dataclass
class Comparison:
    setting: Setting
    metric: str
    base: Stat
    new: Stat
    worse_by: float  # > 0: the new run is worse
    allowed: float
    noise: float  # k * se of the difference (0 when unknown)
    paired: int  # number of paired seeds (0: unpaired)
    regressed: bool


@dataclass
class CheckResult:
    comparisons: list[Comparison] = field(default_factory=list)
    failed: list[Setting] = field(default_factory=list)  # complete in base, only failed in new
    only_base: list[Setting] = field(default_factory=list)
    only_new: list[Setting] = field(default_factory=list)
    not_measured: list[str] = field(default_factory=list)  # metrics in base, absent from new

    @property
    def regressions(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.regressed]

    @property
    def ok(self) -> bool:
        return not self.regressions and not self.failed


def difference_noise(new: Summary, base: Summary, metric: str) -> tuple[float, int]:
    """Standard error of (new - base) (0 when unknown) and the number of paired seeds (0: unpaired)."""
    d = difference(new.per_seed.get(metric, {}), base.per_seed.get(metric, {}),
                   new.stats[metric].se, base.stats[metric].se)
    return (0.0 if math.isnan(d.se) else d.se), d.paired


def compare_summaries(new: Summary, base: Summary, metric: str, tol: Tolerance, k: float) -> Comparison:
    nm, bm = new.stats[metric].mean, base.stats[metric].mean
    worse = (bm - nm) if higher_is_better(metric) else (nm - bm)
    se, paired = difference_noise(new, base, metric)
    allowed = tol.allowed(bm)
    noise = k * se
    # a tiny epsilon keeps float noise in identical runs from tripping a zero tolerance
    regressed = worse > allowed + 1e-12 and worse > noise
    return Comparison(new.setting, metric, base.stats[metric], new.stats[metric], worse, allowed,
                      noise, paired, regressed)


def compare_runs(new: Run, base: Run, tolerances: dict[str, Tolerance] | None = None,
                 k: float = 2.0) -> CheckResult:
    """Compare `new` against `base` (see module docstring). Raises UserError on bad input."""
    tolerances = tolerances or {"default": DEFAULT_TOLERANCE}
    if not k >= 0:
        raise UserError(f"--k must be >= 0 (got {k})")
    if new.trials.empty:
        raise UserError(f"new run {new.name} has no trials ({new.problem})")
    if base.complete.empty:
        raise UserError(f"baseline run {base.name} has no completed trials ({base.problem})")
    base_s = {s.setting: s for s in summarise(base.trials)}
    new_s = {s.setting: s for s in summarise(new.trials)}
    new_failed = {setting_of(row) for _, row in new.trials.iterrows() if row["status"] == "failed"}
    result = CheckResult()
    result.failed = [s for s in base_s if s not in new_s and s in new_failed]
    result.only_base = [s for s in base_s if s not in new_s and s not in new_failed]
    result.only_new = [s for s in new_s if s not in base_s]
    matched = [s for s in base_s if s in new_s]
    if not matched and not result.failed:
        raise UserError(f"no matching settings between {new.name} and {base.name} "
                        "(method, gamma_strong, gamma_weak, omega, schedule, n_samples)")
    extra = [m for m in tolerances if m != "default"]
    new_metrics = set(new.metrics) | {c for s in new_s.values() for c in s.stats}
    measured = new_metrics | set(base.metrics) | {c for s in base_s.values() for c in s.stats}
    unmeasured = [m for m in extra if m not in measured]
    if unmeasured:  # a tolerance that gates nothing is a typo or the wrong runs, not a pass
        raise UserError(f"--tolerance {', '.join(unmeasured)}: neither {new.name} nor {base.name} measures "
                        f"{'it' if len(unmeasured) == 1 else 'them'}; they have: {', '.join(sorted(measured))}")
    for setting in matched:
        b, n = base_s[setting], new_s[setting]
        for metric in b.stats:
            if metric == IMAGES_PER_S and metric not in extra:
                continue  # throughput depends on the machine: only on request
            if metric not in n.stats:
                if metric not in new_metrics and metric not in result.not_measured:
                    result.not_measured.append(metric)
                continue
            tol = tolerances.get(metric, tolerances["default"])
            result.comparisons.append(compare_summaries(n, b, metric, tol, k))
    return result


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def format_result(result: CheckResult, new: Run, base: Run, k: float, verbose: bool = False) -> list[str]:
    """Human-readable lines: regressions first, then notes and a one-line verdict."""
    lines = []
    settings = {c.setting for c in result.comparisons}
    metrics = {c.metric for c in result.comparisons}
    lines.append(f"check {new.name} against {base.name}: {len(settings)} matching settings, "
                 f"{len(metrics)} metrics, {len(result.comparisons)} comparisons "
                 f"(regression = worse by more than the tolerance and more than {k:g}·σ of the difference)")
    shown = result.comparisons if verbose else result.regressions
    for c in shown:
        tag = "REGRESSED" if c.regressed else ("worse    " if c.worse_by > 0 else "ok       ")
        noise = (f"{k:g}σ={_fmt(c.noise)} over {c.paired} paired seeds" if c.paired
                 else f"{k:g}σ={_fmt(c.noise)}" if c.noise > 0 else "no noise estimate")
        lines.append(f"{tag} {display_name(c.metric)} at {c.setting.describe()}: "
                     f"{_fmt(c.base.mean)} -> {_fmt(c.new.mean)} (worse by {_fmt(c.worse_by)}; "
                     f"tolerance {_fmt(c.allowed)}; {noise})")
    for s in result.failed:
        lines.append(f"FAILED    every trial at {s.describe()} failed in {new.name} (complete in {base.name})")
    if result.not_measured:
        lines.append(f"note: not measured in {new.name}: {', '.join(result.not_measured)}")
    if result.only_base:
        lines.append(f"note: {len(result.only_base)} setting(s) only in {base.name}, not compared"
                     + (f", e.g. {result.only_base[0].describe()}" if result.only_base else ""))
    if result.only_new:
        lines.append(f"note: {len(result.only_new)} setting(s) only in {new.name}, not compared")
    n_bad = len(result.regressions) + len(result.failed)
    lines.append(f"result: {n_bad} regression(s)" if n_bad else "result: OK, no regression beyond tolerance")
    return lines
