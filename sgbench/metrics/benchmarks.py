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

from dataclasses import MISSING, dataclass, fields
from typing import Iterable

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
    files: tuple[str, ...] = ()  # the `benchmark.<key>` user files it reads
    required: tuple[str, ...] = ()  # of those, the ones a suite must name


_GENEVAL_FILES = ("metadata", "detector_config", "detector_checkpoint", "clip_weights")
_HPSV3_FILES = ("prompts", "hps_python", "hps_base_model", "hps_checkpoint")
BENCHMARKS = {b.kind: b for b in (
    Benchmark("geneval", GENEVAL.provider, "tag", "GenEval prompts, Mask2Former detector and CLIP colour classifier",
              _GENEVAL_FILES, _GENEVAL_FILES),
    Benchmark("shapes_geneval", GENEVAL.provider, "tag", "GenEval's rules on the CPU shapes world (analytic detector)",
              ("metadata",)),
    Benchmark("hpsv3", HPSV3.provider, "category", "HPDv3 benchmark prompts scored by the HPSv3 reward model",
              _HPSV3_FILES + ("hps_config",), _HPSV3_FILES),
)}


@dataclass(frozen=True)
class GenEvalOptions:
    """GenEval's `--options` (same names and defaults): a suite's `benchmark.options` (geneval,
    shapes_geneval), parsed once by the suite schema; `sgbench t2i geneval --options k=v`."""

    threshold: float = 0.3
    counting_threshold: float = 0.9
    max_objects: int = 16
    max_overlap: float = 1.0  # NMS IoU threshold; 1.0 = no NMS (GenEval's default)
    position_threshold: float = 0.1
    bgcolor: str = "#999"  # background of the masked crops for CLIP ('original' keeps the image)
    crop: bool = True

    # a suite snapshot lists the options that differ from GenEval's defaults (as older snapshots,
    # which kept the suite's mapping as written, so their runs still resume)
    SNAPSHOT_OMITS_DEFAULTS = True

    def check(self, path: str) -> None:
        for key in ("threshold", "counting_threshold", "max_overlap"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise UserError(f"{path}.{key}: must be in [0, 1], got {getattr(self, key):g}")
        if self.max_objects < 1:
            raise UserError(f"{path}.max_objects: must be >= 1, got {self.max_objects}")
        if self.position_threshold < 0:
            raise UserError(f"{path}.position_threshold: must be >= 0, got {self.position_threshold:g}")

    @property
    def changed(self) -> dict:
        """The options that differ from GenEval's defaults."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.default is MISSING or getattr(self, f.name) != f.default}

    @classmethod
    def parse(cls, pairs: Iterable[str]) -> "GenEvalOptions":
        """From 'key=value' strings (GenEval's --options on the command line)."""
        kinds = {f.name: f.type for f in fields(cls)}
        values = {}
        for pair in pairs:
            key, sep, value = str(pair).partition("=")
            if not sep or key not in kinds:
                raise UserError(f"bad GenEval option {pair!r}; known: {', '.join(kinds)} (as key=value)")
            kind = kinds[key]
            try:
                if kind in ("bool", bool):
                    values[key] = value in ("1", "true", "True")
                elif kind in ("int", int):
                    values[key] = int(value)
                elif kind in ("float", float):
                    values[key] = float(value)
                else:
                    values[key] = value
            except ValueError:
                raise UserError(f"bad value for GenEval option {key}: {value!r}") from None
        return cls(**values)


def get_benchmark(kind: str) -> Benchmark:
    if kind not in BENCHMARKS:
        raise UserError(f"unknown benchmark {kind!r}; known: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[kind]
