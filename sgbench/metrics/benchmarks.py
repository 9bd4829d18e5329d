"""Text-to-image benchmarks: what each one is, and the metric columns its scorer records.

A T2I suite's `benchmark.kind` names one of `BENCHMARKS`. Its scorer (GenEval's detector rules
or the HPSv3 reward model, implemented in `sgbench.t2i`) fills the columns registered here:
- geneval: `geneval`, the mean over GenEval's 6 task tags (paper Table 5), and `geneval_<tag>`;
- hpsv3: `hpsv3`, the mean over HPDv3's 12 prompt categories (paper Table 4), and
  `hpsv3_<category>` (lower case, spaces -> '_').
Plain data (no torch, no numpy), so the suite schema checks T2I metric names without
importing `sgbench.t2i`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sgbench.errors import UserError
from sgbench.metrics.registry import register_family, register_metric, register_scorer

# GenEval's task tags (its evaluation_metadata.jsonl) with the paper's Table 5 names.
GENEVAL_TAGS = {
    "single_object": "Single object",
    "two_object": "Two object",
    "counting": "Counting",
    "colors": "Colors",
    "position": "Position",
    "color_attr": "Color attribution",
}
# HPDv3's benchmark prompt categories, in the paper's Table 4 order.
HPSV3_CATEGORIES = [
    "Characters", "Arts", "Design", "Architecture", "Animals", "Natural Scenery",
    "Transportation", "Products", "Others", "Plants", "Food", "Science",
]


def hpsv3_member(category: str) -> str:
    """'Natural Scenery' -> 'natural_scenery' (the column hpsv3_natural_scenery)."""
    return category.lower().replace(" ", "_")


HPSV3 = register_metric("hpsv3", "HPSv3", True, provider="hpsv3", headline=True)
HPSV3_CATEGORY = register_family("hpsv3_", "{}", True, provider="hpsv3", breakdown=True,
                                 members={hpsv3_member(c): c for c in HPSV3_CATEGORIES})
GENEVAL = register_metric("geneval", "GenEval", True, provider="geneval", headline=True)
GENEVAL_TAG = register_family("geneval_", "{}", True, provider="geneval", members=GENEVAL_TAGS, breakdown=True)
register_scorer(HPSV3.provider, HPSV3, HPSV3_CATEGORY, title="HPSv3 per category", group="category")
register_scorer(GENEVAL.provider, GENEVAL, GENEVAL_TAG, title="GenEval per tag", group="task tag")


@dataclass(frozen=True)
class Benchmark:
    kind: str
    scorer: str  # the provider of its metric columns (sgbench.metrics.registry)
    group_key: str  # the prompt field its per-group columns follow ('tag', 'category')
    description: str


BENCHMARKS = {b.kind: b for b in (
    Benchmark("geneval", GENEVAL.provider, "tag", "GenEval prompts, Mask2Former detector and CLIP colour classifier"),
    Benchmark("shapes_geneval", GENEVAL.provider, "tag", "GenEval's rules on the CPU shapes world (analytic detector)"),
    Benchmark("hpsv3", HPSV3.provider, "category", "HPDv3 benchmark prompts scored by the HPSv3 reward model"),
)}


def get_benchmark(kind: str) -> Benchmark:
    if kind not in BENCHMARKS:
        raise UserError(f"unknown benchmark {kind!r}; known: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[kind]
