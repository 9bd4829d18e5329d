"""Read a suite YAML file into a checked `Suite` with resolved paths, failing fast on bad input."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from sgbench.config import overrides as ov
from sgbench.config.files import (FileRef, command_line_file, expand_vars, package_dir, require_all,
                                  resolve_path)
from sgbench.config.kinds import refuse_training_config
from sgbench.config.schema import Suite
from sgbench.config.typed import from_dict, load_yaml, read_text_file, to_dict
from sgbench.errors import UserError
from sgbench.metrics.benchmarks import BENCHMARKS
from sgbench.secrets import redact_url, register_url

ROOT = "suite"

# How to supply each kind of user file (shown next to a missing path).
HOW = {
    "checkpoint": "a model checkpoint (.pt/.safetensors): train one with `sgbench train`, or make an sgbench file "
                  "once from released SiT/TREAD/DiT/MaskDiT weights with `sgbench convert` (the suite's comments "
                  "say how), and set the path (or the ${...} variable) in the suite",
    "weak_checkpoint": "an earlier checkpoint of the same run, for autoguidance (keep early checkpoints when training)",
    "sweep": "a checkpoint of the training run the sweep follows (keep checkpoints when training: `sgbench train` "
             "keeps every train.keep_every steps; `sgbench train CONFIG --export-step STEP OUT` exports one)",
    "lpips_alex": "torchvision's AlexNet weights alexnet-owt-7be5be79.pth (https://download.pytorch.org/models/), "
                  "or a full lpips.LPIPS state dict, copied to this machine",
    "lpips_vgg": "torchvision's VGG16 weights vgg16-397923af.pth (https://download.pytorch.org/models/), "
                 "or a full lpips.LPIPS state dict, copied to this machine",
    "lpips_squeeze": "torchvision's SqueezeNet 1.1 weights squeezenet1_1-b8a52dc0.pth "
                     "(https://download.pytorch.org/models/), or a full lpips.LPIPS state dict, copied to this machine",
    "vae": "a local diffusers AutoencoderKL directory (stabilityai/sd-vae-ft-ema: config.json + "
           "diffusion_pytorch_model.safetensors), copied to this machine",
    "inception": "torch-fidelity's Inception weights weights-inception-2015-12-05-6726825d.pth (from the "
                 "torch-fidelity GitHub release), copied to this machine",
    "classifier": "an sgbench classifier (.safetensors): `sgbench train` with the classifier config",
    "dinov2": "the DINOv2 ViT-L/14 weights dinov2_vitl14_pretrain.pth (torch.hub 'facebookresearch/dinov2' "
              "'dinov2_vitl14', from dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/) or timm's "
              "vit_large_patch14_dinov2.lvd142m model.safetensors, copied to this machine",
    "weights": "the feature extractor's weights file",
    "text_encoder": "a local Hugging Face directory of the text encoder (e.g. InternVL3-2B), copied to this machine",
    "metadata": "GenEval's prompts/evaluation_metadata.jsonl (djghosh13/geneval), copied to this machine",
    "detector_config": "the Mask2Former Swin-S config of mmdet 3.x (mmdet/.mim/configs/mask2former/"
                       "mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco.py in an installed mmdet)",
    "detector_checkpoint": "mmdet's Mask2Former Swin-S COCO checkpoint (mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco.pth)",
    "clip_weights": "OpenAI CLIP ViT-L/14 weights (open_clip's ViT-L-14 'openai' file)",
    "prompts": "the HPDv3 benchmark prompts (the benchmark/ folder of its per-category JSON files, or a .jsonl)",
    "hps_python": "the python of an environment with `pip install hpsv3` (docs/t2i.md, 'HPSv3')",
    "hps_base_model": "a local Qwen2-VL-7B-Instruct directory (config.json, weights, processor files)",
    "hps_checkpoint": "HPSv3.safetensors from MizzenAI/HPSv3",
    "hps_config": "an HPSv3 YAML config (leave it out for the package's own)",
    "reference": "the ADM reference batch (e.g. VIRTUAL_imagenet256_labeled.npz from openai/guided-diffusion), "
                 "a cached statistics .npz, or a folder of real images",
}


@dataclass(frozen=True)
class SuiteFiles:
    """The user files a suite names, resolved (`sgbench.config.files.resolve_path`): one field per
    file, None (a sweep: ()) where the suite names none. `file_refs` lists the same files with the
    suite key each one is given at (for messages and the rehearsal's stand-in listing)."""

    checkpoint: Optional[Path] = None  # model.checkpoint
    sweep: tuple[Path, ...] = ()  # model.sweep[i].checkpoint, in the suite's order
    weak_checkpoint: Optional[Path] = None  # only where a method or the search runs the weak network
    weak_sweep: tuple[Path, ...] = ()
    text_encoder: Optional[Path] = None  # model.text_encoder.path
    vae: Optional[Path] = None
    metrics_weights: Optional[Path] = None  # metrics.weights (the feature extractor's)
    lpips_weights: Optional[Path] = None
    reference: Optional[Path] = None  # metrics.reference.path
    metadata: Optional[Path] = None  # benchmark.<name> from here on
    detector_config: Optional[Path] = None
    detector_checkpoint: Optional[Path] = None
    clip_weights: Optional[Path] = None
    prompts: Optional[Path] = None
    hps_python: Optional[Path] = None
    hps_base_model: Optional[Path] = None
    hps_checkpoint: Optional[Path] = None
    hps_config: Optional[Path] = None

    @classmethod
    def of(cls, refs) -> "SuiteFiles":
        single: dict = {}
        swept: dict = {"sweep": [], "weak_sweep": []}
        for r in refs:
            if r.index is None:
                single[r.slot] = r.path
            else:
                swept[r.slot].append(r.path)
        return cls(**single, **{k: tuple(v) for k, v in swept.items()})


@dataclass(frozen=True)
class LoadedSuite:
    suite: Suite
    source: Path  # the YAML file
    text: str  # its text, as read
    files: SuiteFiles = field(default_factory=SuiteFiles)  # the user files, resolved
    refs: tuple[FileRef, ...] = ()  # the same files with their suite keys (for messages)
    storage: str | None = None  # search.storage, ${VAR} expanded (the only copy with credentials)
    overrides: tuple[str, ...] = ()  # `sgbench run --set KEY=VALUE`, as given (already in `suite`)

    def derive(self, changes: Mapping[str, Any]) -> "LoadedSuite":
        """This suite with `changes` (suite key path -> plain value, as the YAML gives it) applied,
        checked again as `load_suite` checks a suite, its files resolved again (the one way to
        change a loaded suite: its configuration is frozen)."""
        return _resolved(_typed(_changed(self.suite, changes)), self.source, self.text, self.overrides)

    def snapshot(self) -> dict:
        """The suite as loaded (defaults filled in, credentials masked), for results/<run>/suite.yaml."""
        data = to_dict(self.suite)
        if data.get("search") and data["search"].get("storage"):
            data["search"]["storage"] = redact_url(data["search"]["storage"])
        return data


def parse_yaml(text: str, source: str):
    data = load_yaml(text, source)
    if not isinstance(data, dict):
        raise UserError(f"{source}: a suite is a YAML mapping (name:, model:, metrics:, ...), got {type(data).__name__}")
    return data


# Files that ship with sgbench, and the command that rebuilds each one.
SHIPPED = {
    "assets/quickstart/model.safetensors": "the shipped quickstart model: rebuild it with "
                                           "`sgbench train suites/train_quickstart.yaml` and copy "
                                           "runs/train_quickstart/model.safetensors here",
    "assets/quickstart/classifier.safetensors": "the shipped quickstart classifier: rebuild it with "
                                                "`sgbench train suites/train_classifier.yaml` and copy "
                                                "runs/train_classifier/classifier.safetensors here",
    "assets/quickstart/model_step1000.safetensors": "the shipped early quickstart checkpoint (AG's weak network): "
                                                    "rebuild it with `sgbench train suites/train_quickstart.yaml "
                                                    "--export-step 1000 OUT` and copy OUT here",
    "assets/t2i_shapes/model.safetensors": "the shipped T2I quickstart model: rebuild it with "
                                          "`sgbench train suites/train_t2i_shapes.yaml` and copy "
                                          "runs/t2i_shapes_train/model.safetensors here",
}


def _how(path: Path, default: str) -> str:
    try:
        rel = path.resolve().relative_to(package_dir()).as_posix()
    except ValueError:
        return default
    return SHIPPED.get(rel, default)


def file_refs(suite: Suite, base_dir: Path) -> list[FileRef]:
    """Every user file the suite needs, with the key path and how to supply it."""
    refs = []
    m = suite.model
    if m.checkpoint is not None:
        ck = resolve_path(m.checkpoint, base_dir)
        refs.append(FileRef(f"{ROOT}.model.checkpoint", ck, "file", _how(ck, HOW["checkpoint"]), "checkpoint"))
    for i, entry in enumerate(m.sweep):
        ck = resolve_path(entry.checkpoint, base_dir)
        refs.append(FileRef(f"{ROOT}.model.sweep[{i}].checkpoint", ck, "file", _how(ck, HOW["sweep"]), "sweep", i))
    if suite.uses_weak_network:
        if m.weak_checkpoint:
            refs.append(FileRef(f"{ROOT}.model.weak_checkpoint", resolve_path(m.weak_checkpoint, base_dir), "file",
                                HOW["weak_checkpoint"], "weak_checkpoint"))
        for i, entry in enumerate(m.weak_sweep):
            refs.append(FileRef(f"{ROOT}.model.weak_sweep[{i}].checkpoint", resolve_path(entry.checkpoint, base_dir),
                                "file", HOW["weak_checkpoint"], "weak_sweep", i))
    if m.text_encoder.get("path"):
        refs.append(FileRef(f"{ROOT}.model.text_encoder.path", resolve_path(str(m.text_encoder["path"]), base_dir),
                            "dir", HOW["text_encoder"], "text_encoder"))
    if m.vae:
        refs.append(FileRef(f"{ROOT}.model.vae", resolve_path(m.vae, base_dir), "dir", HOW["vae"], "vae"))
    b = suite.benchmark
    if b is not None:
        kinds = {"prompts": "any", "hps_base_model": "dir"}
        for key in BENCHMARKS[b.kind].files:
            if getattr(b, key):
                refs.append(FileRef(f"{ROOT}.benchmark.{key}", resolve_path(getattr(b, key), base_dir),
                                    kinds.get(key, "file"), HOW[key], key))
    mt = suite.metrics
    if mt.weights:
        w = resolve_path(mt.weights, base_dir)
        refs.append(FileRef(f"{ROOT}.metrics.weights", w, "file", _how(w, HOW.get(mt.extractor, HOW["weights"])),
                            "metrics_weights"))
    if mt.lpips is not None:
        w = resolve_path(mt.lpips.weights, base_dir)
        refs.append(FileRef(f"{ROOT}.metrics.lpips.weights", w, "file", HOW[f"lpips_{mt.lpips.net}"],
                            "lpips_weights"))
    if mt.reference is not None and mt.reference.path:
        refs.append(FileRef(f"{ROOT}.metrics.reference.path", resolve_path(mt.reference.path, base_dir), "any",
                            HOW["reference"], "reference"))
    return refs


def check_extractor(name: str) -> None:
    """The extractor must be registered in sgbench.metrics (checked here, before any work)."""
    try:
        from sgbench.metrics.extractors import available_extractors
    except ImportError:  # metrics stage not installed: the run fails later with its own message
        return
    known = available_extractors()
    if name not in known:
        raise UserError(f"{ROOT}.metrics.extractor: unknown extractor {name!r}; known: {', '.join(known)}")


def _typed(data: dict) -> Suite:
    suite = from_dict(Suite, data, ROOT)
    if suite.benchmark is None:
        check_extractor(suite.metrics.extractor)
    return suite


def _typed_with(data: dict, overrides) -> Suite:
    """The typed check of the file's data with the overrides applied; an error they cause names them."""
    if not overrides:
        return _typed(data)
    changed = ov.apply(data, overrides)  # its own errors name their override
    try:
        return _typed(changed)
    except UserError as e:
        named = ov.culprits(str(e), overrides)
        if not named:  # a check across keys (e.g. lpips.n_samples <= n_samples): the file's own error?
            try:
                _typed(data)
            except UserError as own:
                if str(own) == str(e):
                    raise e from None
            named = list(overrides)
        raise ov.blame(e, named) from None


def load_suite(path, check_files: bool = True, overrides=()) -> LoadedSuite:
    """YAML -> Suite, checked once; with check_files, every missing file is one error.
    overrides: `KEY=VALUE` texts (`sgbench run --set`, sgbench.config.overrides), applied to the
    file's data before the check."""
    parsed = ov.parse_all(overrides)
    source = command_line_file(path)  # a path, or a shipped suite: sgbench:suites/quickstart.yaml
    text = read_text_file(source, "suite file")
    data = parse_yaml(text, str(source))
    refuse_training_config(data, str(path))
    suite = _typed_with(data, parsed)
    try:
        loaded = _resolved(suite, source, text, tuple(o.text for o in parsed))
        if check_files:
            require_all(loaded.refs)
    except UserError as e:  # a file or variable an override names
        named = ov.culprits(str(e), parsed)
        if named:
            raise ov.blame(e, named) from None
        raise
    return loaded


def _resolved(suite: Suite, source: Path, text: str, overrides: tuple[str, ...]) -> LoadedSuite:
    """The checked suite with its files resolved (not yet required to exist)."""
    refs = file_refs(suite, source.resolve().parent)
    storage = None
    if suite.search is not None and suite.search.storage:
        storage = expand_vars(suite.search.storage, f"{ROOT}.search.storage")
        register_url(storage)
    return LoadedSuite(suite=suite, source=source, text=text, files=SuiteFiles.of(refs), refs=tuple(refs),
                       storage=storage, overrides=overrides)


def derive_suite(suite: Suite, changes: Mapping[str, Any]) -> Suite:
    """`suite` with `changes` (suite key path -> plain value) applied and checked again (a loaded
    suite: `LoadedSuite.derive`, which also resolves its files)."""
    return _typed(_changed(suite, changes))


def _changed(suite: Suite, changes: Mapping[str, Any]) -> dict:
    """The suite's plain data with `changes` (suite key path -> value) applied as `--set` applies
    its overrides."""
    edits = []
    for key, value in changes.items():
        steps = ov.key_steps(key.removeprefix(f"{ROOT}."))
        if not key.startswith(f"{ROOT}.") or steps is None:
            raise ValueError(f"not a suite key: {key!r}")  # programming error, not user input
        edits.append(ov.Override(text=key, steps=steps, value=value))
    return ov.apply(to_dict(suite), edits)
