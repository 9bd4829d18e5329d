"""The one place where `sgbench run` touches the other stages (models, guidance + sampling,
metrics, data). Everything the runner needs goes through the `Stages` protocol, so a change of
their APIs changes the implementations only: `ClassStages` (class-conditional suites) here and
`sgbench.run.t2i_stages.T2IStages` (text-to-image suites).
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from pathlib import Path
from typing import Callable, Iterator, Optional, Protocol

import numpy as np

from sgbench.config.loader import LoadedSuite
from sgbench.errors import UserError
from sgbench.guidance.vocabulary import GuidanceConfig


def pick_device(choice: str) -> str:
    import torch

    if choice == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    if choice == "cuda":
        raise UserError("suite.device is 'cuda' but no CUDA device is visible (set device: auto or cpu)")
    return "cpu"


def model_spec(loaded: LoadedSuite, checkpoint: Optional[Path] = None):
    """suite.model -> sgbench.models.ModelSpec of one of its checkpoints (default: the main one)."""
    from sgbench.models.loading import ModelSpec

    m = loaded.suite.model
    names = {f.name for f in dataclasses.fields(ModelSpec)}
    for k in m.options:
        if k not in names or k in ("checkpoint",):
            raise UserError(f"suite.model.options.{k}: not a model option (known: {', '.join(sorted(names - {'checkpoint'}))})")
    kwargs = dict(m.options)
    kwargs.update(
        checkpoint=str(checkpoint or loaded.files.checkpoint),
        arch=m.arch,
        family=m.family or "auto",
        parametrization=m.parametrization or "auto",
        routes=list(m.routes) or None,
        use_ema=m.use_ema,
        trust_checkpoint=m.trust_checkpoint,
    )
    return ModelSpec(**kwargs)


class Stages(Protocol):
    """What the runner needs from models, sampling and metrics. `run_suite` calls `validate()` and
    `load()` before the run directory exists (every input check a suite can fail happens there),
    sets `run_dir`, then streams and measures trials, and calls `close()` at the end."""

    run_dir: Optional[Path]  # set by run_suite once the run directory exists (per-trial files)
    cells: list  # set by run_suite before load(): the run's cells (sgbench.run.sweep), in run order
    progress: bool = False  # set by run_suite before load(): bars for the reference features (rank 0)

    def validate(self) -> Optional[LoadedSuite]:
        """Cheap input checks (prompt files, sample counts). Returns the suite completed by what the
        inputs decide (T2I: metrics.n_samples from the prompts), None where they decide nothing."""

    def use(self, cell) -> None:
        """Sample with this cell's networks from now on (a checkpoint sweep's trials switch them)."""

    def load(self) -> None:
        """Load models, decoder, metric extractor and reference; refuse inputs that do not fit."""

    def stream(self, setting: GuidanceConfig, seed: int, start: int, stop: int) -> Iterator[tuple]:
        """Batches (positions, uint8 NHWC images, labels or sample ids) of samples start..stop-1."""

    def accumulator(self, trial_id: Optional[str] = None, seed: Optional[int] = None):
        """A metric accumulator fed `update(images, labels)`."""

    def compute(self, acc) -> dict[str, float]:
        """The suite's metric columns from an accumulator."""

    def gflops(self, setting: GuidanceConfig) -> float:
        """GFLOPs per image of one guided evaluation, fvcore's count (NaN when not counted)."""

    def gflops_attn(self, setting: GuidanceConfig) -> float:
        """The same with attention-score matmuls (NaN when not counted)."""

    def captions(self, labels) -> list[str]:
        """A caption per sample of a report's sample grid (T2I: its prompt), given the labels or
        sample ids `stream` yielded; [] when the samples need none (class ids)."""
        return []

    def close(self) -> None:
        """Release workers and files."""


class ClassStages(Stages):
    """Models, decoder, feature extractor and reference statistics of one class-conditional suite,
    loaded once."""

    def __init__(self, loaded: LoadedSuite, device: str, log: Callable[[str], None] = print):
        self.run_dir: Optional[Path] = None
        self.cells: Optional[list] = None
        self.loaded = loaded
        self.suite = loaded.suite
        self.device = device
        self.log = log
        self.denoisers: dict = {}
        self._networks: dict = {}  # "main"/"weak" -> the suite key of the file loaded as that network
        self.cell = None  # the cell whose networks are loaded (use)
        self.conditional = None  # sgbench.run.conditional.ConditionalPredictions with metrics.lpips
        self._rules: dict = {}
        self._gflops: dict = {}
        self._flops_warned = False

    # ---- loading ------------------------------------------------------------------------
    def load(self) -> None:
        from sgbench.metrics.extractors import get_extractor

        s = self.suite
        if self.cells is None:  # used without run_suite (tests, scripts)
            from sgbench.run.sweep import resolve_cells

            self.cells = resolve_cells(self.loaded)
        self.use(self.cells[0])  # the other cells' files were checked by resolve_cells
        self.decoder = self._decoder()
        weights = self.loaded.files.metrics_weights
        self.extractor = get_extractor(s.metrics.extractor, weights_path=str(weights) if weights else None,
                                       device=self.device, batch_size=s.metrics.batch_size)
        self._check_reference_resolution()
        self.reference = self._reference()
        if s.metrics.lpips is not None:
            from sgbench.run.conditional import ConditionalPredictions

            self.conditional = ConditionalPredictions(self)

    def use(self, cell) -> None:
        """Load the cell's networks where they differ from those in memory (one network of each
        role at a time: a sweep of large models never holds them all)."""
        from sgbench.models.loading import load_denoiser

        if cell == self.cell:
            return
        for role, ref in (("main", cell.main), ("weak", cell.weak)):
            if ref is None:
                self.denoisers.pop(role, None)
                self._networks.pop(role, None)
            elif self._networks.get(role) != ref.key:
                self.denoisers.pop(role, None)  # freed before the next one is loaded
                self._networks.pop(role, None)
                if self.device.startswith("cuda"):
                    import torch

                    torch.cuda.empty_cache()
                self.denoisers[role] = load_denoiser(model_spec(self.loaded, ref.path), self.device)
                self._networks[role] = ref.key
        if cell.sweep and self.cell is not None:
            self.log(f"checkpoint sweep: now {cell.describe()}")
        self.cell = cell

    def sample_side(self) -> int:
        """Side in pixels of the images the samples decode to."""
        side = int(self.denoisers["main"].latent_shape[-1])
        vae = getattr(self.decoder, "vae", None)
        if vae is not None:  # SD-VAE: 8x (2 per down block after the first)
            side *= 2 ** (len(vae.config.block_out_channels) - 1)
        return side

    def _check_reference_resolution(self) -> None:
        """FID and FD against real images of another resolution are silently meaningless (the
        extractor resizes both): refuse the mismatch. Statistics-only files carry no resolution."""
        from sgbench.data.shapes import IMAGE_SIZE  # the built-in dataset (r.dataset == 'shapes')

        r = self.suite.metrics.reference
        side = IMAGE_SIZE if r.path is None else reference_side(self.loaded.files.reference)
        want = self.sample_side()
        if side is not None and side != want:
            raise UserError(f"suite.metrics.reference: its images are {side} px, the samples {want} px; "
                            "compare samples with real images of the same resolution")

    def validate(self) -> LoadedSuite:
        return self.loaded  # the model files are checked by load() (and a sweep's by sgbench.run.sweep.resolve_cells)

    def close(self) -> None:
        pass

    def _decoder(self):
        from sgbench.sampling.decode import PixelDecoder, VAEDecoder

        vae = self.loaded.files.vae
        if vae is not None:
            return VAEDecoder(vae, device=self.device, rounding=self.suite.sampler.rounding)
        return PixelDecoder(rounding=self.suite.sampler.rounding)

    def _reference(self):
        from sgbench.metrics.reference import ReferenceSet, load_reference
        from sgbench.metrics.registry import image_columns

        r = self.suite.metrics.reference
        pr = image_columns(self.suite.metrics.extractor).pr
        need_pr = any(k in pr for k in self.suite.metrics.metric_keys)
        if r.path is not None:
            return load_reference(self.loaded.files.reference, self.extractor,
                                  need_features=need_pr, batch_size=self.suite.metrics.batch_size, log=self.log,
                                  progress=self.progress)
        from sgbench.data.shapes import shapes_reference_images  # r.dataset == 'shapes' (the only one)
        from sgbench.progress import bar, counted

        images, _ = shapes_reference_images(r.n)
        bs = self.suite.metrics.batch_size
        batches = (images[i : i + bs] for i in range(0, len(images), bs))
        batches = counted(batches, bar(len(images), "reference features", enabled=self.progress))
        return ReferenceSet.from_batches(self.extractor, batches, source=f"shapes held-out n={r.n}")

    @property
    def num_classes(self) -> int:
        return self.denoisers["main"].num_classes

    # ---- guidance and sampling ----------------------------------------------------------
    def rule(self, setting: GuidanceConfig):
        """The setting's GuidanceRule, built and checked against the sampler once per setting."""
        if setting not in self._rules:
            from sgbench.guidance import build_rule
            from sgbench.sampling.solvers import check_rule

            rule = build_rule(setting)
            check_rule(rule, self.suite.sampler.steps, self.suite.sampler.solver)
            self._rules[setting] = rule
        return self._rules[setting]

    def stream(self, setting: GuidanceConfig, seed: int, start: int, stop: int) -> Iterator[tuple]:
        """Batches (indices, uint8 NHWC images, labels) of samples start..stop-1 of `seed`."""
        from sgbench.sampling import generate

        sp = self.suite.sampler
        return generate(self.denoisers, self.rule(setting), self.decoder, num_samples=stop, seed=seed,
                        batch_size=sp.batch_size, steps=sp.steps, solver=sp.solver, conditions=sp.labels,
                        device=self.device, indices=range(start, stop), autocast=sp.dtype)

    # ---- metrics ------------------------------------------------------------------------
    def accumulator(self, trial_id=None, seed=None):
        from sgbench.metrics.accumulator import ImageMetricAccumulator

        m = self.suite.metrics
        acc = ImageMetricAccumulator(self.extractor, keys=m.metric_keys, bootstrap=m.bootstrap, seed=seed or 0)
        # with metrics.lpips: the same images also go to LPIPS against their conditional predictions
        return acc if self.conditional is None else self.conditional.paired(acc, seed or 0)

    def compute(self, acc) -> dict[str, float]:
        return recorded_columns(acc.compute(self.reference), self.suite.metrics.metric_keys)

    def gflops(self, setting: GuidanceConfig) -> float:
        """GFLOPs of one guided velocity evaluation per image, averaged over the model evaluations
        (fvcore's count, the paper's convention); NaN where not counted."""
        report = self._flops(setting)
        return math.nan if report is None else report.gflops

    def gflops_attn(self, setting: GuidanceConfig) -> float:
        """The same count with the attention-score matmuls (trials.csv `gflops_attn`)."""
        report = self._flops(setting)
        return math.nan if report is None else report.gflops_attn

    def _flops(self, setting: GuidanceConfig):
        if not self.suite.metrics.gflops:
            return None
        key = (setting.method, setting.omega, setting.gamma_strong, setting.gamma_weak, setting.interval)
        if key not in self._gflops:
            self._gflops[key] = self._count_gflops(setting)
        return self._gflops[key]

    def _warn_flops(self, message: str) -> None:
        if not self._flops_warned:
            warnings.warn(message)
            self._flops_warned = True

    def _flops_inputs(self) -> dict:
        """Extra inputs of the FLOP count (T2I: the text length)."""
        return {}

    def _count_gflops(self, setting: GuidanceConfig):
        from sgbench.models.registry import family_of_config
        from sgbench.run.flops import guided_flops

        rule = self.rule(setting)
        configs = {n: getattr(self.denoisers[n].backbone, "config", None) for n in rule.networks}
        foreign = [type(c).__name__ for c in configs.values() if family_of_config(c) is None]
        if foreign:  # a backbone without a registered family (and so without a FLOP model)
            self._warn_flops(f"GFLOPs not counted for this backbone ({foreign[0]}): the FLOP models cover the "
                             "registered families (DiT/SiT, MaskDiT, T2I DiT)")
            return None
        sp = self.suite.sampler
        try:  # averaged over the evaluations, which may mix 1 and 2 passes (guidance intervals)
            return guided_flops(configs, rule, sp.steps, sp.solver, **self._flops_inputs())
        except UserError as e:  # e.g. a gamma > 0 for a DiT without routes
            self._warn_flops(f"GFLOPs not counted for this setting ({type(configs['main']).__name__}): {e}")
            return None


def reference_side(path) -> Optional[int]:
    """Image side of a reference input (an .npz's arr_0 or a folder's first image); None for a
    statistics-only file. Reads headers only."""
    from sgbench.metrics.image_io import folder_images, npz_keys, npz_member_info

    p = Path(path)
    if p.is_dir():
        from PIL import Image

        try:
            with Image.open(folder_images(p)[0]) as im:
                w, h = im.size
        except OSError as e:
            raise UserError(f"cannot read reference image in {p}: {e}") from None
    else:
        if "arr_0" not in npz_keys(p):
            return None
        shape = npz_member_info(p, "arr_0").shape
        if len(shape) != 4:
            raise UserError(f"{p}:arr_0 must be uint8 images [N, H, W, 3] (ADM layout), got shape {list(shape)}")
        h, w = int(shape[1]), int(shape[2])
    if h != w:
        raise UserError(f"reference {p}: images are {w}x{h}; sgbench compares square images")
    return h


def recorded_columns(values: dict, keys) -> dict[str, float]:
    """The suite's metric columns of `values`, then their standard errors (`<key>_se`)."""
    from sgbench.metrics.registry import se_column

    out = {k: float(values[k]) for k in keys if k in values}
    out.update({se_column(k): float(values[se_column(k)]) for k in keys if se_column(k) in values})
    return out
