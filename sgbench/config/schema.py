"""The suite file's typed form: one dataclass per section, each checks its own values.

Structure and types are checked by `sgbench.config.typed.from_dict`; the `check(path)` methods
add the rules between values (gamma_strong < gamma_weak, ranges, metric names). Paths to user
files are plain strings here; `sgbench.config.files` resolves them and lists the missing ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

from sgbench.config.typed import fail
from sgbench.metrics import registry
from sgbench.metrics.benchmarks import BENCHMARKS

METHODS = ("none", "cfg", "sg", "cfg+sg", "ag", "ag+sg", "icg")
SPARSE_METHODS = ("sg", "cfg+sg", "ag+sg")  # two gammas, strong < weak
AG_METHODS = ("ag", "ag+sg")  # need model.weak_checkpoint
OMEGA_MAX = 20.0  # guidance scales above this are typos, not experiments
SCHEDULE_KINDS = ("linear", "cosine")

Gamma = Union[float, str]  # a rate in [0, 1) or a schedule 'cosine:START:END'


def parse_gamma(value: Gamma, path: str) -> tuple[str, float, float]:
    """('const', g, g) or (kind, start, end); every rate must lie in [0, 1)."""
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) != 3 or parts[0] not in SCHEDULE_KINDS:
            fail(path, f"expected a rate in [0, 1) or a schedule like 'cosine:0.6:0.0' ({'|'.join(SCHEDULE_KINDS)}), got {value!r}")
        try:
            start, end = float(parts[1]), float(parts[2])
        except ValueError:
            fail(path, f"schedule {value!r} has a start or end that is not a number")
        kind = parts[0]
    else:
        kind, start, end = "const", float(value), float(value)
    for v in (start, end):
        if not (0.0 <= v < 1.0) or math.isnan(v):
            fail(path, f"sparsity rate must be in [0, 1), got {v:g}")
    return kind, start, end


def _check_omega(value: float, path: str) -> None:
    if math.isnan(value) or value < 0:
        fail(path, "must be >= 0")
    if value > OMEGA_MAX:
        fail(path, f"must be <= {OMEGA_MAX:g} (guidance scale)")


def _check_interval(interval: Optional[list[float]], path: str) -> None:
    if interval is None:
        return
    if len(interval) != 2:
        fail(path, f"expected [t_lo, t_hi], got {len(interval)} values")
    lo, hi = interval
    if not (0.0 <= lo < hi <= 1.0):
        fail(path, f"must satisfy 0 <= t_lo < t_hi <= 1, got [{lo:g}, {hi:g}]")


@dataclass
class ModelConfig:
    checkpoint: str  # the main (strong) network
    arch: Optional[str] = None  # preset ('SiT-XL/2') for checkpoints without sgbench metadata
    family: Optional[str] = None  # checkpoint layout when it cannot be inferred (dit, sit, tread, maskdit)
    routes: list[str] = field(default_factory=list)  # TREAD routes 'START-END'
    parametrization: Optional[str] = None  # velocity | rf | edm, when not in the checkpoint
    weak_checkpoint: Optional[str] = None  # autoguidance's earlier checkpoint
    vae: Optional[str] = None  # local diffusers AutoencoderKL directory, for latent models
    use_ema: bool = True
    trust_checkpoint: bool = False  # allow pickled train files (argparse Namespace under 'args')
    options: dict[str, Any] = field(default_factory=dict)  # further ModelSpec fields (num_classes, config, ...)
    text_encoder: dict[str, Any] = field(default_factory=dict)  # T2I: overrides of the stored encoder spec (path)

    def check(self, path: str) -> None:
        for i, r in enumerate(self.routes):
            a, _, b = r.partition("-")
            if not (a.isdigit() and b.isdigit() and int(a) <= int(b)):
                fail(f"{path}.routes[{i}]", f"expected 'START-END' with START <= END (e.g. '2-24'), got {r!r}")


@dataclass
class SamplerConfig:
    solver: Literal["euler", "heun"] = "euler"
    steps: int = 40
    batch_size: int = 64
    dtype: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 on GPU, fp32 on CPU
    # class of sample i: uniform from (seed, i) as ADM/DiT/SiT draw them, or i % classes
    labels: Literal["random", "balanced"] = "random"
    rounding: Literal["round", "truncate"] = "round"  # pixels -> uint8 (DiT/SiT round; MaskDiT/tread truncate)
    images_per_prompt: int = 4  # T2I: images per benchmark prompt (GenEval and HPSv3 use 4)
    resolution: Optional[int] = None  # T2I: image side, checked against the model

    def check(self, path: str) -> None:
        if self.steps < 1:
            fail(f"{path}.steps", "must be >= 1")
        if self.batch_size < 1:
            fail(f"{path}.batch_size", "must be >= 1")
        if self.images_per_prompt < 1:
            fail(f"{path}.images_per_prompt", "must be >= 1")


@dataclass
class MethodConfig:
    """One fixed guidance setting (a baseline row, or a named SG operating point)."""

    name: str
    method: Literal["none", "cfg", "sg", "cfg+sg", "ag", "ag+sg", "icg"]
    omega: float = 1.0
    gamma_strong: Gamma = 0.0  # for 'none': the single branch's sparsity; cfg/ag/icg: both branches'
    gamma_weak: Optional[Gamma] = None  # sg, cfg+sg, ag+sg only (required there)
    interval: Optional[list[float]] = None  # guide only for t in [t_lo, t_hi]
    schedule: str = ""  # label for reports, e.g. 'cosine'; derived from the gammas when empty

    def check(self, path: str) -> None:
        if not self.name.strip():
            fail(f"{path}.name", "must not be empty")
        _check_omega(self.omega, f"{path}.omega")
        gs = parse_gamma(self.gamma_strong, f"{path}.gamma_strong")
        if self.method not in SPARSE_METHODS:
            if self.gamma_weak is not None:
                fail(f"{path}.gamma_weak", f"applies only to {', '.join(SPARSE_METHODS)}; {self.method} runs at gamma_strong")
            gw = gs
        elif self.gamma_weak is None:
            fail(f"{path}.gamma_weak", f"required for {self.method} (the weak branch's sparsity, > gamma_strong)")
        else:
            gw = parse_gamma(self.gamma_weak, f"{path}.gamma_weak")
        if self.method in SPARSE_METHODS and gs[0] == gw[0] == "const" and gs[1] >= gw[1]:
            fail(path, f"gamma_strong ({gs[1]:g}) must be < gamma_weak ({gw[1]:g}) for {self.method}")
        _check_interval(self.interval, f"{path}.interval")
        if not self.schedule:
            kinds = sorted({k for k, _, _ in (gs, gw) if k != "const"})
            self.schedule = "+".join(kinds)


@dataclass
class RangeConfig:
    low: float
    high: float
    step: Optional[float] = None  # grid spacing (needed for the grid sampler)
    log: bool = False

    def values(self) -> list[float]:
        n = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [round(self.low + i * self.step, 10) for i in range(n)]


SpaceValue = Union[list[float], RangeConfig]


@dataclass
class SpaceConfig:
    gamma_strong: SpaceValue = field(default_factory=lambda: [0.0])
    gamma_weak: SpaceValue = field(default_factory=lambda: [0.5])
    omega: SpaceValue = field(default_factory=lambda: [1.5])

    def check(self, path: str) -> None:
        for name in ("gamma_strong", "gamma_weak", "omega"):
            v = getattr(self, name)
            sub = f"{path}.{name}"
            if isinstance(v, RangeConfig):
                if not v.low < v.high:
                    fail(sub, f"low ({v.low:g}) must be < high ({v.high:g})")
                if v.step is not None and v.step <= 0:
                    fail(f"{sub}.step", "must be > 0")
                if v.log and v.low <= 0:
                    fail(f"{sub}.low", "must be > 0 with log: true")
                ends = [(f"{sub}.low", v.low), (f"{sub}.high", v.high)]
            else:
                if not v:
                    fail(sub, "must list at least one value")
                ends = [(f"{sub}[{i}]", x) for i, x in enumerate(v)]
            for p, x in ends:
                if name == "omega":
                    _check_omega(x, p)
                elif not 0.0 <= x < 1.0:
                    fail(p, f"sparsity rate must be in [0, 1), got {x:g}")
        if self.bounds("gamma_strong")[0] >= self.bounds("gamma_weak")[1]:
            fail(path, "no point of the space has gamma_strong < gamma_weak")

    def bounds(self, name: str) -> tuple[float, float]:
        v = getattr(self, name)
        return (v.low, v.high) if isinstance(v, RangeConfig) else (min(v), max(v))


@dataclass
class PruningConfig:
    fidelities: list[int]  # sample counts below metrics.n_samples, increasing: FD@1k before FD@5k
    pruner: Literal["median", "percentile", "halving", "none"] = "median"
    startup_trials: int = 4  # finished trials before anything is pruned
    percentile: float = 50.0  # for pruner: percentile

    def check(self, path: str) -> None:
        prev = 0
        for i, n in enumerate(self.fidelities):
            if n <= prev:
                fail(f"{path}.fidelities[{i}]", f"must be > {prev} (increasing sample counts)")
            prev = n
        if self.startup_trials < 0:
            fail(f"{path}.startup_trials", "must be >= 0")
        if not 0.0 < self.percentile < 100.0:
            fail(f"{path}.percentile", "must be in (0, 100)")


@dataclass
class SearchConfig:
    space: SpaceConfig = field(default_factory=SpaceConfig)
    method: Literal["sg", "cfg+sg", "ag+sg"] = "sg"
    sampler: Literal["grid", "tpe", "random", "multi-objective"] = "grid"
    objective: Optional[str] = None  # metric to optimise; default: the extractor's FD/FID
    objectives: Optional[list[str]] = None  # multi-objective; default [objective, gflops]
    budget: Optional[int] = None  # number of trials; grid: the whole grid
    pruning: Optional[PruningConfig] = None
    storage: Optional[str] = None  # Optuna RDB URL; default sqlite:///<run_dir>/study.db
    study_name: Optional[str] = None  # default: the run name
    seed: int = 0  # sampler seed (TPE, random, NSGA-II)
    interval: Optional[list[float]] = None
    schedule: str = ""

    def check(self, path: str) -> None:
        if self.budget is not None and self.budget < 1:
            fail(f"{path}.budget", "must be >= 1")
        if self.sampler != "grid" and self.budget is None:
            fail(f"{path}.budget", f"required for sampler {self.sampler!r} (number of trials)")
        if self.sampler == "grid":
            for name in ("gamma_strong", "gamma_weak", "omega"):
                v = getattr(self.space, name)
                if isinstance(v, RangeConfig) and v.step is None:
                    fail(f"{path}.space.{name}.step", "required for sampler 'grid' (or give a list of values)")
        else:
            kinds = {isinstance(getattr(self.space, n), RangeConfig) for n in ("gamma_strong", "gamma_weak")}
            if len(kinds) == 2:
                fail(f"{path}.space", "give gamma_strong and gamma_weak both as lists or both as ranges")
        if self.sampler == "multi-objective" and self.pruning is not None:
            fail(f"{path}.pruning", "Optuna cannot prune multi-objective studies; remove pruning or use tpe/grid")
        if self.storage is not None and not self.storage.split(":", 1)[0].split("+")[0] in (
            "sqlite", "postgresql", "mysql", "oracle", "mssql"):
            fail(f"{path}.storage", f"expected an Optuna RDB URL (sqlite:///..., postgresql://..., mysql://...), got {self.storage!r}")
        if self.objectives is not None and len(self.objectives) < 2:
            fail(f"{path}.objectives", "multi-objective needs at least two metrics")
        _check_interval(self.interval, f"{path}.interval")


@dataclass
class ReferenceConfig:
    """Real images (or their statistics) the samples are compared with."""

    path: Optional[str] = None  # ADM .npz batch, cached stats .npz, or image folder
    dataset: Optional[Literal["shapes"]] = None  # built-in generated dataset
    n: int = 10000  # images drawn from `dataset`

    @staticmethod
    def coerce(data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data

    def check(self, path: str) -> None:
        if (self.path is None) == (self.dataset is None):
            fail(path, "give exactly one of path or dataset")
        if self.n < 2:
            fail(f"{path}.n", "must be >= 2")


@dataclass
class MetricsConfig:
    reference: Optional[ReferenceConfig] = None  # required for class-conditional suites
    # samples per trial and seed (the last fidelity); default 5000, T2I: every prompt x images_per_prompt
    n_samples: Optional[int] = None
    extractor: str = "inception"
    weights: Optional[str] = None  # feature extractor weights file
    batch_size: int = 250  # extractor batch
    keys: Optional[list[str]] = None  # metric columns to record; default: all of the extractor's
    # bootstrap replicates behind each metric's standard error (`<metric>_se`); 0: none
    bootstrap: int = 200
    gflops: bool = True
    attention_flops: bool = True  # count attention-score matmuls, as the published DiT/SiT GFLOPs do
    throughput: Literal["sampling", "off"] = "sampling"

    def check(self, path: str) -> None:
        if self.n_samples is not None and self.n_samples < 2:
            fail(f"{path}.n_samples", "must be >= 2")
        if self.batch_size < 1:
            fail(f"{path}.batch_size", "must be >= 1")
        if self.bootstrap < 0 or self.bootstrap == 1:
            fail(f"{path}.bootstrap", "must be 0 (no standard errors) or >= 2 replicates")

    def check_keys(self, path: str) -> None:
        known = registry.provider_metrics(self.extractor)
        for i, k in enumerate(self.keys or []):
            if k not in known:
                fail(f"{path}.keys[{i}]", f"{self.extractor!r} gives {', '.join(known)}, not {k!r}")

    @property
    def metric_keys(self) -> tuple[str, ...]:
        return tuple(self.keys) if self.keys else registry.provider_metrics(self.extractor)


@dataclass
class BenchmarkConfig:
    """T2I suites: the prompt set and its scorer (the class-conditional `metrics.reference`'s role)."""

    kind: str  # a benchmark of sgbench.metrics.benchmarks: geneval | hpsv3 | shapes_geneval
    metadata: Optional[str] = None  # geneval: evaluation_metadata.jsonl (shapes_geneval: optional)
    detector_config: Optional[str] = None  # geneval: Mask2Former config (mmdet 3.x)
    detector_checkpoint: Optional[str] = None
    clip_weights: Optional[str] = None  # geneval: OpenAI CLIP ViT-L/14 weights file
    clip_arch: str = "ViT-L-14-quickgelu"
    options: dict[str, Any] = field(default_factory=dict)  # GenEval options (threshold, nms, ...)
    prompts: Optional[str] = None  # hpsv3: HPDv3 benchmark/ folder or .jsonl
    max_prompts: int = 0  # 0 = all
    hps_python: Optional[str] = None  # hpsv3: the python of an environment with `pip install hpsv3`
    hps_base_model: Optional[str] = None  # Qwen2-VL-7B-Instruct directory
    hps_checkpoint: Optional[str] = None  # HPSv3.safetensors
    hps_config: Optional[str] = None  # HPSv3 YAML (default: the package's)
    hps_batch_size: int = 4
    n_per_tag: int = 20  # shapes_geneval without metadata: prompts per tag
    prompt_seed: int = 43
    save_images: bool = True  # keep every image under results/<run>/images/<trial>/seed<k>/

    def check(self, path: str) -> None:
        if self.kind not in BENCHMARKS:
            fail(f"{path}.kind", f"unknown benchmark {self.kind!r}; known: {', '.join(BENCHMARKS)}")
        if self.kind == "geneval":
            for key in ("metadata", "detector_config", "detector_checkpoint", "clip_weights"):
                if not getattr(self, key):
                    fail(f"{path}.{key}", "required for kind geneval")
        if self.kind == "hpsv3":
            for key in ("prompts", "hps_python", "hps_base_model", "hps_checkpoint"):
                if not getattr(self, key):
                    fail(f"{path}.{key}", "required for kind hpsv3")
        if self.max_prompts < 0 or self.n_per_tag < 1 or self.hps_batch_size < 1:
            fail(path, "max_prompts must be >= 0, n_per_tag and hps_batch_size >= 1")

    @property
    def scorer(self) -> str:
        return BENCHMARKS[self.kind].scorer


@dataclass
class ReportConfig:
    enabled: bool = True
    out: Optional[str] = None  # default reports/<run name>
    sample_grid: int = 16  # images per trial saved as samples/<trial>.png (0: none)
    options: dict[str, Any] = field(default_factory=dict)  # passed to the report builder

    def check(self, path: str) -> None:
        if self.sample_grid < 0:
            fail(f"{path}.sample_grid", "must be >= 0")


@dataclass
class Suite:
    name: str
    model: ModelConfig
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    benchmark: Optional[BenchmarkConfig] = None  # text-to-image suites (GenEval, HPSv3)
    description: str = ""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = 0  # CPU threads for torch (0: torch's default); 1 is fastest on a busy 2-core machine
    seeds: list[int] = field(default_factory=lambda: [0])
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    methods: list[MethodConfig] = field(default_factory=list)
    search: Optional[SearchConfig] = None

    report: ReportConfig = field(default_factory=ReportConfig)

    def check(self, path: str) -> None:
        if not self.name or any(c in self.name for c in "/\\") or self.name.startswith("."):
            fail(f"{path}.name", f"must be a plain directory name, got {self.name!r}")
        if not self.seeds:
            fail(f"{path}.seeds", "must list at least one seed")
        if self.threads < 0:
            fail(f"{path}.threads", "must be >= 0 (0: torch's default)")
        if len(set(self.seeds)) != len(self.seeds):
            fail(f"{path}.seeds", "seeds must be distinct")
        if self.benchmark is not None:  # T2I: the benchmark's scorer measures, not an image extractor
            if self.metrics.reference is not None:
                fail(f"{path}.metrics.reference", "a text-to-image suite is scored by its benchmark; remove reference")
            self.metrics.extractor = self.benchmark.scorer
            for m in (*self.methods, self.search):
                if m is not None and m.method in AG_METHODS:
                    fail(f"{path}.benchmark", f"{m.method} is not supported for text-to-image suites yet")
        else:
            if self.metrics.reference is None:
                fail(f"{path}.metrics.reference", "required: the real images (path) or a built-in dataset")
            if self.metrics.n_samples is None:
                self.metrics.n_samples = 5000
        self.metrics.check_keys(f"{path}.metrics")
        names = set()
        for i, m in enumerate(self.methods):
            if m.name in names:
                fail(f"{path}.methods[{i}].name", f"duplicate method name {m.name!r}")
            names.add(m.name)
            if m.method in AG_METHODS and not self.model.weak_checkpoint:
                fail(f"{path}.methods[{i}].method", f"{m.method} needs model.weak_checkpoint (an earlier checkpoint)")
        if not self.methods and self.search is None:
            fail(path, "nothing to run: give methods, search, or both")
        s = self.search
        if s is not None:
            if s.method in AG_METHODS and not self.model.weak_checkpoint:
                fail(f"{path}.search.method", f"{s.method} needs model.weak_checkpoint (an earlier checkpoint)")
            known = self.metrics.metric_keys + registry.cost_keys()
            if s.objective is None:
                s.objective = self.metrics.metric_keys[0]
            elif s.objective not in known:
                fail(f"{path}.search.objective", f"unknown metric {s.objective!r}; this suite measures {', '.join(known)}")
            if s.sampler == "multi-objective" and s.objectives is None:
                s.objectives = [s.objective, "gflops"]
            for i, k in enumerate(s.objectives or []):
                if k not in known:
                    fail(f"{path}.search.objectives[{i}]", f"unknown metric {k!r}; this suite measures {', '.join(known)}")
            if s.objectives is not None and s.sampler != "multi-objective":
                fail(f"{path}.search.objectives", "only for sampler 'multi-objective' (use objective)")
            if s.pruning is not None and self.metrics.n_samples is not None:  # T2I: checked once prompts load
                for i, n in enumerate(s.pruning.fidelities):
                    if n >= self.metrics.n_samples:
                        fail(f"{path}.search.pruning.fidelities[{i}]",
                             f"must be < metrics.n_samples ({self.metrics.n_samples}); the last fidelity is n_samples itself")

    @property
    def directions(self) -> list[str]:
        """Optuna directions of the search objective(s)."""
        s = self.search
        keys = (s.objectives or [s.objective]) if s else [self.metrics.metric_keys[0]]
        return ["maximize" if registry.higher_is_better(k) else "minimize" for k in keys]
