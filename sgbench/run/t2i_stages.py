"""`Stages` of a text-to-image suite (one with `benchmark:`): the T2I DiT and its text encoder,
the benchmark's prompts, and its scorer as the metric accumulator. It implements the
`sgbench.run.stages.Stages` protocol, so the Runner (baselines, search, pruning, trials.csv,
report) is shared by both kinds of suite.

Stream position i -> sample id `order[i]` (prompts round-robin over GenEval tags / HPDv3
categories, `BenchmarkPrompts.sample_order`); the noise of a sample depends on (seed, sample id)
only, so an image is the same whatever fidelity, batch size or worker produced it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from sgbench.config.loader import LoadedSuite
from sgbench.errors import UserError
from sgbench.guidance.vocabulary import GuidanceConfig
from sgbench.run.rundir import log_to_stderr
from sgbench.run.stages import ClassStages, recorded_columns


class T2IStages(ClassStages):
    def __init__(self, loaded: LoadedSuite, device: str, log: Callable[[str], None] = log_to_stderr):
        super().__init__(loaded, device, log)
        self.run_dir: Optional[Path] = None  # set by run_suite; images go to run_dir/images/
        self.benchmark = self.suite.benchmark
        self.prompts = None
        self._client = None
        self._text_len = None

    # ---- loading ------------------------------------------------------------------------
    def validate(self) -> None:
        """Read the prompts and check the sample counts (cheap; before the run directory exists)."""
        from sgbench.t2i.scoring import BenchmarkPrompts

        items, group = self._items()
        if self.benchmark.max_prompts:
            items = items[: self.benchmark.max_prompts]
        self.prompts = BenchmarkPrompts(items, self.suite.sampler.images_per_prompt, group)
        self.order = self.prompts.sample_order()
        self._check_sample_count()
        from sgbench.models.loading import read_sgbench_metadata

        meta = read_sgbench_metadata(self.loaded.paths["suite.model.checkpoint"]) or {}
        side, want = int(meta.get("image_size", 0) or 0), self.suite.sampler.resolution
        if side and want and want != side:
            raise UserError(f"suite.sampler.resolution {want} does not match the model ({side} px)")

    def load(self) -> None:
        from sgbench.models.loading import load_denoiser
        from sgbench.run.stages import model_spec

        b, s = self.benchmark, self.suite
        if self.prompts is None:
            self.validate()
        items = self.prompts.items
        spec = model_spec(self.loaded)
        spec.text_encoder = dict(s.model.text_encoder)
        if "suite.model.text_encoder.path" in self.loaded.paths:  # resolved like every suite path
            spec.text_encoder["path"] = str(self.loaded.paths["suite.model.text_encoder.path"])
        denoiser = load_denoiser(spec, self.device)  # the T2I family builds its text encoder
        if any(m.needs_random_condition for m in s.methods):  # ICG's random conditions
            denoiser.use_prompt_pool(self.prompts.prompts)
        self.denoisers["main"], self.encoder = denoiser, denoiser.text_encoder
        self.decoder = self._decoder()
        self._load_scorer()
        self.log(f"{b.kind}: {len(items)} prompts x {s.sampler.images_per_prompt} images, "
                 f"{s.metrics.n_samples} samples per trial and seed")

    def use(self, cell) -> None:
        pass  # one model, loaded by load(): the suite schema refuses checkpoint sweeps for T2I suites

    def _items(self) -> tuple[list[dict], str]:
        b, paths = self.benchmark, self.loaded.paths
        if b.kind == "hpsv3":
            from sgbench.t2i.hpsv3_client import load_benchmark_prompts

            return load_benchmark_prompts(paths["suite.benchmark.prompts"]), "category"
        from sgbench.t2i.geneval import COCO_OBJECT_NAMES, read_metadata_jsonl

        if b.kind == "geneval":
            return read_metadata_jsonl(paths["suite.benchmark.metadata"], COCO_OBJECT_NAMES), "tag"
        from sgbench.t2i.shapes_world import SHAPES, evaluation_metadata

        meta = paths.get("suite.benchmark.metadata")
        return (read_metadata_jsonl(meta, SHAPES) if meta else evaluation_metadata(b.n_per_tag, b.prompt_seed)), "tag"

    def _check_sample_count(self) -> None:
        m, total = self.suite.metrics, self.prompts.total
        if m.n_samples is None:
            m.n_samples = total
        elif m.n_samples > total:
            raise UserError(f"suite.metrics.n_samples ({m.n_samples}) exceeds the benchmark's "
                            f"{len(self.prompts.items)} prompts x {self.prompts.images_per_prompt} images = {total}")
        p = self.suite.search.pruning if self.suite.search else None
        for i, n in enumerate(p.fidelities if p else []):
            if n >= m.n_samples:
                raise UserError(f"suite.search.pruning.fidelities[{i}]: must be < the samples per trial "
                                f"({m.n_samples}); the last fidelity is every sample")

    def _load_scorer(self) -> None:
        b, paths = self.benchmark, self.loaded.paths
        if b.kind == "hpsv3":
            from sgbench.t2i.hpsv3_client import HPSv3WorkerConfig

            cfg = paths.get("suite.benchmark.hps_config")
            self.worker = HPSv3WorkerConfig(
                python=str(paths["suite.benchmark.hps_python"]), base_model=str(paths["suite.benchmark.hps_base_model"]),
                checkpoint=str(paths["suite.benchmark.hps_checkpoint"]), config=str(cfg) if cfg else None,
                device=self.device.split(":")[0], batch_size=b.hps_batch_size)
            self.worker.check()
            return
        from sgbench.t2i.geneval import GenEvalOptions

        self.options = GenEvalOptions.parse(f"{k}={v}" for k, v in b.options.items())
        if b.kind == "geneval":
            from sgbench.t2i.geneval_backends import MMDetDetector, load_clip_color_classifier

            self.detector = MMDetDetector(paths["suite.benchmark.detector_config"],
                                          paths["suite.benchmark.detector_checkpoint"], self.device)
            self.colors = load_clip_color_classifier(paths["suite.benchmark.clip_weights"], b.clip_arch,
                                                     self.device, self.options)
        else:
            from sgbench.t2i.shapes_world import ShapesColorClassifier, ShapesDetector

            self.detector, self.colors = ShapesDetector(), ShapesColorClassifier()

    def hps_client(self):
        """The HPSv3 worker, started on first use and kept for the whole run."""
        if self._client is None:
            from sgbench.t2i.hpsv3_client import HPSv3Client

            self._client = HPSv3Client(self.worker)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def num_classes(self) -> int:
        return 0

    # ---- sampling -----------------------------------------------------------------------
    def stream(self, setting: GuidanceConfig, seed: int, start: int, stop: int) -> Iterator[tuple]:
        """Batches (positions, uint8 NHWC images, sample ids) of stream positions start..stop-1.

        Sample id s renders prompt s // k (`Prompts` condition source of sgbench.sampling)."""
        from sgbench.sampling import Prompts, generate

        sp = self.suite.sampler
        source = Prompts(self.prompts.prompts, self.encoder, self.prompts.images_per_prompt)
        ids = [int(i) for i in self.order[start:stop]]
        pos = {sid: start + n for n, sid in enumerate(ids)}
        for idx, images, _prompt in generate(self.denoisers, self.rule(setting), self.decoder, source.num_samples,
                                             seed, sp.batch_size, sp.steps, sp.solver, conditions=source,
                                             device=self.device, indices=ids, autocast=sp.dtype):
            yield np.array([pos[int(i)] for i in idx]), images, np.asarray(idx)

    def captions(self, labels) -> list[str]:
        """Each sample's prompt (sample id s renders prompt s // images_per_prompt)."""
        prompts = self.prompts.prompts
        return [prompts[self.prompts.locate(int(s))[0]] for s in labels]

    # ---- metrics ------------------------------------------------------------------------
    def accumulator(self, trial_id: Optional[str] = None, seed: Optional[int] = None):
        from sgbench.t2i.scoring import GenEvalAccumulator, HPSv3Accumulator

        image_dir = None
        if self.run_dir is not None and trial_id is not None and (self.benchmark.save_images or
                                                                  self.benchmark.kind == "hpsv3"):
            image_dir = self.run_dir / "images" / trial_id / f"seed{seed}"
        if self.benchmark.kind == "hpsv3":
            if image_dir is None:
                raise UserError("HPSv3 scoring needs a run directory for its images")
            return HPSv3Accumulator(self.prompts, self.hps_client, image_dir, self.suite.metrics.bootstrap, seed or 0)
        return GenEvalAccumulator(self.prompts, self.detector, self.colors, self.options, image_dir,
                                  self.suite.metrics.bootstrap, seed or 0)

    def compute(self, acc) -> dict[str, float]:
        return recorded_columns(acc.compute(), self.suite.metrics.metric_keys)

    def text_len(self) -> int:
        """Mean text tokens per prompt (the cross-attention's keys), for the FLOP count."""
        if self._text_len is None:
            prompts = self.prompts.prompts
            n = sum(int(self.encoder.encode(prompts[i : i + 64]).mask.sum()) for i in range(0, len(prompts), 64))
            self._text_len = max(1, round(n / len(prompts)))
        return self._text_len

    def _flops_inputs(self) -> dict:
        return {"text_len": self.text_len()}

