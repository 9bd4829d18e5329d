"""The suite file's typed form: one dataclass per section, each checks its own values.

Structure and types are checked by `sgbench.config.typed.from_dict`; the `check(path)` methods
add the rules between values (gamma_strong < gamma_weak, ranges, metric names), after
`Suite.completed` has filled in what one section decides for another (the extractor of a T2I
suite, the default objective). Every section is frozen (lists are tuples; the free-form mappings
model.options, model.text_encoder and report.options are read, never written): a changed suite is
derived and checked again (`sgbench.config.loader.LoadedSuite.derive`). Paths to user files are
plain strings here; `sgbench.config.loader` resolves them into `SuiteFiles`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Optional, Union

from sgbench.config import limits
from sgbench.config.files import check_plain_name
from sgbench.config.typed import fail
from sgbench.errors import FieldError
from sgbench.guidance.vocabulary import (DEFAULT_SEARCH, SEARCHABLE, GuidanceConfig, check_omega, method_spec, parse_gamma,
                                         parse_interval)
from sgbench.metrics import registry
from sgbench.metrics.benchmarks import BENCHMARKS, GenEvalOptions
from sgbench.secrets import register_url


def _checked(path: str, check, *args):
    """Run a vocabulary check; its FieldError becomes one line at the suite key `path`."""
    try:
        return check(*args)
    except FieldError as e:
        fail(path, e.message)




MAX_SWEEP = 256  # checkpoints in one sweep (a training run keeps tens, not thousands)


@dataclass(frozen=True)
class SweepEntry:
    """One checkpoint of a training run in a sweep: its file and, when the file does not record
    it, its training iteration. A bare path string stands for `{checkpoint: PATH}`."""

    checkpoint: str
    step: Optional[int] = None  # training iteration; what the file records wins (sgbench files record it)

    @staticmethod
    def coerce(data: Any) -> Any:
        return {"checkpoint": data} if isinstance(data, str) else data

    def check(self, path: str) -> None:
        if self.step is not None:
            limits.check_count(self.step, f"{path}.step", 0, limits.MAX_TRAIN_STEPS)


def _check_sweep(entries: tuple[SweepEntry, ...], path: str) -> None:
    limits.check_count(len(entries), f"{path} (count)", 1, MAX_SWEEP)
    seen: dict = {}
    for i, e in enumerate(entries):
        for what, value in (("checkpoint", e.checkpoint), ("step", e.step)):
            if value is None:
                continue
            if (what, value) in seen:
                fail(f"{path}[{i}].{what}", f"repeats {path}[{seen[what, value]}] ({value!r}); each checkpoint once")
            seen[what, value] = i


@dataclass(frozen=True)
class ModelConfig:
    # the main (strong) network: one `checkpoint`, or a `sweep` of checkpoints of one training
    # run (each (checkpoint, setting) is a trial; paper Fig. 5)
    checkpoint: Optional[str] = None
    sweep: tuple[SweepEntry, ...] = ()
    arch: Optional[str] = None  # preset ('SiT-XL/2') for checkpoints without sgbench metadata
    family: Optional[str] = None  # checkpoint layout when it cannot be inferred (dit, sit, tread, maskdit)
    routes: tuple[str, ...] = ()  # TREAD routes 'START-END'
    parametrization: Optional[str] = None  # velocity | rf | edm, when not in the checkpoint
    weak_checkpoint: Optional[str] = None  # autoguidance's earlier checkpoint
    weak_sweep: tuple[SweepEntry, ...] = ()  # several auxiliary checkpoints (paper Fig. 7 right)
    vae: Optional[str] = None  # local diffusers AutoencoderKL directory, for latent models
    use_ema: bool = True
    trust_checkpoint: bool = False  # allow pickled Python objects besides tensors, containers, argparse Namespaces
    options: dict[str, Any] = field(default_factory=dict)  # further ModelSpec fields (num_classes, config, ...)
    text_encoder: dict[str, Any] = field(default_factory=dict)  # T2I: overrides of the stored encoder spec (path)

    def check(self, path: str) -> None:
        if (self.checkpoint is None) == (not self.sweep):
            fail(path, "give exactly one of checkpoint (one main network) or sweep (checkpoints of one training run)")
        if self.weak_checkpoint is not None and self.weak_sweep:
            fail(path, "give at most one of weak_checkpoint or weak_sweep")
        if self.sweep:
            _check_sweep(self.sweep, f"{path}.sweep")
        if self.weak_sweep:
            _check_sweep(self.weak_sweep, f"{path}.weak_sweep")
        for key, high in (("num_classes", limits.MAX_CLASSES), ("input_size", limits.MAX_IMAGE_SIDE),
                          ("in_channels", 4096)):
            v = self.options.get(key)
            if isinstance(v, int) and not isinstance(v, bool):
                limits.check_count(v, f"{path}.options.{key}", 1, high)
        for i, r in enumerate(self.routes):
            a, _, b = r.partition("-")
            if not (a.isdigit() and b.isdigit() and int(a) <= int(b)):
                fail(f"{path}.routes[{i}]", f"expected 'START-END' with START <= END (e.g. '2-24'), got {r!r}")

    @property
    def has_weak(self) -> bool:
        return bool(self.weak_checkpoint or self.weak_sweep)

    @property
    def is_sweep(self) -> bool:
        return bool(self.sweep or self.weak_sweep)


@dataclass(frozen=True)
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
        limits.check_count(self.steps, f"{path}.steps", 1, limits.MAX_STEPS)
        limits.check_count(self.batch_size, f"{path}.batch_size", 1, limits.MAX_BATCH)
        limits.check_count(self.images_per_prompt, f"{path}.images_per_prompt", 1, 1000)
        if self.resolution is not None:
            limits.check_count(self.resolution, f"{path}.resolution", 1, limits.MAX_IMAGE_SIDE)


@dataclass(frozen=True)
class RangeConfig:
    low: float
    high: float
    step: Optional[float] = None  # grid spacing (needed for the grid sampler)
    log: bool = False

    def values(self) -> list[float]:
        n = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [round(self.low + i * self.step, 10) for i in range(n)]


SpaceValue = Union[tuple[float, ...], RangeConfig]


@dataclass(frozen=True)
class SpaceConfig:
    gamma_strong: SpaceValue = (0.0,)
    gamma_weak: SpaceValue = (0.5,)
    omega: SpaceValue = (1.5,)

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
                _checked(p, check_omega if name == "omega" else parse_gamma, x)
        if self.bounds("gamma_strong")[0] >= self.bounds("gamma_weak")[1]:
            fail(path, "no point of the space has gamma_strong < gamma_weak")

    def bounds(self, name: str) -> tuple[float, float]:
        v = getattr(self, name)
        return (v.low, v.high) if isinstance(v, RangeConfig) else (min(v), max(v))


@dataclass(frozen=True)
class PruningConfig:
    """Pruning by sample count. On a grid every pruner is rung-synchronous (each point is measured
    at a fidelity before the best fraction goes on: the same decisions however the run is split
    or interrupted); tpe/random use Optuna's pruner of that name, which decides as results arrive."""

    fidelities: tuple[int, ...]  # sample counts below metrics.n_samples, increasing: FD@1k before FD@5k
    pruner: Literal["median", "percentile", "halving", "none"] = "median"
    startup_trials: Optional[int] = None  # tpe/random: finished trials before anything is pruned (default 4)
    percentile: float = 50.0  # for pruner: percentile (keeps the best `percentile` %)
    reduction_factor: int = 3  # for pruner: halving (keeps the best 1/reduction_factor at each rung)

    def check(self, path: str) -> None:
        prev = 0
        if not self.fidelities:
            fail(f"{path}.fidelities", "must list at least one sample count")
        for i, n in enumerate(self.fidelities):
            if n <= prev:
                fail(f"{path}.fidelities[{i}]", f"must be > {prev} (increasing sample counts)")
            prev = n
        if self.startup_trials is not None and self.startup_trials < 0:
            fail(f"{path}.startup_trials", "must be >= 0")
        if not 0.0 < self.percentile < 100.0:
            fail(f"{path}.percentile", "must be in (0, 100)")
        if self.reduction_factor < 2:
            fail(f"{path}.reduction_factor", "must be >= 2")

    @property
    def keep_fraction(self) -> float:
        """The fraction of a rung's points that go on to the next fidelity (grid pruning)."""
        return {"median": 0.5, "percentile": self.percentile / 100.0, "halving": 1.0 / self.reduction_factor,
                "none": 1.0}[self.pruner]


@dataclass(frozen=True)
class SearchConfig:
    space: SpaceConfig = field(default_factory=SpaceConfig)
    method: str = DEFAULT_SEARCH  # a method with two rates: sgbench.guidance.vocabulary.SEARCHABLE
    sampler: Literal["grid", "tpe", "random", "multi-objective"] = "grid"
    objective: Optional[str] = None  # metric to optimise; default: the extractor's FD/FID
    objectives: Optional[tuple[str, ...]] = None  # multi-objective; default [objective, gflops]
    budget: Optional[int] = None  # number of trials; grid: the whole grid
    pruning: Optional[PruningConfig] = None
    storage: Optional[str] = None  # Optuna RDB URL; default sqlite:///<run_dir>/study.db
    study_name: Optional[str] = None  # default: the run name
    seed: int = 0  # sampler seed (TPE, random, NSGA-II)
    interval: Optional[tuple[float, ...]] = None  # guide only for t in [t_lo, t_hi]
    schedule: str = ""  # report label of the searched settings

    def check(self, path: str) -> None:
        if _checked(f"{path}.method", method_spec, self.method).name not in SEARCHABLE:
            fail(f"{path}.method", f"must be one of {', '.join(SEARCHABLE)} (a method with two sparsity rates), "
                                   f"got {self.method!r}")
        _checked(f"{path}.interval", parse_interval, self.interval)
        if self.budget is not None:
            limits.check_count(self.budget, f"{path}.budget", 1, limits.MAX_TRIALS)
        limits.check_count(self.seed, f"{path}.seed", 0, 2**31 - 1)
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
        if self.sampler == "grid" and self.pruning is not None and self.pruning.startup_trials is not None:
            fail(f"{path}.pruning.startup_trials", "applies to tpe/random only: a grid measures every point of a "
                 "fidelity before it prunes any (remove it)")
        if self.storage is not None:
            register_url(self.storage)  # every message and stored copy masks its password from here on
        if self.storage is not None and not self.storage.split(":", 1)[0].split("+")[0] in (
            "sqlite", "postgresql", "mysql", "oracle", "mssql"):
            fail(f"{path}.storage", f"expected an Optuna RDB URL (sqlite:///..., postgresql://..., mysql://...), got {self.storage!r}")
        if self.objectives is not None and len(self.objectives) < 2:
            fail(f"{path}.objectives", "multi-objective needs at least two metrics")


@dataclass(frozen=True)
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
        limits.check_count(self.n, f"{path}.n", 2, limits.MAX_SAMPLES)


@dataclass(frozen=True)
class LpipsConfig:
    """LPIPS between each guided sample and the conditional prediction from the same noise and
    label (the unguided sample, method none at gamma 0; paper Fig. 7 left): column `lpips_cond`."""

    # the backbone: torchvision's file (alexnet-owt-7be5be79.pth, vgg16-397923af.pth,
    # squeezenet1_1-b8a52dc0.pth) or a full lpips.LPIPS state dict (backbone and linear heads)
    weights: str
    net: Literal["alex", "vgg", "squeeze"] = "alex"
    n_samples: Optional[int] = None  # the first N samples of each trial and seed (default: all)

    def check(self, path: str) -> None:
        if self.n_samples is not None:
            limits.check_count(self.n_samples, f"{path}.n_samples", 2, limits.MAX_SAMPLES)


@dataclass(frozen=True)
class MetricsConfig:
    reference: Optional[ReferenceConfig] = None  # required for class-conditional suites
    # samples per trial and seed (the last fidelity); default 5000, T2I: every prompt x images_per_prompt
    n_samples: Optional[int] = None
    extractor: str = "inception"
    weights: Optional[str] = None  # feature extractor weights file
    batch_size: int = 250  # extractor batch
    keys: Optional[tuple[str, ...]] = None  # metric columns to record; default: all of the extractor's
    # bootstrap replicates behind each metric's standard error (`<metric>_se`); 0: none
    bootstrap: int = 200
    gflops: bool = True  # columns gflops (fvcore's count, as the paper's tables) and gflops_attn
    lpips: Optional[LpipsConfig] = None  # LPIPS to the conditional prediction (lpips_cond), paper Fig. 7 left
    throughput: Literal["sampling", "off"] = "sampling"

    @staticmethod
    def coerce(data: Any) -> Any:
        if isinstance(data, dict) and "attention_flops" in data:
            fail("suite.metrics.attention_flops", "removed: every trial records both GFLOPs counts, gflops "
                 "(fvcore's count without attention-score matmuls, as the paper's tables) and gflops_attn (with them)")
        return data

    def check(self, path: str) -> None:
        if self.n_samples is not None:
            limits.check_count(self.n_samples, f"{path}.n_samples", 2, limits.MAX_SAMPLES)
        limits.check_count(self.batch_size, f"{path}.batch_size", 1, limits.MAX_BATCH)
        if self.bootstrap < 0 or self.bootstrap == 1:
            fail(f"{path}.bootstrap", "must be 0 (no standard errors) or >= 2 replicates")

    def check_keys(self, path: str) -> None:
        known = registry.provider_metrics(self.extractor)
        for i, k in enumerate(self.keys or []):
            if k not in known:
                fail(f"{path}.keys[{i}]", f"{self.extractor!r} gives {', '.join(known)}, not {k!r}")

    @property
    def metric_keys(self) -> tuple[str, ...]:
        """The quality columns a trial records: the extractor's (or `keys`), then LPIPS_cond."""
        keys = tuple(self.keys) if self.keys else registry.provider_metrics(self.extractor)
        return keys + ((registry.LPIPS_COND.key,) if self.lpips is not None else ())


@dataclass(frozen=True)
class BenchmarkConfig:
    """T2I suites: the prompt set and its scorer (the class-conditional `metrics.reference`'s role)."""

    kind: str  # a benchmark of sgbench.metrics.benchmarks: geneval | hpsv3 | shapes_geneval
    metadata: Optional[str] = None  # geneval: evaluation_metadata.jsonl (shapes_geneval: optional)
    detector_config: Optional[str] = None  # geneval: Mask2Former config (mmdet 3.x)
    detector_checkpoint: Optional[str] = None
    clip_weights: Optional[str] = None  # geneval: OpenAI CLIP ViT-L/14 weights file
    clip_arch: str = "ViT-L-14-quickgelu"
    options: GenEvalOptions = field(default_factory=GenEvalOptions)  # geneval, shapes_geneval: GenEval's options
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
        for key in BENCHMARKS[self.kind].required:
            if not getattr(self, key):
                fail(f"{path}.{key}", f"required for kind {self.kind}")
        if self.kind == "hpsv3" and self.options.changed:
            fail(f"{path}.options", f"GenEval's options; kind hpsv3 is scored by the HPSv3 reward model, which takes "
                                    f"none (remove {', '.join(self.options.changed)})")
        limits.check_count(self.max_prompts, f"{path}.max_prompts", 0, limits.MAX_SAMPLES)
        limits.check_count(self.n_per_tag, f"{path}.n_per_tag", 1, limits.MAX_SAMPLES)
        limits.check_count(self.hps_batch_size, f"{path}.hps_batch_size", 1, limits.MAX_BATCH)

    @property
    def scorer(self) -> str:
        return BENCHMARKS[self.kind].scorer


@dataclass(frozen=True)
class ReportConfig:
    enabled: bool = True
    out: Optional[str] = None  # default results/<run>/report (the report lives with its run)
    sample_grid: int = 16  # images per trial saved as samples/<trial>.png (0: none)
    options: dict[str, Any] = field(default_factory=dict)  # passed to the report builder

    def check(self, path: str) -> None:
        limits.check_count(self.sample_grid, f"{path}.sample_grid", 0, 1024)


@dataclass(frozen=True)
class Suite:
    name: str
    model: ModelConfig
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    benchmark: Optional[BenchmarkConfig] = None  # text-to-image suites (GenEval, HPSv3)
    description: str = ""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = 0  # CPU threads for torch (0: torch's default); 1 is fastest on a busy 2-core machine
    workers: int = 1  # local processes sharing the run's study (`sgbench run --workers`), `threads` each
    seeds: tuple[int, ...] = (0,)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    # each entry a labelled guidance config (`name` = its trials.csv label), validated by GuidanceConfig
    methods: tuple[GuidanceConfig, ...] = ()
    search: Optional[SearchConfig] = None

    report: ReportConfig = field(default_factory=ReportConfig)

    def completed(self) -> "Suite":
        """The suite with what one section decides for another filled in (before `check`): a T2I
        suite's extractor is its benchmark's scorer; a class-conditional suite measures 5000
        samples unless told; the search optimises the first metric unless told (multi-objective:
        it and gflops). A T2I suite's n_samples is filled in once its prompts are read
        (`sgbench.run.t2i_stages`)."""
        metrics, search = self.metrics, self.search
        if self.benchmark is not None:
            metrics = replace(metrics, extractor=self.benchmark.scorer)
        elif metrics.n_samples is None and metrics.reference is not None:
            metrics = replace(metrics, n_samples=5000)
        if search is not None and search.objective is None:
            search = replace(search, objective=metrics.metric_keys[0])
        if search is not None and search.sampler == "multi-objective" and search.objectives is None:
            search = replace(search, objectives=(search.objective, registry.GFLOPS.key))
        return replace(self, metrics=metrics, search=search)

    def check(self, path: str) -> None:
        check_plain_name(self.name, f"{path}.name")
        if not self.seeds:
            fail(f"{path}.seeds", "must list at least one seed")
        limits.check_count(len(self.seeds), f"{path}.seeds (count)", 1, limits.MAX_SEEDS)
        limits.check_count(self.threads, f"{path}.threads", 0, limits.MAX_THREADS)
        limits.check_count(self.workers, f"{path}.workers", 1, limits.MAX_WORKERS)
        for i, seed in enumerate(self.seeds):
            limits.check_count(seed, f"{path}.seeds[{i}]", 0, 2**63 - 1)
        if len(set(self.seeds)) != len(self.seeds):
            fail(f"{path}.seeds", "seeds must be distinct")
        if self.benchmark is not None:  # T2I: the benchmark's scorer measures, not an image extractor
            if self.metrics.reference is not None:
                fail(f"{path}.metrics.reference", "a text-to-image suite is scored by its benchmark; remove reference")
            for m in (*self.methods, self.search):
                if m is not None and method_spec(m.method).needs_weak_network:
                    fail(f"{path}.benchmark", f"{m.method} is not supported for text-to-image suites yet")
            if self.model.sweep:
                fail(f"{path}.model.sweep", "checkpoint sweeps are not supported for text-to-image suites yet; "
                                            "run one suite per checkpoint and compare them with `sgbench check`")
            if self.metrics.lpips is not None:
                fail(f"{path}.metrics.lpips", "LPIPS to the conditional prediction is measured for class-conditional "
                                              "suites only")
        else:
            if self.metrics.reference is None:
                fail(f"{path}.metrics.reference", "required: the real images (path) or a built-in dataset")
            lp = self.metrics.lpips
            if lp is not None and lp.n_samples is not None and lp.n_samples > self.metrics.n_samples:
                fail(f"{path}.metrics.lpips.n_samples", f"must be <= metrics.n_samples ({self.metrics.n_samples})")
        self.metrics.check_keys(f"{path}.metrics")
        names = set()
        for i, m in enumerate(self.methods):
            if not m.name.strip():
                fail(f"{path}.methods[{i}].name", "required: the setting's label (trials.csv column `label`)")
            check_plain_name(m.name, f"{path}.methods[{i}].name")  # trial ids name files: b-<name>.png
            if m.name in names:
                fail(f"{path}.methods[{i}].name", f"duplicate method name {m.name!r}")
            names.add(m.name)
            if m.needs_weak_network and not self.model.has_weak:
                fail(f"{path}.methods[{i}].method", f"{m.method} needs model.weak_checkpoint (an earlier checkpoint) "
                                                    "or model.weak_sweep")
        if not self.methods and self.search is None:
            fail(path, "nothing to run: give methods, search, or both")
        if self.model.weak_sweep and not self.uses_weak_network:
            fail(f"{path}.model.weak_sweep", "no method or search uses a weak network (ag, ag+sg): the sweep would "
                                             "run nothing; remove it or add such a method")
        s = self.search
        if s is not None:
            if method_spec(s.method).needs_weak_network and not self.model.has_weak:
                fail(f"{path}.search.method", f"{s.method} needs model.weak_checkpoint (an earlier checkpoint) "
                                              "or model.weak_sweep")
            known = self.metrics.metric_keys + registry.cost_keys()
            if s.objective not in known:
                fail(f"{path}.search.objective", f"unknown metric {s.objective!r}; this suite measures {', '.join(known)}")
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
    def uses_weak_network(self) -> bool:
        """Some method or the search runs the weak network (ag, ag+sg)."""
        return any(m.needs_weak_network for m in self.methods) or (
            self.search is not None and method_spec(self.search.method).needs_weak_network)

    @property
    def objective_keys(self) -> list[str]:
        """The trials.csv keys of the search objective(s) (the first metric without a search)."""
        s = self.search
        return list(s.objectives or [s.objective]) if s else [self.metrics.metric_keys[0]]

    @property
    def directions(self) -> list[str]:
        """Optuna directions of the search objective(s)."""
        return ["maximize" if registry.higher_is_better(k) else "minimize" for k in self.objective_keys]
