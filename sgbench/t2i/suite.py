"""T2I suites: generate images with each guidance method, score them with GenEval or HPSv3,
and tabulate like paper Tables 4-5. `sgbench t2i run SUITE.yaml` executes one.

The file shares the top-level shape of the class-conditional suites (name, description,
device, seeds, model, sampler, methods, report) and adds `benchmark:`:

    benchmark:
      kind: geneval | hpsv3 | shapes_geneval
      metadata: evaluation_metadata.jsonl         # geneval (+ shapes_geneval, optional)
      detector_config / detector_checkpoint / clip_weights / options   # geneval
      prompts: HPDv3 benchmark/ folder or .jsonl  # hpsv3
      hps_python / hps_base_model / hps_checkpoint / hps_config / hps_batch_size   # hpsv3
      n_per_tag / prompt_seed                     # shapes_geneval without metadata

Outputs under results/<name>/: <method>/seed<k>/ (GenEval folder layout or images +
manifest.jsonl, plus results.jsonl / scores.jsonl), trials.csv (one row per method and seed)
and table.md in the layout of Table 5 (GenEval) or Table 4 (HPSv3).
"""

from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np

from sgbench.config.typed import empty_section
from sgbench.errors import UserError


@dataclass
class T2IModelSection:
    checkpoint: str
    text_encoder: dict = field(default_factory=dict)  # overrides of the stored encoder spec (e.g. path)
    vae: Optional[str] = None  # diffusers AutoencoderKL directory for latent models


@dataclass
class T2ISamplerSection:
    solver: Literal["euler", "heun"] = "euler"
    steps: int = 50
    batch_size: int = 8
    dtype: Literal["auto", "fp32", "bf16"] = "auto"
    images_per_prompt: int = 4
    resolution: int = 512  # image side; checked against the model

    coerce = staticmethod(empty_section)

    def check(self, path):
        if self.steps < 1 or self.batch_size < 1 or self.images_per_prompt < 1:
            raise UserError(f"{path}: steps, batch_size and images_per_prompt must be >= 1")


@dataclass
class BenchmarkSection:
    kind: Literal["geneval", "hpsv3", "shapes_geneval"]
    metadata: Optional[str] = None
    detector_config: Optional[str] = None
    detector_checkpoint: Optional[str] = None
    clip_weights: Optional[str] = None
    clip_arch: str = "ViT-L-14-quickgelu"
    options: dict = field(default_factory=dict)
    prompts: Optional[str] = None
    max_prompts: int = 0  # 0 = all
    hps_python: Optional[str] = None
    hps_base_model: Optional[str] = None
    hps_checkpoint: Optional[str] = None
    hps_config: Optional[str] = None
    hps_batch_size: int = 4
    n_per_tag: int = 20
    prompt_seed: int = 43


@dataclass
class T2ISuite:
    name: str
    model: T2IModelSection
    benchmark: BenchmarkSection
    methods: list
    description: str = ""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seeds: list[int] = field(default_factory=lambda: [0])
    sampler: T2ISamplerSection = field(default_factory=T2ISamplerSection)
    report: dict = field(default_factory=dict)


def load_t2i_suite(path) -> T2ISuite:
    from sgbench.config.schema import MethodConfig
    from sgbench.config.typed import from_dict, read_yaml_file

    p = Path(path).expanduser()
    raw = read_yaml_file(p, "suite")
    if not isinstance(raw, dict):
        raise UserError(f"{p}: expected a mapping at the top level")
    methods = raw.get("methods") or []
    if not isinstance(methods, list) or not methods:
        raise UserError(f"{p}: methods must list at least one guidance setting")
    parsed = []
    for i, m in enumerate(methods):
        parsed.append(from_dict(MethodConfig, m, f"suite.methods[{i}]"))  # runs MethodConfig.check
    suite = from_dict(T2ISuite, {**raw, "methods": []}, "suite")
    suite.methods = parsed
    return suite


def guidance_for(method) -> Any:
    from sgbench.guidance import GuidanceConfig, build_rule

    weak = method.gamma_weak if method.method in ("sg", "cfg+sg", "ag+sg") else None
    cfg = GuidanceConfig(method=method.method, omega=method.omega, gamma_strong=method.gamma_strong,
                         gamma_weak=weak, interval=tuple(method.interval) if method.interval else None)
    return build_rule(cfg)


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("suite.device: cuda requested but no GPU is available")
    return name


def _autocast(dtype: str, device: str):
    import torch

    if dtype == "bf16" or (dtype == "auto" and device != "cpu"):
        return torch.bfloat16
    return None


class T2IBenchmark:
    """Benchmark-specific: prompt list, where images go, how they are scored."""

    def __init__(self, suite: T2ISuite, device: str):
        b = suite.benchmark
        self.kind, self.b, self.device = b.kind, b, device
        if b.kind == "hpsv3":
            from sgbench.t2i.hpsv3_client import HPSv3WorkerConfig, load_benchmark_prompts

            if not b.prompts:
                raise UserError("suite.benchmark.prompts is required for hpsv3 (HPDv3 benchmark/ folder or .jsonl)")
            self.items = load_benchmark_prompts(b.prompts)
            self.worker = HPSv3WorkerConfig(python=b.hps_python or "", base_model=b.hps_base_model or "",
                                            checkpoint=b.hps_checkpoint or "", config=b.hps_config,
                                            device=device, batch_size=b.hps_batch_size)
            self.worker.check()
        elif b.kind == "geneval":
            from sgbench.t2i.geneval import GenEvalOptions, read_metadata_jsonl

            if not b.metadata:
                raise UserError("suite.benchmark.metadata is required for geneval (evaluation_metadata.jsonl)")
            self.items = read_metadata_jsonl(b.metadata)
            self.options = GenEvalOptions.parse(f"{k}={v}" for k, v in b.options.items())
            for key, what in (("detector_config", "Mask2Former config"),
                              ("detector_checkpoint", "Mask2Former checkpoint"), ("clip_weights", "CLIP weights")):
                val = getattr(b, key)
                if not val or not Path(val).expanduser().is_file():
                    raise UserError(f"{what} not found: {val} (set suite.benchmark.{key})")
            try:  # fail before hours of sampling, not after
                import mmdet.apis  # noqa: F401
            except ImportError as e:
                from sgbench.t2i.geneval_backends import GENEVAL_EXTRA

                raise UserError(f"GenEval's detector needs the optional extra {GENEVAL_EXTRA} ({e})") from None
        else:
            from sgbench.t2i.geneval import GenEvalOptions, read_metadata_jsonl
            from sgbench.t2i.shapes_world import SHAPES, evaluation_metadata

            self.items = (read_metadata_jsonl(b.metadata, SHAPES) if b.metadata
                          else evaluation_metadata(b.n_per_tag, b.prompt_seed))
            self.options = GenEvalOptions.parse(f"{k}={v}" for k, v in b.options.items())
        if b.max_prompts:
            self.items = self.items[: b.max_prompts]
        self._models = None

    def prompts(self) -> list[str]:
        return [it["prompt"] for it in self.items]

    def write(self, outdir: Path, item_index: int, images: list[np.ndarray]) -> None:
        from PIL import Image

        from sgbench.t2i.geneval import write_geneval_folder

        if self.kind == "hpsv3":
            d = outdir / "images"
            d.mkdir(parents=True, exist_ok=True)
            for j, img in enumerate(images):
                Image.fromarray(img).save(d / f"{item_index:05d}_{j}.png")
        else:
            write_geneval_folder(outdir, item_index, self.items[item_index], images)

    def score(self, outdir: Path) -> dict:
        from sgbench.t2i import geneval as ge

        if self.kind == "hpsv3":
            from sgbench.t2i.hpsv3_client import HPSv3Client, aggregate, summary_columns

            paths = sorted((outdir / "images").glob("*.png"))
            items = [self.items[int(p.stem.split("_")[0])] for p in paths]
            with HPSv3Client(self.worker) as client:
                mu = client.score([str(p) for p in paths], [it["prompt"] for it in items], progress=True)
            with open(outdir / "scores.jsonl", "w") as f:
                for p, it, m in zip(paths, items, mu):
                    f.write(json.dumps({"image": p.name, "prompt": it["prompt"], "category": it["category"],
                                        "hpsv3": float(m)}) + "\n")
            summary = aggregate(mu, [it["category"] for it in items])
            return {"summary": summary, "columns": summary_columns(summary)}
        if self.kind == "geneval":
            from sgbench.t2i.geneval_backends import MMDetDetector, load_clip_color_classifier

            if self._models is None:
                self._models = (MMDetDetector(self.b.detector_config, self.b.detector_checkpoint, self.device),
                                load_clip_color_classifier(self.b.clip_weights, self.b.clip_arch, self.device,
                                                           self.options))
            results = ge.evaluate_images(ge.iter_geneval_folder(outdir), *self._models, self.options, progress=True)
        else:
            from PIL import Image

            from sgbench.t2i.shapes_world import score_images

            items = list(ge.iter_geneval_folder(outdir))
            results = score_images([np.asarray(Image.open(p)) for p, _ in items], [m for _, m in items],
                                   self.options, [p for p, _ in items])
        ge.write_results_jsonl(results, outdir / "results.jsonl")
        summary = ge.summarize(results)
        return {"summary": summary, "columns": ge.summary_columns(summary)}


def run_t2i_suite(path, out_root="results", progress: bool = True) -> Path:
    """Run every method x seed of a T2I suite; returns the run directory."""
    suite = load_t2i_suite(path)
    device = _device(suite.device)
    scorer = T2IBenchmark(suite, device)  # validates the benchmark's files before any sampling
    from sgbench.t2i.generate import generate_t2i
    from sgbench.t2i.model import load_t2i

    # ICG's random condition: another benchmark prompt, drawn per sample from its own generator
    pool = scorer.prompts() if any(m.method == "icg" for m in suite.methods) else None
    denoiser, encoder, meta = load_t2i(suite.model.checkpoint, device, suite.model.text_encoder or None, pool)
    decoder = None
    if suite.model.vae:
        from sgbench.sampling.decode import VAEDecoder

        decoder = VAEDecoder(suite.model.vae, device=device)
    side = int(meta.get("image_size", 0)) or None
    if side and suite.sampler.resolution != side:
        raise UserError(f"suite.sampler.resolution {suite.sampler.resolution} does not match the model ({side} px)")
    run_dir = Path(out_root) / suite.name
    run_dir.mkdir(parents=True, exist_ok=True)
    prompts = scorer.prompts()
    k = suite.sampler.images_per_prompt
    flat = [p for p in prompts for _ in range(k)]
    rows = []
    for seed in suite.seeds:
        for method in suite.methods:
            rule = guidance_for(method)
            outdir = run_dir / method.name / f"seed{seed}"
            t0 = time.perf_counter()
            pending: dict = {}
            for idx, imgs in generate_t2i(denoiser, encoder, flat, rule, suite.sampler.steps, seed,
                                          suite.sampler.batch_size, suite.sampler.solver,
                                          _autocast(suite.sampler.dtype, device), decoder, device):
                for i, img in zip(idx, imgs):
                    pending.setdefault(i // k, []).append(img)
                    if len(pending[i // k]) == k:
                        scorer.write(outdir, i // k, pending.pop(i // k))
            wall = time.perf_counter() - t0
            scored = scorer.score(outdir)
            row = {"trial_id": len(rows), "role": "baseline", "method": method.method, "name": method.name,
                   "gamma_strong": method.gamma_strong, "gamma_weak": method.gamma_weak, "omega": method.omega,
                   "schedule": method.schedule, "n_samples": len(flat), "seed": seed, **scored["columns"],
                   "images_per_s": round(len(flat) / wall, 4), "status": "complete"}
            rows.append(row)
            (outdir / "summary.json").write_text(json.dumps(scored["summary"], indent=2))
            if progress:
                print(f"{method.name} seed {seed}: " + ", ".join(f"{k_}={v:.4f}" for k_, v in scored["columns"].items()),
                      flush=True)
    _write_trials(rows, run_dir / "trials.csv")
    table = format_table(rows, suite.benchmark.kind)
    tmp = run_dir / "table.md.tmp"
    tmp.write_text(table + "\n")
    os.replace(tmp, run_dir / "table.md")
    if progress:
        print(table)
    return run_dir


def _write_trials(rows, path: Path) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def format_table(rows: list[dict], kind: str) -> str:
    """Mean over seeds per method, in the column layout of Table 5 (GenEval) / Table 4 (HPSv3)."""
    from sgbench.t2i.geneval import TAG_TITLES, TAGS
    from sgbench.t2i.hpsv3_client import HPSV3_CATEGORIES

    if kind == "hpsv3":
        cols = [("hpsv3", "Overall")] + [("hpsv3_" + c.lower().replace(" ", "_"), c) for c in HPSV3_CATEGORIES]
        fmt = "{:.2f}"
    else:
        cols = [("geneval", "Overall")] + [(f"geneval_{t}", TAG_TITLES[t]) for t in TAGS]
        fmt = "{:.2f}"
    cols.append(("images_per_s", "images/s"))
    names = list(dict.fromkeys(r["name"] for r in rows))
    lines = ["| Method | " + " | ".join(t for _, t in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name in names:
        sel = [r for r in rows if r["name"] == name]
        cells = []
        for key, _ in cols:
            vals = [r[key] for r in sel if key in r]
            cells.append(fmt.format(float(np.mean(vals))) if vals else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
