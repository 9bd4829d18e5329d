"""The one place where `sgbench run` touches the other stages (models, guidance + sampling,
metrics, data). Everything the runner needs goes through `Stages`, so a change of their APIs
changes this file only.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from typing import Callable, Iterator

import numpy as np

from sgbench.config.loader import LoadedSuite
from sgbench.errors import UserError
from sgbench.run.setting import Setting


def pick_device(choice: str) -> str:
    import torch

    if choice == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    if choice == "cuda":
        raise UserError("suite.device is 'cuda' but no CUDA device is visible (set device: auto or cpu)")
    return "cpu"


def model_spec(loaded: LoadedSuite, key: str = "checkpoint"):
    """suite.model -> sgbench.models.ModelSpec (for the main or the weak checkpoint)."""
    from sgbench.models.loading import ModelSpec

    m = loaded.suite.model
    names = {f.name for f in dataclasses.fields(ModelSpec)}
    for k in m.options:
        if k not in names or k in ("checkpoint",):
            raise UserError(f"suite.model.options.{k}: not a model option (known: {', '.join(sorted(names - {'checkpoint'}))})")
    kwargs = dict(m.options)
    kwargs.update(
        checkpoint=str(loaded.paths[f"suite.model.{key}"]),
        arch=m.arch,
        family=m.family or "auto",
        parametrization=m.parametrization or "auto",
        routes=list(m.routes) or None,
        use_ema=m.use_ema,
        trust_checkpoint=m.trust_checkpoint,
    )
    return ModelSpec(**kwargs)


class Stages:
    """Models, decoder, feature extractor and reference statistics of one suite, loaded once."""

    def __init__(self, loaded: LoadedSuite, device: str, log: Callable[[str], None] = print):
        self.loaded = loaded
        self.suite = loaded.suite
        self.device = device
        self.log = log
        self.denoisers: dict = {}
        self._gflops: dict = {}
        self._flops_warned = False

    # ---- loading ------------------------------------------------------------------------
    def load(self) -> None:
        from sgbench.metrics.extractors import get_extractor
        from sgbench.models.loading import load_denoiser

        s = self.suite
        self.denoisers["main"] = load_denoiser(model_spec(self.loaded), self.device)
        if "suite.model.weak_checkpoint" in self.loaded.paths:
            self.denoisers["weak"] = load_denoiser(model_spec(self.loaded, "weak_checkpoint"), self.device)
        self.decoder = self._decoder()
        weights = self.loaded.paths.get("suite.metrics.weights")
        self.extractor = get_extractor(s.metrics.extractor, weights_path=str(weights) if weights else None,
                                       device=self.device, batch_size=s.metrics.batch_size)
        self.reference = self._reference()

    def _decoder(self):
        from sgbench.sampling.decode import PixelDecoder, VAEDecoder

        vae = self.loaded.paths.get("suite.model.vae")
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
            return load_reference(self.loaded.paths["suite.metrics.reference.path"], self.extractor,
                                  need_features=need_pr, batch_size=self.suite.metrics.batch_size, log=self.log)
        from sgbench.data.shapes import shapes_reference_images  # r.dataset == 'shapes' (the only one)

        images, _ = shapes_reference_images(r.n)
        bs = self.suite.metrics.batch_size
        batches = (images[i : i + bs] for i in range(0, len(images), bs))
        return ReferenceSet.from_batches(self.extractor, batches, source=f"shapes held-out n={r.n}")

    @property
    def num_classes(self) -> int:
        return self.denoisers["main"].num_classes

    # ---- guidance and sampling ----------------------------------------------------------
    def rule(self, setting: Setting):
        from sgbench.guidance import GuidanceConfig, build_rule

        cfg = GuidanceConfig(setting.method, omega=setting.omega, gamma_strong=setting.gamma_strong,
                             gamma_weak=setting.gamma_weak, interval=setting.interval)
        return build_rule(cfg)

    def stream(self, setting: Setting, seed: int, start: int, stop: int) -> Iterator[tuple]:
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
        return ImageMetricAccumulator(self.extractor, keys=m.metric_keys, bootstrap=m.bootstrap, seed=seed or 0)

    def compute(self, acc) -> dict[str, float]:
        return recorded_columns(acc.compute(self.reference), self.suite.metrics.metric_keys)

    def gflops(self, setting: Setting) -> float:
        """GFLOPs of one guided velocity evaluation per image, averaged over the model evaluations."""
        if not self.suite.metrics.gflops:
            return math.nan
        key = (setting.method, setting.omega, setting.gamma_strong, setting.gamma_weak, setting.interval)
        if key not in self._gflops:
            self._gflops[key] = self._count_gflops(setting)
        return self._gflops[key]

    def _warn_flops(self, message: str) -> float:
        if not self._flops_warned:
            warnings.warn(message)
            self._flops_warned = True
        return math.nan

    def _flops_inputs(self) -> dict:
        """Extra inputs of the FLOP count (T2I: the text length)."""
        return {}

    def _count_gflops(self, setting: Setting) -> float:
        from sgbench.metrics.flops import SUPPORTED_CONFIGS, gflops_per_image
        from sgbench.sampling.solvers import evaluation_schedule

        sp = self.suite.sampler
        evals = [tuple(g for _net, _cond, g in branches) for branches in
                 evaluation_schedule(self.rule(setting), sp.steps, sp.solver)]
        config = getattr(self.denoisers["main"].backbone, "config", None)
        if not isinstance(config, SUPPORTED_CONFIGS):  # DiT/SiT (+ TREAD routes), MaskDiT and T2I DiT are counted
            return self._warn_flops(f"GFLOPs not counted for this backbone ({type(config).__name__}): "
                                    "the FLOP counter supports DiT/SiT, MaskDiT and T2I DiT configs")
        try:
            # averaged over the evaluations, which may mix 1 and 2 passes (guidance intervals)
            return gflops_per_image(config, step_gammas=evals, attention=self.suite.metrics.attention_flops,
                                    **self._flops_inputs()).gflops
        except UserError as e:  # e.g. a gamma > 0 for a DiT without routes
            return self._warn_flops(f"GFLOPs not counted for this setting ({type(config).__name__}): {e}")


def recorded_columns(values: dict, keys) -> dict[str, float]:
    """The suite's metric columns of `values`, then their standard errors (`<key>_se`)."""
    from sgbench.metrics.registry import se_column

    out = {k: float(values[k]) for k in keys if k in values}
    out.update({se_column(k): float(values[se_column(k)]) for k in keys if se_column(k) in values})
    return out


def images_to_grid(images: np.ndarray, cols: int = 8) -> np.ndarray:
    """uint8 [N, H, W, C] -> one uint8 [rows*H, cols*W, C] image (for samples/<trial>.png)."""
    n, h, w, c = images.shape
    cols = min(cols, n)
    rows = -(-n // cols)
    grid = np.zeros((rows * h, cols * w, c), dtype=np.uint8)
    for i, img in enumerate(images):
        r, q = divmod(i, cols)
        grid[r * h : (r + 1) * h, q * w : (q + 1) * w] = img
    return grid
