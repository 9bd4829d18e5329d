"""One rehearsal: its run directory, its suite at tiny sizes, and the stand-ins for missing files.

`Rehearsal(loaded, root, name, resume, log)` is made right after the suite is read (without the
file check): it plans everything first -- sizes, which files are the user's and which get a
stand-in, whether each stand-in can be made (mmdet for GenEval's detector, an HPSv3
environment) -- and raises before creating anything; then it creates
`root/<name>-rehearsal[-k]/` with its `REHEARSAL` marker, builds the stand-ins under
`standins/<suite key>/` (keeping the user's file names, whose extensions name the format) and
hands the run a `LoadedSuite` whose paths all exist, checked by the loader's own `require_all`.
Each stand-in is announced on one line. A rehearsal that fails before its run starts removes
the directory it created (`abandon`); `--rehearse --resume` continues a rehearsal directory
and keeps its stand-ins.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from sgbench.config.files import require_all
from sgbench.config.loader import LoadedSuite, file_refs
from sgbench.config.schema import Suite
from sgbench.errors import UserError
from sgbench.rehearse.marker import ENV_KEY, rehearsal_name, write_marker
from sgbench.rehearse.plan import cpu_has_bf16, rehearsal_suite

PREFIX = "rehearsal: "
STANDINS = "standins"
SEED, WEAK_SEED = 0, 1
SWEEP_SEED = {"sweep": 100, "weak_sweep": 200}  # + the entry's index: each checkpoint its own weights
SWEEP_KEY = re.compile(r"suite\.model\.(sweep|weak_sweep)\[(\d+)\]\.checkpoint")
MAIN_KEYS = ("suite.model.checkpoint", "suite.model.sweep[0].checkpoint")  # the main network: one or a sweep's first
T2I_SIDE = 512  # T2I stand-ins without sampler.resolution: the paper's TR-DiT-2.5B side


@dataclass
class Context:
    """What a stand-in builder sees: the rehearsal suite (builders may adjust it), the resolved
    paths so far (user files and earlier stand-ins) and where stand-ins go."""

    suite: Suite
    paths: dict[str, Path]
    standins: Path
    absent: set[str]  # suite keys whose files do not exist
    standin: set[str]  # keys that get a stand-in: the absent ones and those that must match one
    notes: list[str] = field(default_factory=list)

    def target(self, key: str) -> Path:
        """standins/<key>/<the suite's file name>: the name (and its extension) as the user's."""
        return self.standins / key.removeprefix("suite.") / self.paths[key].name

    @property
    def t2i(self) -> bool:
        return self.suite.benchmark is not None


def _set(suite: Suite, key: str, value) -> None:
    """Set the suite field a file_refs key names (suite.model.text_encoder.path is a dict item,
    suite.model.sweep[2].checkpoint a list entry's field)."""
    *parents, last = key.split(".")[1:]
    node = suite
    for name in parents:
        name, _, index = name.partition("[")
        node = node[name] if isinstance(node, dict) else getattr(node, name)
        if index:
            node = node[int(index.rstrip("]"))]
    if isinstance(node, dict):
        node[last] = value
    else:
        setattr(node, last, value)


# ----------------------------------------------------------------------------- model files


def _class_config(ctx: Context) -> tuple[str, dict]:
    """(family, config dict) of the suite's declared class-conditional architecture."""
    from sgbench.models.dit import dit_config
    from sgbench.models.maskdit import maskdit_config
    from sgbench.rehearse.checkpoints import is_maskdit

    m = ctx.suite.model
    if not m.arch:
        raise UserError("suite.model.arch: the checkpoint is missing and the suite does not declare its architecture, "
                        "so no stand-in can be made: set arch (e.g. SiT-XL/2, MaskDiT-XL/2) and routes as your file "
                        "records them")
    family = "maskdit" if is_maskdit(m.family, m.arch) else "dit"
    overrides = dict(m.options.get("config") or {})
    overrides.update({k: m.options[k] for k in ("num_classes", "input_size", "in_channels", "learn_sigma")
                      if m.options.get(k) not in (None, "auto")})
    if family == "dit" and m.routes:  # MaskDiT takes none: the loader then rejects the suite's routes
        overrides["routes"] = list(m.routes)
    return family, (maskdit_config if family == "maskdit" else dit_config)(m.arch, **overrides).to_dict()


def _checkpoint_keys(ctx: Context) -> list[str]:
    """Every class-conditional checkpoint key of the suite, main network first."""
    return [k for k in ctx.paths if k in ("suite.model.checkpoint", "suite.model.weak_checkpoint") or SWEEP_KEY.fullmatch(k)]


OWN_META = ("format", "family", "config", "parametrization", "train", "train_steps")  # not copied to a stand-in


def _recorded_model(path: Path) -> Optional[tuple[str, dict, Optional[str], dict]]:
    """(family, config, parametrization, other metadata) an sgbench safetensors file records, None
    for other files (a .pt is not unpickled to look)."""
    from sgbench.models.loading import read_sgbench_metadata

    meta = read_sgbench_metadata(path) if path.suffix == ".safetensors" else None
    if not meta:
        return None
    extra = {k: v for k, v in meta.items() if k not in OWN_META}
    return meta["family"], dict(meta["config"]), meta.get("parametrization"), extra


def _model_config(ctx: Context, key: str) -> tuple[str, dict, Optional[str], dict]:
    """(family, config, recorded parametrization or None, other recorded metadata) of the network
    at `key`: what your sgbench file records; for a stand-in, what your file of the same sweep
    records (a sweep follows one training run: same tensors and config), else your main
    network's, else the suite's declared architecture."""
    def section(k: str) -> Optional[str]:
        m = SWEEP_KEY.fullmatch(k)
        return m[1] if m else None

    if key in ctx.standin:  # yours of the same sweep first, then your others (main network first)
        keys = sorted((k for k in _checkpoint_keys(ctx) if k not in ctx.standin),
                      key=lambda k: section(k) is None or section(k) != section(key))
    else:
        keys = [key]
    for k in keys:
        recorded = _recorded_model(ctx.paths[k])
        if recorded:
            return recorded
    return (*_class_config(ctx), None, {})


def main_key(ctx: Context) -> str:
    return next(k for k in MAIN_KEYS if k in ctx.paths)


def _name_step(path: Path) -> Optional[int]:
    """The training iteration a file name states: its last run of digits (sit-...-0400000 -> 400000)."""
    digits = re.findall(r"\d+", path.stem)
    return int(digits[-1]) if digits else None


def sweep_step(ctx: Context, key: str) -> tuple[int, str]:
    """(step, why) a stand-in for a sweep entry records: the suite's `step`, else the step its file
    name states where the names of the sweep's stand-ins state distinct ones, else its position."""
    section, i = SWEEP_KEY.fullmatch(key).groups()
    entries = getattr(ctx.suite.model, section)
    entry = entries[int(i)]
    if entry.step is not None:
        return entry.step, "the suite's step"
    names = [_name_step(ctx.paths[f"suite.model.{section}[{j}].checkpoint"]) for j in range(len(entries))
             if f"suite.model.{section}[{j}].checkpoint" in ctx.standin and entries[j].step is None]
    if None not in names and len(set(names)) == len(names):
        return _name_step(ctx.paths[key]), "the step its file name states"
    return int(i) + 1, "its position in the sweep (the file names state no distinct steps)"


def build_checkpoint(ctx: Context, key: str) -> Path:
    from sgbench.rehearse.checkpoints import (LAYOUTS, NATURAL_PARAMETRIZATION, STEP_LAYOUTS, declared_layout,
                                              write_checkpoint)

    if ctx.t2i:
        return build_t2i_checkpoint(ctx, key)
    m, path = ctx.suite.model, ctx.target(key)
    layout = declared_layout(ctx.paths[key], m.family, m.arch, m.parametrization, m.trust_checkpoint)
    family, config, recorded_param, extra = _model_config(ctx, key)
    param = None
    if layout in ("sgbench", "sgbench-train"):
        codebase = "maskdit" if family == "maskdit" else ("sit" if "SiT" in (m.arch or "SiT") else "dit")
        param = m.parametrization or recorded_param or NATURAL_PARAMETRIZATION[codebase]
    swept = SWEEP_KEY.fullmatch(key)
    step, why = sweep_step(ctx, key) if swept else (None, "")
    if swept:
        seed = SWEEP_SEED[swept[1]] + int(swept[2])
    else:
        seed = WEAK_SEED if "weak" in key else SEED
    if not path.exists():
        write_checkpoint(path, layout, family, config, param, seed, m.arch, extra or None,
                         step=step if layout in STEP_LAYOUTS else None)
    routes = config.get("routes") if family == "dit" else None
    routes = f" + routes {', '.join(routes)}" if routes else ""
    arch = m.arch or f"{family} network of the config your sgbench file records"
    if param:
        recorded = (f"records parametrization {param}" + ("" if m.parametrization or recorded_param else
                    " (the suite gives none: your file's own record decides in a real run)"))
    else:
        recorded = "records no parametrization, like the real file"
    if swept and layout in STEP_LAYOUTS:
        recorded += f", training step {step} ({why})"
    elif swept:
        recorded += ", no training step, like the real file (a sweep then takes the suite's `step`)"
    ctx.notes.append(f"{key}: {LAYOUTS[layout]} of a random {arch}{routes}; {recorded} -> {path}")
    return path


def build_t2i_checkpoint(ctx: Context, key: str) -> Path:
    """A 4-block, 64-wide T2I DiT at the suite's resolution (TR-DiT-2.5B cannot sample on a CPU
    in minutes), reading the stand-in text encoder."""
    from sgbench.models.t2i_dit import t2i_config
    from sgbench.models.text_encoders import PAPER_PROMPT_PREFIX, TextEncoderSpec
    from sgbench.rehearse.checkpoints import write_t2i_checkpoint

    s, path = ctx.suite, ctx.target(key)
    side = s.sampler.resolution or T2I_SIDE
    factor, channels = (8, 4) if s.model.vae else (1, 3)
    encoder = ctx.paths["suite.model.text_encoder.path"]
    width = _hidden_size(encoder)
    cfg = t2i_config("T2I-tiny", input_size=side // factor, patch_size=2, in_channels=channels, text_dim=width)
    if not path.exists():
        spec = TextEncoderSpec(kind="hf", path=str(encoder), prefix=PAPER_PROMPT_PREFIX, max_length=128)
        write_t2i_checkpoint(path, cfg, spec.to_dict(), side, SEED)
    ctx.notes.append(f"{key}: sgbench T2I safetensors of a random T2I DiT shrunk to {cfg.depth} blocks x "
                     f"{cfg.hidden_size} wide (a 2.5B model cannot sample on a CPU in minutes; routes "
                     f"{', '.join(cfg.to_dict()['routes'])}), {side} px, {cfg.input_size}x{cfg.input_size}x{channels} "
                     f"latents, patch 2, text width {width}, the paper's prompt prefix -> {path}")
    return path


def _hidden_size(directory: Path) -> int:
    from sgbench.models.text_encoders import _hidden_size as hidden

    import transformers

    return hidden(transformers.AutoConfig.from_pretrained(str(directory), local_files_only=True))


def build_text_encoder(ctx: Context, key: str) -> Path:
    from sgbench.rehearse.text_encoder import write_text_encoder

    path = ctx.target(key)
    width = 64
    if "suite.model.checkpoint" not in ctx.standin:  # the user's T2I DiT: the stand-in must have the width it reads
        from sgbench.models.loading import read_sgbench_metadata

        width = int((read_sgbench_metadata(ctx.paths["suite.model.checkpoint"]) or {}).get("config", {})
                    .get("text_dim", width))
    if not path.exists():
        write_text_encoder(path, width, SEED)
    # loading options of the user's encoder (a VLM's submodule, remote code) do not apply to it
    ctx.suite.model.text_encoder.update(kind="hf", submodule="", trust_remote_code=False, dtype="float32")
    why = "" if key in ctx.absent else " (yours exists, but the stand-in checkpoint must match its width)"
    ctx.notes.append(f"{key}: tiny Hugging Face text encoder (random 2-layer Qwen2, width {width}, BPE tokenizer "
                     f"trained here){why} -> {path}")
    return path


def build_vae(ctx: Context, key: str) -> Path:
    from sgbench.rehearse.vae import write_sd_vae

    path = ctx.target(key)
    side = image_side(ctx)
    if not path.exists():
        write_sd_vae(path, SEED, sample_size=side)
    ctx.notes.append(f"{key}: tiny diffusers AutoencoderKL in SD-VAE's layout (4 latent channels, 8x, scaling "
                     f"0.18215; random weights) -> {path}")
    return path


def image_side(ctx: Context) -> int:
    """Pixels per side of the suite's samples: latent side x the VAE's downsampling."""
    if ctx.t2i:
        return ctx.suite.sampler.resolution or T2I_SIDE
    latent = int(_model_config(ctx, main_key(ctx))[1]["input_size"])
    if not ctx.suite.model.vae:
        return latent
    from sgbench.rehearse.vae import DOWNSAMPLING, downsampling_factor

    vae = ctx.paths["suite.model.vae"]
    return latent * (DOWNSAMPLING if "suite.model.vae" in ctx.standin else downsampling_factor(vae))


# ----------------------------------------------------------------------------- metrics files


def build_extractor_weights(ctx: Context, key: str) -> Path:
    name, path = ctx.suite.metrics.extractor, ctx.target(key)
    if name == "inception":
        from sgbench.rehearse.inception import write_inception_weights

        if not path.exists():
            write_inception_weights(path, SEED)
        what = "torch-fidelity's InceptionV3 with random weights (its weights file's state-dict layout)"
    elif name == "dinov2":
        from sgbench.metrics.dinov2 import write_standin_weights

        if not path.exists():
            write_standin_weights(path, SEED)
        what = "a tiny random DINOv2 (64 wide, 2 blocks, ViT-L's patch and positional grid) in torch-hub's layout"
    else:
        from sgbench.rehearse.classifier import write_classifier

        if not path.exists():
            write_classifier(path, SEED, image_size=image_side(ctx))
        what = "a random sgbench ShapeClassifier"
    ctx.notes.append(f"{key}: {what} -> {path}")
    return path


def build_reference(ctx: Context, key: str) -> Path:
    from sgbench.rehearse.reference import N_IMAGES, subset_reference, write_adm_reference, write_image_reference

    path, source = ctx.target(key), ctx.paths[key]
    if key not in ctx.absent:  # the user's batch: its statistics, only its first images
        if not path.exists():
            _, total = subset_reference(source, path)
        else:
            total = None
        ctx.notes.append(f"{key}: your file's statistics and its first {N_IMAGES} images"
                         f"{f' of {total}' if total else ''} (features of all would take minutes here) -> {path}")
        return path
    side = image_side(ctx)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    if not path.exists():
        if ctx.suite.metrics.extractor == "inception":
            from sgbench.metrics.extractors import get_extractor

            ext = get_extractor("inception", weights_path=str(ctx.paths["suite.metrics.weights"]), batch_size=8)
            write_adm_reference(path, ext, side)
        else:
            write_image_reference(path, side)
    what = ("an ADM reference batch (arr_0, mu, sigma, mu_s, sigma_s from the run's Inception)"
            if ctx.suite.metrics.extractor == "inception" else "a reference batch (arr_0)")
    ctx.notes.append(f"{key}: {what}, {N_IMAGES} random {side}x{side} images -> {path}")
    return path


def _large_reference(path: Path) -> bool:
    """An ADM .npz with more images than a rehearsal computes features of (statistics kept)."""
    from sgbench.metrics.image_io import count_images, npz_keys
    from sgbench.rehearse.reference import N_IMAGES

    if path.is_dir() or path.suffix != ".npz" or "arr_0" not in npz_keys(path):
        return False
    return count_images(path) > N_IMAGES


def build_lpips_weights(ctx: Context, key: str) -> Path:
    from sgbench.metrics.perceptual import BACKBONE_FILES, write_standin_backbone

    net, path = ctx.suite.metrics.lpips.net, ctx.target(key)
    if not path.exists():
        write_standin_backbone(path, net, SEED)
    ctx.notes.append(f"{key}: torchvision's {net} backbone with random weights, in the layout of "
                     f"{BACKBONE_FILES[net]} (lpips' own linear heads on top) -> {path}")
    return path


# ----------------------------------------------------------------------------- benchmark files


def build_metadata(ctx: Context, key: str) -> Path:
    from sgbench.rehearse.geneval import write_metadata

    path = ctx.target(key)
    if ctx.suite.benchmark.kind == "shapes_geneval":
        from sgbench.t2i.shapes_world import evaluation_metadata

        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(m) + "\n" for m in evaluation_metadata(1)))
        what = "shapes-world prompts, one per GenEval tag"
    else:
        if not path.exists():
            write_metadata(path)
        what = "GenEval evaluation_metadata.jsonl, one prompt per tag"
    ctx.notes.append(f"{key}: {what} -> {path}")
    return path


def build_detector_config(ctx: Context, key: str) -> Path:
    from sgbench.rehearse.geneval import mask2former_config

    path = mask2former_config()
    ctx.notes.append(f"{key}: mmdet's own Mask2Former Swin-S config (GenEval's detector; a real file) -> {path}")
    return path


def build_detector_checkpoint(ctx: Context, key: str) -> Path:
    from sgbench.rehearse.geneval import write_mask2former

    path = ctx.target(key)
    if not path.exists():
        write_mask2former(path, ctx.paths["suite.benchmark.detector_config"], SEED)
    ctx.notes.append(f"{key}: the detector config's model (Mask2Former Swin-S) with random weights, as an mmdet "
                     f"checkpoint -> {path}")
    return path


def build_clip(ctx: Context, key: str) -> Path:
    from sgbench.rehearse.geneval import CLIP_ARCH, write_tiny_clip

    path = ctx.target(key)
    if not path.exists():
        write_tiny_clip(path, SEED)
    was, ctx.suite.benchmark.clip_arch = ctx.suite.benchmark.clip_arch, CLIP_ARCH
    ctx.notes.append(f"{key}: a tiny random open_clip model (arch {CLIP_ARCH}, shrunk from {was}) -> {path}")
    return path


def build_hps_prompts(ctx: Context, key: str) -> Path:
    from sgbench.rehearse.hpsv3 import write_prompts

    path = ctx.target(key)
    if path.suffix == ".jsonl":
        path = path.with_suffix("")
    if not path.exists():
        write_prompts(path)
    ctx.notes.append(f"{key}: HPDv3 benchmark folder (benchmark_<Category>.json, one prompt per category) -> {path}")
    return path


def build_hps_python(ctx: Context, key: str) -> Path:
    from sgbench.rehearse.hpsv3 import ENV_VAR, env_python

    py = env_python()
    if py is None:  # checked in plan(); kept here for direct callers
        raise UserError(f"{key}: {ctx.paths[key]} is missing; set ${ENV_VAR} to an HPSv3 environment's python")
    ctx.notes.append(f"{key}: the HPSv3 environment named by ${ENV_VAR} -> {py}")
    return py


def build_hps_model(ctx: Context, key: str) -> Path:
    """The tiny HPSv3 pair: its base model directory and checkpoint are made together."""
    from sgbench.rehearse.hpsv3 import build_tiny_hpsv3

    out = ctx.standins / "benchmark.hps_model"
    built = out / "built.json"
    if not built.is_file():
        info = build_tiny_hpsv3(ctx.paths["suite.benchmark.hps_python"], out / "tmp")
        for name in ("qwen2vl_tiny", "HPSv3_tiny.safetensors"):
            os.replace(out / "tmp" / name, out / name)
        shutil.rmtree(out / "tmp", ignore_errors=True)
        built.write_text(json.dumps({"n_params": info.get("n_params")}))
    path = out / ("qwen2vl_tiny" if key.endswith("hps_base_model") else "HPSv3_tiny.safetensors")
    what = "a tiny random Qwen2-VL base model" if key.endswith("hps_base_model") else \
        "the HPSv3 checkpoint the real hpsv3 package builds on that base model"
    ctx.notes.append(f"{key}: {what} (made in the HPSv3 environment) -> {path}")
    return path


def drop_hps_config(ctx: Context, key: str) -> None:
    ctx.notes.append(f"{key}: left out (HPSv3's own YAML, as when the suite gives none)")
    return None


# suite key -> stand-in builder, in build order (later builders read earlier results)
BUILDERS: dict[str, Callable[[Context, str], Optional[Path]]] = {
    "suite.benchmark.hps_python": build_hps_python,
    "suite.model.text_encoder.path": build_text_encoder,
    "suite.model.checkpoint": build_checkpoint,
    "suite.model.weak_checkpoint": build_checkpoint,
    "suite.model.sweep[].checkpoint": build_checkpoint,  # every suite.model.sweep[i].checkpoint
    "suite.model.weak_sweep[].checkpoint": build_checkpoint,
    "suite.model.vae": build_vae,
    "suite.metrics.weights": build_extractor_weights,
    "suite.metrics.reference.path": build_reference,
    "suite.metrics.lpips.weights": build_lpips_weights,
    "suite.benchmark.metadata": build_metadata,
    "suite.benchmark.detector_config": build_detector_config,
    "suite.benchmark.detector_checkpoint": build_detector_checkpoint,
    "suite.benchmark.clip_weights": build_clip,
    "suite.benchmark.prompts": build_hps_prompts,
    "suite.benchmark.hps_base_model": build_hps_model,
    "suite.benchmark.hps_checkpoint": build_hps_model,
    "suite.benchmark.hps_config": drop_hps_config,
}


def builder_key(key: str) -> str:
    """The BUILDERS entry of a suite key: a sweep entry's index is dropped (sweep[2] -> sweep[])."""
    m = SWEEP_KEY.fullmatch(key)
    return f"suite.model.{m[1]}[].checkpoint" if m else key


def build_order(keys) -> list[str]:
    """The keys that have a builder, in BUILDERS order (a sweep's entries in index order)."""
    order = list(BUILDERS)
    known = [k for k in keys if builder_key(k) in BUILDERS]
    return sorted(known, key=lambda k: (order.index(builder_key(k)), int(SWEEP_KEY.fullmatch(k)[2])
                                        if SWEEP_KEY.fullmatch(k) else 0))


# ----------------------------------------------------------------------------- the rehearsal


def _forced(refs, absent: set[str], suite: Suite) -> set[str]:
    """Present files that must still be stood in because a stand-in they pair with must match them."""
    keys = {r.key for r in refs}
    out = set()
    if suite.benchmark is not None and "suite.model.checkpoint" in absent and "suite.model.text_encoder.path" in keys:
        out.add("suite.model.text_encoder.path")  # the stand-in DiT's text width and loading options
    pair = {"suite.benchmark.hps_base_model", "suite.benchmark.hps_checkpoint"}
    if pair & absent:
        out |= pair & keys  # an HPSv3 checkpoint is built on its base model
    return out


def _check_makeable(ctx: Context) -> None:
    """Raise now (before any directory exists) where a stand-in cannot be made."""
    s, keys = ctx.suite, ctx.standin
    if "suite.benchmark.hps_python" in keys:
        from sgbench.rehearse.hpsv3 import ENV_VAR, env_python

        if env_python() is None:
            raise UserError(f"suite.benchmark.hps_python = {ctx.paths['suite.benchmark.hps_python']} is missing, and an "
                            f"HPSv3 environment cannot be stood in: build one (make hpsv3-env) and set "
                            f"{ENV_VAR}=.hpsv3-env/bin/python, or set hps_python")
    if s.benchmark is not None and s.benchmark.kind == "geneval" and importlib.util.find_spec("mmdet") is None:
        from sgbench.t2i.geneval_backends import GENEVAL_EXTRA

        raise UserError(f"suite.benchmark: GenEval's detector needs the optional extra {GENEVAL_EXTRA}; a real run "
                        "needs it too (on CPU: make geneval-cpu)")
    checkpoints = sorted(keys & set(_checkpoint_keys(ctx)))
    if not ctx.t2i and checkpoints:
        from sgbench.rehearse.checkpoints import declared_layout

        m = s.model
        for key in checkpoints:
            declared_layout(ctx.paths[key], m.family, m.arch, m.parametrization, m.trust_checkpoint)
            _model_config(ctx, key)


class Rehearsal:
    """Made right after the suite is read: plans (no file is written, every refusal happens
    here). `build(env)` then claims the rehearsal's run directory (`sgbench.run.rundir.claim`,
    with its REHEARSAL marker and env.json's "rehearsal" entry) and makes the stand-ins inside;
    `abandon()` removes a directory whose run never started."""

    def __init__(self, loaded: LoadedSuite, root, name: Optional[str], resume: bool, log=print):
        from sgbench.run import rundir

        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise UserError("--rehearse runs in one process on the CPU: start it without torchrun")
        self.raw_log, self.root = log, Path(root)
        self.log = lambda msg: log(PREFIX + msg)
        suite, self.notes = rehearsal_suite(loaded.suite, cpu_has_bf16())
        self.base_dir = loaded.source.resolve().parent
        refs = file_refs(suite, self.base_dir)
        absent = {r.key for r in refs if not r.exists()}
        if suite.benchmark is not None and "suite.model.checkpoint" in absent and not suite.model.text_encoder.get("path"):
            suite.model.text_encoder["path"] = "text-encoder"  # a stand-in DiT reads a stand-in encoder
            refs = file_refs(suite, self.base_dir)
            absent.add("suite.model.text_encoder.path")
        paths = {r.key: r.path for r in refs}
        standin = absent | _forced(refs, absent, suite)
        ref_key = "suite.metrics.reference.path"
        if ref_key in paths and ref_key not in absent and _large_reference(paths[ref_key]):
            standin.add(ref_key)  # its statistics and first images only
        self.name = rehearsal_name(name or loaded.suite.name)
        self.created = not resume
        self.run_dir = None if self.created else rundir.existing_run(self.root, self.name, rehearsal=True)
        self.ctx = Context(suite, paths, Path(), absent, standin)
        _check_makeable(self.ctx)
        # the run reads this object; build() fills in the stand-ins' paths
        self.loaded = LoadedSuite(suite=suite, source=loaded.source, text=loaded.text, paths=paths,
                                  overrides=loaded.overrides)
        self.standins = sorted(standin)

    @property
    def run_name(self) -> str:
        return self.run_dir.name if self.run_dir is not None else self.name

    def build(self, env: Optional[dict] = None) -> None:
        """Claim the directory (`env`: its env.json) and make the stand-ins inside."""
        import time

        from sgbench.run import rundir

        ctx, started = self.ctx, time.perf_counter()
        if self.created:  # marked at once: env.json says it, the REHEARSAL file follows
            env = {**(env or {}), ENV_KEY: {"standins": self.standins, "directory": STANDINS}}
            self.run_dir = rundir.claim(self.root, self.name, self.loaded, env, self.raw_log)
            write_marker(self.run_dir, self.notes)
        ctx.standins = self.run_dir / STANDINS
        try:
            self._mmcv_ops(ctx)
            for key in build_order(ctx.standin):
                path = BUILDERS[builder_key(key)](ctx, key)
                _set(ctx.suite, key, None if path is None else str(path))
                if path is None:
                    del ctx.paths[key]
                else:
                    ctx.paths[key] = Path(path)
            self._register_clip(ctx)
            refs = file_refs(ctx.suite, self.base_dir)
            require_all(refs)  # the loader's own check: every file the run reads now exists
            if self.created:  # the snapshot names the stand-ins the run reads
                rundir.write_atomic(self.run_dir / "suite.yaml", rundir.snapshot_text(self.loaded))
        except BaseException:
            self.abandon()
            raise
        ctx.paths.clear()
        ctx.paths.update({r.key: r.path for r in refs})
        used = sorted(set(ctx.paths) - ctx.standin)
        made = f"stand-ins ready in {time.perf_counter() - started:.0f}s; "
        lines = self.notes + ctx.notes + [made + (f"your files: {', '.join(used)}" if used else
                                                  "your files: none (every file is a stand-in)")]
        if self.created:
            write_marker(self.run_dir, lines)
        for line in lines:
            self.log(line)

    @staticmethod
    def _mmcv_ops(ctx: Context) -> None:
        from sgbench.rehearse.geneval import ensure_mmcv_ops

        b = ctx.suite.benchmark
        if b is not None and b.kind == "geneval" and ensure_mmcv_ops():
            ctx.notes.append("mmcv has no compiled ops here (mmcv-lite): mmcv._ext is a module whose every op raises, "
                             "so the CPU detector proves none ran; a GPU run needs the full mmcv")

    @staticmethod
    def _register_clip(ctx: Context) -> None:
        from sgbench.rehearse.geneval import CLIP_ARCH, register_tiny_clip

        b = ctx.suite.benchmark
        if b is not None and b.kind == "geneval" and b.clip_arch == CLIP_ARCH:  # on --resume too
            register_tiny_clip(ctx.paths["suite.benchmark.clip_weights"].parent)

    def abandon(self) -> None:
        """Remove the directory this rehearsal claimed (called before its run starts)."""
        if self.created and self.run_dir is not None and self.run_dir.is_dir():
            shutil.rmtree(self.run_dir, ignore_errors=True)
