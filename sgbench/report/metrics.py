"""Which trials.csv columns are metrics, which way is better, and how to show them.

Pure lookups on column names; the one place that knows the metric naming contract of
docs/design.md ("run directory").
"""

from __future__ import annotations

# Columns of trials.csv that describe a trial rather than measure it.
SETTING_COLUMNS = ("method", "gamma_strong", "gamma_weak", "omega", "schedule", "n_samples")
ID_COLUMNS = ("trial_id", "role", "seed", "status")
COST_COLUMNS = ("gflops", "images_per_s")

# Exact names, then prefixes (the part after the prefix names an extractor/category/tag).
_EXACT = {
    "fid": ("FID", False),
    "sfid": ("sFID", False),
    "is": ("IS", True),
    "precision": ("Prec.", True),
    "recall": ("Rec.", True),
    "class_acc": ("Acc.", True),
    "hpsv3": ("HPSv3", True),
    "geneval": ("GenEval", True),
    "gflops": ("GFLOPs", False),
    "images_per_s": ("img/s", True),
}
_PREFIXES = (  # prefix, display template, higher_is_better
    ("fd_", "FD_{}", False),
    ("precision_", "Prec._{}", True),
    ("recall_", "Rec._{}", True),
    ("hpsv3_", "{}", True),
    ("geneval_", "{}", True),
)
# Optional companion columns `<metric>_se` carry a standard error (e.g. from a bootstrap);
# they are noise estimates, never metrics themselves.
SE_SUFFIX = "_se"

# Row order of the paper's tables: Inception metrics first, then other extractors, then T2I.
_ORDER = ("fid", "sfid", "is", "precision", "recall", "fd_", "precision_", "recall_",
          "class_acc", "hpsv3", "hpsv3_", "geneval", "geneval_")

def is_metric(column: str) -> bool:
    """True for a quality metric column (not cost, not a `_se` companion)."""
    if column in COST_COLUMNS or column.endswith(SE_SUFFIX):
        return False
    if column in _EXACT:
        return True
    return any(column.startswith(p) and len(column) > len(p) for p, _, _ in _PREFIXES)


def higher_is_better(column: str) -> bool:
    """Direction of a metric or cost column (gflops: lower; images_per_s: higher)."""
    if column in _EXACT:
        return _EXACT[column][1]
    for prefix, _, higher in _PREFIXES:
        if column.startswith(prefix):
            return higher
    raise KeyError(f"not a metric column: {column}")


def display_name(column: str) -> str:
    """FID, sFID, IS, Prec., Rec., FD_<extractor>, Acc., GFLOPs; T2I categories as words."""
    if column in _EXACT:
        return _EXACT[column][0]
    for prefix, template, _ in _PREFIXES:
        if column.startswith(prefix):
            rest = column[len(prefix):]
            if prefix == "hpsv3_":  # paper Table 4: "Natural Scenery"
                rest = " ".join(w.capitalize() for w in rest.split("_"))
            elif prefix == "geneval_":  # paper Table 5: "Color attribution"
                rest = rest.replace("_", " ").capitalize()
            return template.format(rest)
    return column


def arrow(column: str) -> str:
    return "↑" if higher_is_better(column) else "↓"


def metric_order(columns) -> list[str]:
    """Metric columns of `columns`, in the paper's order (stable within a family)."""
    def rank(c: str) -> int:
        for i, key in enumerate(_ORDER):
            if c.startswith(key) if key.endswith("_") else c == key:
                return i
        return len(_ORDER)

    metrics = [c for c in columns if is_metric(c)]
    return sorted(metrics, key=lambda c: (rank(c), metrics.index(c)))


def primary_metric(columns) -> str | None:
    """The metric heatmaps and 'best' rows use: fid, else the first fd_*, else hpsv3/geneval,
    else the first metric present."""
    metrics = metric_order(columns)
    if "fid" in metrics:
        return "fid"
    fds = [c for c in metrics if c.startswith("fd_")]
    if fds:
        return fds[0]
    for choice in ("hpsv3", "geneval"):
        if choice in metrics:
            return choice
    return metrics[0] if metrics else None


def number_format(column: str, value: float | None = None) -> str:
    """Decimal places in the paper's style (FID 2.07, IS 249.0, Prec. 0.80, GFLOPs 118.6);
    GFLOPs below 10 (small CPU models) keep 3 significant digits instead of rounding to 0.1."""
    if column == "is":
        return ".1f"
    if column == "gflops":
        return ".3g" if value is not None and abs(value) < 10 else ".1f"
    if column == "class_acc":
        return ".3f"
    return ".2f"
