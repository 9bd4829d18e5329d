"""The metric registry: every trials.csv quality and cost column, declared once with its facts.

As lm-evaluation-harness's `register_metric(metric=..., higher_is_better=..., ...)`, each metric
is registered with
- `key`: its trials.csv column ('fid'), lower case;
- `display`: its table header ('FID'), `title`: its full name ('Inception Score', ADM's wording);
- `higher_is_better`: its direction (the only direction flag there is);
- `fmt`: decimals in reports, in the paper's style;
- `provider`: the feature extractor, benchmark scorer or stage whose output it is.
Parametrised families (`fd_<extractor>`, `hpsv3_<category>`, ...) are registered by prefix with
`register_family` by whoever provides them; `lookup(column)` resolves exact keys first, then the
longest matching prefix. A quality metric may carry a standard error in the column
`<key>_se` (`se_column`), which is never a metric itself.

This module declares the image metrics (computed by `sgbench.metrics.accumulator` from a
feature extractor's output) and the cost columns; the text-to-image benchmarks declare theirs in
`sgbench.metrics.benchmarks`, imported at the end. Torch-free: the suite schema, the
accumulators, the reports and `sgbench check` all read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Optional, Union

Format = Union[str, Callable[[Optional[float]], str]]  # a format spec, or value -> format spec

SE_SUFFIX = "_se"


@dataclass(frozen=True)
class Metric:
    key: str
    display: str
    higher_is_better: bool
    fmt: Format = ".2f"
    provider: str = ""
    title: str = ""
    cost: bool = False  # a cost column (GFLOPs, throughput), not a quality metric
    headline: bool = False  # a run's primary metric when present (heatmaps, 'best' rows)
    order: int = 0  # report order: registration order

    def format_spec(self, value: Optional[float] = None) -> str:
        return self.fmt(value) if callable(self.fmt) else self.fmt

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"


@dataclass(frozen=True)
class MetricFamily:
    """Columns `<prefix><member>`: one per extractor, category or tag of the provider.

    `members` maps the known members to their display text (None: any member, e.g. any
    extractor's name; the member then fills the `display` template as is)."""

    prefix: str
    display: str  # template, '{}' is the member's display text
    higher_is_better: bool
    fmt: Format = ".2f"
    provider: str = ""  # '' = the member names the provider (fd_<extractor>)
    members: Optional[Mapping[str, str]] = None
    headline: bool = False
    breakdown: bool = False  # per-category/per-tag columns of an overall metric (own report table)
    order: int = 0

    def key(self, member: str) -> str:
        return self.prefix + member

    def metric(self, column: str) -> Metric:
        member = column[len(self.prefix):]
        text = self.members.get(member) if self.members is not None else None
        if text is None:  # an unknown member (e.g. read from an older run): words from the name
            text = member if self.members is None else member.replace("_", " ").capitalize()
        return Metric(column, self.display.format(text), self.higher_is_better, self.fmt,
                      self.provider or member, headline=self.headline, order=self.order)


_METRICS: dict[str, Metric] = {}
_FAMILIES: dict[str, MetricFamily] = {}
_SCORERS: dict[str, tuple[str, ...]] = {}  # provider name -> its columns, in report order
_BREAKDOWNS: list["Breakdown"] = []


@dataclass(frozen=True)
class Breakdown:
    """An overall benchmark metric and its per-group columns (paper Tables 4 and 5)."""

    overall: Metric
    family: MetricFamily
    title: str  # 'HPSv3 per category'
    group: str  # what a member is: 'category', 'task tag'



def _next_order() -> int:
    return len(_METRICS) + len(_FAMILIES)


def register_metric(key: str, display: str, higher_is_better: bool, fmt: Format = ".2f", provider: str = "",
                    title: str = "", cost: bool = False, headline: bool = False) -> Metric:
    """Declare one column. Registering a key twice is a programming error."""
    if key in _METRICS or key != key.lower() or key.endswith(SE_SUFFIX):
        raise ValueError(f"metric key {key!r} is already registered, not lower case, or ends with {SE_SUFFIX}")
    m = Metric(key, display, bool(higher_is_better), fmt, provider, title or display, cost, headline, _next_order())
    _METRICS[key] = m
    return m


def register_family(prefix: str, display: str, higher_is_better: bool, fmt: Format = ".2f", provider: str = "",
                    members: Optional[Mapping[str, str]] = None, headline: bool = False,
                    breakdown: bool = False) -> MetricFamily:
    """Declare the columns `<prefix><member>` (prefix ends with '_')."""
    if prefix in _FAMILIES or not prefix.endswith("_"):
        raise ValueError(f"metric family {prefix!r} is already registered or does not end with '_'")
    fam = MetricFamily(prefix, display, bool(higher_is_better), fmt, provider,
                       dict(members) if members is not None else None, headline, breakdown, _next_order())
    _FAMILIES[prefix] = fam
    return fam


def register_scorer(name: str, overall: Metric, family: Optional[MetricFamily] = None, title: str = "",
                    group: str = "") -> None:
    """A benchmark scorer records `overall` and, per known member, its family's columns; with a
    `title`, reports give the breakdown a table of its own (paper Tables 4 and 5)."""
    if name in _SCORERS:
        raise ValueError(f"scorer {name!r} is already registered")
    members = family.members if family is not None and family.members is not None else {}
    _SCORERS[name] = (overall.key, *(family.key(m) for m in members))
    if family is not None and title:
        _BREAKDOWNS.append(Breakdown(overall, family, title, group))


# ---- lookups --------------------------------------------------------------------------------
def lookup(column: str) -> Optional[Metric]:
    """The metric or cost column `column` names, or None (settings, ids, `_se` companions)."""
    m = _METRICS.get(column)
    if m is not None:
        return m
    if column.endswith(SE_SUFFIX) and lookup(column[: -len(SE_SUFFIX)]) is not None:
        return None
    best = None
    for prefix, fam in _FAMILIES.items():
        if column.startswith(prefix) and len(column) > len(prefix) and (best is None or len(prefix) > len(best.prefix)):
            best = fam
    return best.metric(column) if best is not None else None


def get(column: str) -> Metric:
    m = lookup(column)
    if m is None:
        raise KeyError(f"not a metric column: {column}")
    return m


def is_quality(column: str) -> bool:
    """True for a quality metric column (not a cost, not a `_se` companion)."""
    m = lookup(column)
    return m is not None and not m.cost


def is_cost(column: str) -> bool:
    m = lookup(column)
    return m is not None and m.cost


def higher_is_better(column: str) -> bool:
    return get(column).higher_is_better


def se_column(key: str) -> str:
    """The standard-error companion of a quality metric: `<key>_se`."""
    return key + SE_SUFFIX


def is_se_column(column: str) -> bool:
    return column.endswith(SE_SUFFIX) and is_quality(column[: -len(SE_SUFFIX)])


def cost_keys() -> tuple[str, ...]:
    return tuple(k for k, m in _METRICS.items() if m.cost)


def metric_order(columns: Iterable[str]) -> list[str]:
    """The quality metric columns of `columns`, in registration order (stable within a family)."""
    metrics = [c for c in columns if is_quality(c)]
    return sorted(metrics, key=lambda c: (get(c).order, metrics.index(c)))


def headline_metric(columns: Iterable[str]) -> Optional[str]:
    """The primary metric of a run: the first headline metric present (FID, else an FD_*, else
    HPSv3/GenEval), else the first quality metric."""
    metrics = metric_order(columns)
    heads = [c for c in metrics if get(c).headline]
    return heads[0] if heads else (metrics[0] if metrics else None)


def breakdowns() -> list[Breakdown]:
    """Each benchmark's overall metric with its per-category/per-tag family."""
    return list(_BREAKDOWNS)


# ---- providers ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageColumns:
    """The columns an image feature extractor's statistics are recorded under (None: not
    provided). Inception gives ADM's metrics; any other extractor X gives fd_X, precision_X,
    recall_X and, with class logits and labels, class_acc."""

    fd: str
    sfd: Optional[str] = None  # Fréchet distance of the spatial features (sFID)
    inception_score: Optional[str] = None
    precision: Optional[str] = None
    recall: Optional[str] = None
    class_acc: Optional[str] = None

    def keys(self) -> tuple[str, ...]:
        """In report order (the first is the default search objective)."""
        cols = [self.fd, self.sfd, self.inception_score, self.precision, self.recall, self.class_acc]
        return tuple(sorted((c for c in cols if c), key=lambda c: get(c).order))

    @property
    def pr(self) -> tuple[str, ...]:
        return tuple(c for c in (self.precision, self.recall) if c)


def image_columns(extractor: str) -> ImageColumns:
    if extractor == INCEPTION:
        return ImageColumns(FID.key, SFID.key, IS.key, PRECISION.key, RECALL.key)
    if extractor == DINOV2:  # features only: no class logits, hence no class accuracy
        return ImageColumns(FD_DINOV2.key, precision=PRECISION_DINOV2.key, recall=RECALL_DINOV2.key)
    return ImageColumns(FD.key(extractor), precision=PRECISION_OF.key(extractor),
                        recall=RECALL_OF.key(extractor), class_acc=CLASS_ACC.key)


def provider_metrics(provider: str) -> tuple[str, ...]:
    """The quality columns a feature extractor or benchmark scorer records, in report order."""
    if provider in _SCORERS:
        return _SCORERS[provider]
    return image_columns(provider).keys()


def _gflops_format(value: Optional[float]) -> str:
    # small CPU models: 3 significant digits instead of rounding to 0.1
    return ".3g" if value is not None and abs(value) < 10 else ".1f"


# ---- the image metrics (ADM protocol) and the costs -------------------------------------------
INCEPTION = "inception"  # the extractor whose statistics are ADM's metrics
FID = register_metric("fid", "FID", False, provider=INCEPTION, headline=True)
SFID = register_metric("sfid", "sFID", False, provider=INCEPTION)
IS = register_metric("is", "IS", True, ".1f", provider=INCEPTION, title="Inception Score")
PRECISION = register_metric("precision", "Prec.", True, provider=INCEPTION, title="Precision")
RECALL = register_metric("recall", "Rec.", True, provider=INCEPTION, title="Recall")
# edm2's FD_DINOv2 (DINOv2 ViT-L/14 features) and k-NN precision/recall in that space (as dgm-eval)
DINOV2 = "dinov2"
FD_DINOV2 = register_metric("fd_dinov2", "FD_DINOv2", False, provider=DINOV2, headline=True,
                            title="Fréchet distance in DINOv2 features (FD_DINOv2)")
PRECISION_DINOV2 = register_metric("precision_dinov2", "Prec._DINOv2", True, provider=DINOV2, title="Precision (DINOv2)")
RECALL_DINOV2 = register_metric("recall_dinov2", "Rec._DINOv2", True, provider=DINOV2, title="Recall (DINOv2)")
FD = register_family("fd_", "FD_{}", False, headline=True)
PRECISION_OF = register_family("precision_", "Prec._{}", True)
RECALL_OF = register_family("recall_", "Rec._{}", True)
CLASS_ACC = register_metric("class_acc", "Acc.", True, ".3f", provider="classifier", title="Class accuracy")
# paper Fig. 7 left: mean LPIPS between a guided sample and the unguided (conditional) sample from
# the same noise and label; lower = the guidance moved the sample less (sgbench.metrics.perceptual)
LPIPS_COND = register_metric("lpips_cond", "LPIPS_cond", False, ".3f", provider="lpips",
                             title="LPIPS to the conditional prediction")
GFLOPS = register_metric("gflops", "GFLOPs", False, _gflops_format, provider="flops", cost=True)
GFLOPS_ATTN = register_metric("gflops_attn", "GFLOPs (attn.)", False, _gflops_format, provider="flops", cost=True)
IMAGES_PER_S = register_metric("images_per_s", "img/s", True, provider="throughput", cost=True)

# the benchmarks register their columns after the image metrics (report order)
from sgbench.metrics import benchmarks as _benchmarks  # noqa: E402,F401

__all__ = ["Metric", "MetricFamily", "Breakdown", "ImageColumns", "SE_SUFFIX", "register_metric", "register_family",
           "register_scorer", "lookup", "get", "is_quality", "is_cost", "higher_is_better", "se_column",
           "is_se_column", "cost_keys", "metric_order", "headline_metric", "breakdowns", "image_columns",
           "provider_metrics"]
