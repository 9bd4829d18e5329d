"""Read a suite YAML file into a checked `Suite` with resolved paths, failing fast on bad input."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sgbench.config.files import FileRef, require_all, resolve_path
from sgbench.config.schema import AG_METHODS, Suite
from sgbench.config.typed import from_dict, load_yaml, read_text_file, to_dict
from sgbench.errors import UserError

ROOT = "suite"

# How to supply each kind of user file (shown next to a missing path).
HOW = {
    "checkpoint": "a model checkpoint (.pt/.safetensors): train one with `sgbench train`, or use the released "
                  "SiT/TREAD/MaskDiT weights, and set the path (or the ${...} variable) in the suite",
    "weak_checkpoint": "an earlier checkpoint of the same run, for autoguidance (keep early checkpoints when training)",
    "vae": "a local diffusers AutoencoderKL directory (stabilityai/sd-vae-ft-ema: config.json + "
           "diffusion_pytorch_model.safetensors), copied to this machine",
    "inception": "torch-fidelity's Inception weights weights-inception-2015-12-05-6726825d.pth (from the "
                 "torch-fidelity GitHub release), copied to this machine",
    "classifier": "an sgbench classifier (.safetensors): `sgbench train` with the classifier config",
    "weights": "the feature extractor's weights file",
    "reference": "the ADM reference batch (e.g. VIRTUAL_imagenet256_labeled.npz from openai/guided-diffusion), "
                 "a cached statistics .npz, or a folder of real images",
}


@dataclass
class LoadedSuite:
    suite: Suite
    source: Path  # the YAML file
    text: str  # its text, as read
    paths: dict[str, Path] = field(default_factory=dict)  # key path -> resolved file

    def path(self, key: str) -> Path | None:
        return self.paths.get(key)

    def snapshot(self) -> dict:
        """The suite as loaded (defaults filled in), for results/<run>/suite.yaml."""
        return to_dict(self.suite)


def parse_yaml(text: str, source: str):
    data = load_yaml(text, source)
    if not isinstance(data, dict):
        raise UserError(f"{source}: a suite is a YAML mapping (name:, model:, metrics:, ...), got {type(data).__name__}")
    return data


# Files that ship with sgbench, and the command that rebuilds each one.
SHIPPED = {
    "assets/quickstart/model.safetensors": "the shipped quickstart model: rebuild it with "
                                           "`sgbench train suites/train_quickstart.yaml`",
    "assets/quickstart/classifier.safetensors": "the shipped quickstart classifier: rebuild it with "
                                                "`sgbench train suites/train_classifier.yaml`",
    "assets/quickstart/model_step1000.safetensors": "the shipped early quickstart checkpoint (AG's weak network): "
                                                    "rebuild it with `sgbench train suites/train_quickstart.yaml "
                                                    "--export-step 1000 OUT`",
}


def _how(path: Path, default: str) -> str:
    import sgbench

    try:
        rel = path.resolve().relative_to(Path(sgbench.__file__).resolve().parent).as_posix()
    except ValueError:
        return default
    return SHIPPED.get(rel, default)


def file_refs(suite: Suite, base_dir: Path) -> list[FileRef]:
    """Every user file the suite needs, with the key path and how to supply it."""
    refs = []
    m = suite.model
    ck = resolve_path(m.checkpoint, base_dir)
    refs.append(FileRef(f"{ROOT}.model.checkpoint", ck, "file", _how(ck, HOW["checkpoint"])))
    uses_weak = any(x.method in AG_METHODS for x in suite.methods) or (
        suite.search is not None and suite.search.method in AG_METHODS)
    if m.weak_checkpoint and uses_weak:
        refs.append(FileRef(f"{ROOT}.model.weak_checkpoint", resolve_path(m.weak_checkpoint, base_dir), "file",
                            HOW["weak_checkpoint"]))
    if m.vae:
        refs.append(FileRef(f"{ROOT}.model.vae", resolve_path(m.vae, base_dir), "dir", HOW["vae"]))
    mt = suite.metrics
    if mt.weights:
        w = resolve_path(mt.weights, base_dir)
        refs.append(FileRef(f"{ROOT}.metrics.weights", w, "file", _how(w, HOW.get(mt.extractor, HOW["weights"]))))
    if mt.reference.path:
        refs.append(FileRef(f"{ROOT}.metrics.reference.path", resolve_path(mt.reference.path, base_dir), "any",
                            HOW["reference"]))
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


def load_suite(path, check_files: bool = True) -> LoadedSuite:
    """YAML -> Suite, checked once; with check_files, every missing file is one error."""
    source = Path(path).expanduser()
    text = read_text_file(source, "suite file")
    data = parse_yaml(text, str(source))
    if "benchmark" in data and "metrics" not in data:
        raise UserError(f"{source} is a text-to-image suite: run it with `sgbench t2i run {source}`")
    suite = from_dict(Suite, data, ROOT)
    check_extractor(suite.metrics.extractor)
    base_dir = source.resolve().parent
    refs = file_refs(suite, base_dir)
    if check_files:
        require_all(refs)
    return LoadedSuite(suite=suite, source=source, text=text, paths={r.key: r.path for r in refs})
