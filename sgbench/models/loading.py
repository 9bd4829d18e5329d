"""Build a Denoiser from a checkpoint of any supported codebase.

Formats (detected from the file, never from its name alone):
  * sgbench safetensors: metadata key 'sgbench' = JSON {"family", "config", "parametrization", ...}
    -> needs nothing but the path (`save_sgbench_safetensors` writes them).
  * sgbench train `.pt`: {'model', 'ema', 'config'} with 'config' the same JSON-able dict.
  * facebookresearch/DiT (DDPM eps), willisma/SiT (velocity): a plain state dict, or their train
    files {'model', 'ema', 'opt', 'args'} with an argparse Namespace under 'args'.
  * CompVis/tread: {'model_state_dict', 'ema_state_dict', 'optimizer_state_dict', 'step'}, keys
    prefixed 'model.' (its EDMPrecond wrapper). EDM and RF training give identical layouts, so the
    parametrization must come from the spec.
  * Anima-Lab/MaskDiT: {'model', 'ema', 'opt', 'args'}, keys prefixed 'model.' (EDMPrecond).
  * any other safetensors file holding one of the state dicts above (needs `arch`).

Files are read with `torch.load(weights_only=True)`, which also admits argparse Namespaces (plain
attribute bags: rebuilding one runs no code); anything else pickled needs `trust_checkpoint`.

Parametrization (`resolve_parametrization`): what the file records wins; an explicit value that
contradicts it is an error; a file that records nothing needs an explicit value. Records are the
sgbench metadata, and the train files' own `args` (SiT's transport arguments; DiT's train.py has
none and trains DDPM; Anima-Lab/MaskDiT train files are EDM). Nothing is guessed from names.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import torch
import torch.nn as nn

from sgbench.errors import UserError, require_file
from sgbench.models.denoiser import PARAMETRIZATIONS, Denoiser, make_denoiser
from sgbench.models.dit import Route
from sgbench.models.registry import backbone_families, build_backbone, get_backbone_family, preset_family

METADATA_KEY = "sgbench"
TRUST_HINT = "sgbench does not unpickle files, since unpickling runs code (docs/reliability.md, 'What sgbench trusts')"
# read without trust: argparse.Namespace is rebuilt by setting attributes, never by running code
_SAFE_GLOBALS = [argparse.Namespace]
# wrapper prefixes stripped when every key carries them: DDP, torch.compile, EDMPrecond, Denoiser
_PREFIXES = ("module.", "_orig_mod.", "model.", "backbone.")
# codebase names users may give as `family`: SiT and tread checkpoints are DiT-family layouts
# ('t2i_dit': the T2I family's name in early sgbench files)
FAMILY_ALIASES = {"sit": "dit", "tread": "dit", "t2i_dit": "t2i"}


@dataclass
class ModelSpec:
    """What to load. Fields left None are taken from sgbench metadata or inferred from the weights."""

    checkpoint: Optional[str] = None  # None: randomly initialised `arch` (demos, FLOP counting)
    arch: Optional[str] = None  # 'SiT-XL/2', 'DiT-B/2', 'MaskDiT-XL/2'; not needed for sgbench files
    family: str = "auto"  # dit | maskdit | t2i | auto (aliases: sit, tread -> dit)
    parametrization: str = "auto"  # velocity | rf | edm | ddpm | auto
    routes: Optional[Sequence[Any]] = None  # e.g. ['2-24']; None = from metadata (else none)
    num_classes: Optional[int] = None
    input_size: Optional[int] = None  # latent side
    in_channels: Optional[int] = None
    learn_sigma: Optional[bool] = None  # None / "auto": from final_layer.linear's output size
    use_ema: bool = True
    trust_checkpoint: bool = False  # allow full pickles (torch.load(weights_only=False))
    config: dict = field(default_factory=dict)  # further backbone config overrides (e.g. num_heads)
    text_encoder: dict = field(default_factory=dict)  # T2I: overrides of the stored text encoder spec (path)
    sigma_min: float = 0.002  # EDM: t is clamped to sigma in [sigma_min, sigma_max]
    sigma_max: float = 80.0
    sigma_data: float = 0.5

    def __post_init__(self):
        for name in ("num_classes", "input_size", "in_channels", "learn_sigma"):
            if getattr(self, name) == "auto":  # YAML-friendly spelling of None
                setattr(self, name, None)
        self.parametrization = self.parametrization or "auto"
        self.family = FAMILY_ALIASES.get(self.family or "auto", self.family or "auto")
        if self.parametrization not in ("auto", *PARAMETRIZATIONS):
            raise UserError(
                f"parametrization must be one of auto, {', '.join(PARAMETRIZATIONS)}; got {self.parametrization!r}"
            )
        if self.family != "auto" and self.family not in backbone_families():
            raise UserError(f"family must be one of auto, {', '.join(backbone_families())}; got {self.family!r}")
        if self.routes is not None:
            if isinstance(self.routes, (str, dict)):
                self.routes = [self.routes]
            self.routes = [str(Route.parse(r)) for r in self.routes]
        if self.checkpoint is None and self.arch is None:
            raise UserError("a model needs a checkpoint path or an arch (e.g. SiT-XL/2)")


# ---- reading files ---------------------------------------------------------------------------

@dataclass
class Checkpoint:
    state_dict: dict
    fmt: str  # sgbench-safetensors | safetensors | sgbench-train | dit-train | maskdit | tread | plain
    meta: Optional[dict] = None  # sgbench metadata {"family", "config", "parametrization", ...}
    edm_wrapped: bool = False  # keys carried EDMPrecond's 'model.' prefix
    args: Optional[dict] = None  # a train file's own 'args' (argparse Namespace or dict), as a dict
    path: str = ""
    entry: Optional[str] = None  # the top-level key the weights came from ('ema', 'model_state_dict', ...)
    step: Optional[int] = None  # the training iteration the file records (None: it records none)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


def read_checkpoint(path, use_ema: bool = True, trust: bool = False, lazy: bool = False) -> Checkpoint:
    """Read any supported file into a bare state dict plus whatever metadata it carries.

    `lazy`: only what describes the file (safetensors: metadata and tensor shapes on the meta
    device; torch files are memory-mapped), for checks before anything is built."""
    p = require_file(path, "checkpoint")
    if p.suffix == ".safetensors":
        return _read_safetensors(p, lazy)
    try:
        obj = _torch_load(p, trust, lazy)
    except pickle.UnpicklingError as e:
        if not trust and ("Unsupported global" in str(e) or "not an allowed global" in str(e)):
            found = re.search(r"GLOBAL ([\w.]+)", str(e))
            what = found.group(1) if found else "a Python object"
            raise UserError(
                f"checkpoint {p} holds {what} besides tensors, plain containers and argparse Namespaces, "
                f"which torch.load(weights_only=True) refuses; {TRUST_HINT}"
            ) from None
        raise UserError(f"cannot read checkpoint {p}: {_one_line(e)}") from None
    except Exception as e:  # corrupt, truncated, not a torch file
        raise UserError(f"cannot read checkpoint {p}: {_one_line(e)}") from None
    return _select(obj, p, use_ema)


def _torch_load(p: Path, trust: bool, mmap: bool):
    with torch.serialization.safe_globals(_SAFE_GLOBALS):
        if mmap:
            try:
                return torch.load(p, map_location="cpu", weights_only=not trust, mmap=True)
            except RuntimeError:  # legacy (non-zip) torch files cannot be memory-mapped
                pass
        return torch.load(p, map_location="cpu", weights_only=not trust)


def _read_safetensors(p: Path, lazy: bool = False) -> Checkpoint:
    try:
        from safetensors import safe_open

        with safe_open(str(p), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            sd = {k: (torch.empty(f.get_slice(k).get_shape(), device="meta") if lazy else f.get_tensor(k))
                  for k in f.keys()}
    except Exception as e:
        raise UserError(f"cannot read safetensors checkpoint {p}: {_one_line(e)}") from None
    meta = None
    if METADATA_KEY in metadata:
        try:
            meta = json.loads(metadata[METADATA_KEY])
        except json.JSONDecodeError as e:
            raise UserError(f"checkpoint {p}: metadata '{METADATA_KEY}' is not valid JSON ({e})") from None
        _check_meta(meta, p)
    sd, edm = _strip_prefixes(sd)
    return Checkpoint(sd, "sgbench-safetensors" if meta else "safetensors", meta, edm, path=str(p),
                      step=_meta_step(meta))


def _meta_step(meta: Optional[dict]) -> Optional[int]:
    """The training iteration sgbench metadata records: `train.steps` (`sgbench train` exports),
    else `train_steps` (files written by `save_sgbench_safetensors(extra=...)`)."""
    if not meta:
        return None
    train = meta.get("train")
    value = train.get("steps") if isinstance(train, dict) else None
    return _as_step(meta.get("train_steps") if value is None else value)


def _as_step(value) -> Optional[int]:
    """A recorded iteration, or None for anything that is not one (such a file records no step:
    a sweep then asks for it, and nothing else reads it)."""
    if torch.is_tensor(value) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return int(value) if value == int(value) else None


def _check_meta(meta, p) -> None:
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict) or "family" not in meta:
        raise UserError(f"checkpoint {p}: sgbench metadata must be a dict with 'family' and 'config'")


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _select(obj, p: Path, use_ema: bool) -> Checkpoint:
    if not isinstance(obj, dict):
        raise UserError(f"checkpoint {p} holds a {type(obj).__name__}, not a state dict")

    entry = None

    def pick(ema_key, model_key):
        nonlocal entry
        has_ema = obj.get(ema_key) is not None  # sgbench train files store 'ema': None without EMA
        key = ema_key if (use_ema and has_ema) or obj.get(model_key) is None else model_key
        if not _is_state_dict(obj.get(key)):
            raise UserError(f"checkpoint {p}: entry '{key}' is not a state dict")
        entry = key
        return obj[key]

    meta = None
    if obj.get("ema_state_dict") is not None or obj.get("model_state_dict") is not None:
        sd, fmt = pick("ema_state_dict", "model_state_dict"), "tread"
    elif obj.get("ema") is not None or obj.get("model") is not None:
        sd = pick("ema", "model")
        if isinstance(obj.get("config"), dict):
            fmt, meta = "sgbench-train", _train_meta(obj["config"])
            _check_meta(meta, p)
        elif next(iter(sd)).startswith("model.") and any(".decoder_blocks." in k for k in sd):
            fmt = "maskdit"
        else:
            fmt = "dit-train"
    elif "state_dict" in obj and _is_state_dict(obj["state_dict"]):
        sd, fmt = obj["state_dict"], "plain"
    elif _is_state_dict(obj):
        sd, fmt = obj, "plain"
    else:
        keys = ", ".join(list(map(str, obj))[:6])
        raise UserError(f"checkpoint {p} holds no recognised state dict (top-level keys: {keys})")
    sd, edm = _strip_prefixes(sd)
    args = obj.get("args")
    args = vars(args) if isinstance(args, argparse.Namespace) else args if isinstance(args, dict) else None
    # sgbench train and CompVis/tread train files record their iteration as 'step'
    step = _as_step(obj.get("step"))
    return Checkpoint(sd, fmt, meta, edm, args, str(p), entry, step)


def _train_meta(config: dict) -> dict:
    """sgbench train files: 'config' is the metadata dict, or a bare backbone config."""
    if "family" in config and isinstance(config.get("config"), dict):
        return dict(config)
    cfg = dict(config)
    return {"family": cfg.pop("family", "dit"), "parametrization": cfg.pop("parametrization", "velocity"), "config": cfg}


def _strip_prefixes(sd: dict) -> tuple[dict, bool]:
    edm = False
    changed = True
    while changed and sd:
        changed = False
        for pre in _PREFIXES:
            if all(k.startswith(pre) for k in sd):
                sd = {k[len(pre):]: v for k, v in sd.items()}
                edm = edm or pre == "model."
                changed = True
    return sd, edm


# ---- architecture from spec + weights ----------------------------------------------------------

def _family_of(spec: ModelSpec, ck: Optional[Checkpoint]) -> str:
    """The spec's family, else the file's record, else the layout of its weights, else the family
    whose presets name `arch` (DiT/SiT by default)."""
    if spec.family != "auto":
        return spec.family
    if ck is not None and ck.meta:
        return FAMILY_ALIASES.get(ck.meta["family"], ck.meta["family"])
    if ck is not None:
        for name in backbone_families():
            detect = get_backbone_family(name).detect
            if detect is not None and detect(ck.state_dict):
                return name
    owner = preset_family(spec.arch) if spec.arch else None
    return owner.name if owner is not None else "dit"


def _preset_config(family: str, spec: ModelSpec) -> dict:
    if spec.arch is None:
        raise UserError(
            "checkpoint has no sgbench metadata: set arch (e.g. SiT-XL/2, DiT-B/2, MaskDiT-XL/2) "
            f"and, if not the defaults, num_classes/input_size"
        )
    cfg = get_backbone_family(family).make_config(spec.arch).to_dict()
    cfg.update(spec.config)  # unknown keys fail where the backbone is built, as one line
    return cfg


def _config_from_weights(family: str, spec: ModelSpec, sd: Mapping[str, torch.Tensor]) -> dict:
    """The preset's config with the fields the weights determine (explicit `spec.config` wins)."""
    infer = get_backbone_family(family).config_from_weights
    if infer is None:
        raise UserError(f"{family} checkpoints must be sgbench files (with '{METADATA_KEY}' metadata)")
    base = _preset_config(family, spec)
    for k, v in infer(base, sd).items():
        if k not in spec.config and v is not None:
            base[k] = v
    return base


def _spec_fields(spec: ModelSpec, family: str) -> dict:
    """The architecture fields the user set by name (suite `model:` keys, CLI options)."""
    out = {name: getattr(spec, name) for name in ("num_classes", "input_size", "in_channels", "learn_sigma")
           if getattr(spec, name) is not None}
    if spec.routes is not None and get_backbone_family(family).takes_routes:
        out["routes"] = list(spec.routes)
    return out


def _refuse_contradictions(recorded: dict, spec: ModelSpec, family: str) -> None:
    """An sgbench file records its architecture; a given value that differs is an error, never an
    override (routes, for one, do not show in the weights, so nothing later would catch it)."""
    for name, given in {**spec.config, **_spec_fields(spec, family)}.items():
        have = recorded.get(name)
        if have is None or name == "routes" and not have:
            continue  # not recorded (a file of a dense model records no routes: adding them is not a contradiction)
        same = _route_text(have) == _route_text(given) if name == "routes" else have == given
        if not same:
            raise UserError(f"checkpoint {spec.checkpoint} records {name}={have!r}, but {given!r} was given: "
                            f"remove the explicit {name} (or set it to the recorded value)")


def _route_text(routes) -> list[str]:
    return sorted(str(Route.parse(r)) for r in routes)


def _apply_spec(cfg: dict, spec: ModelSpec, family: str) -> dict:
    """Explicit spec fields fill in what the file does not record (checked against a record first); the weights then verify them."""
    if spec.routes and not get_backbone_family(family).takes_routes:
        raise UserError(f"{family} masks before its encoder; it takes no routes")
    return {**cfg, **_spec_fields(spec, family)}


def _describe(model: nn.Module, arch: Optional[str]) -> str:
    cfg = getattr(model, "config", None)
    text = cfg.describe() if hasattr(cfg, "describe") else type(model).__name__
    return f"{arch} = {text}" if arch else text


def _fmt_keys(keys: list, n: int = 3) -> str:
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def _mismatch_hints(expected, sd, missing, extra) -> list:
    """Plain-words reading of the usual mismatches: classes, patch size, width, depth, family."""
    hints = []
    key, xkey = "y_embedder.embedding_table.weight", "x_embedder.proj.weight"
    if key in sd and key in expected and xkey in expected and sd[key].dim() == 2:
        width = expected[xkey].shape[0]  # DiT's table is [classes+1, width], MaskDiT's [width, classes]
        got, want = tuple(sd[key].shape), tuple(expected[key].shape)
        axis = 1 if want[1] == width else 0
        if got[axis] == want[axis] and got[1 - axis] != want[1 - axis]:
            n = got[0] - 1 if axis == 1 else got[1]  # DiT rows include the null class
            hints.append(f"{n} classes in the checkpoint")
    key = "x_embedder.proj.weight"
    if key in sd and key in expected and sd[key].dim() == 4:
        got, want = tuple(sd[key].shape), tuple(expected[key].shape)
        if got[2:] != want[2:]:
            hints.append(f"patch size {got[2]} in the checkpoint")
        if got[0] != want[0]:
            hints.append(f"hidden size {got[0]} in the checkpoint")
        if got[1] != want[1]:
            hints.append(f"{got[1]} input channels in the checkpoint")
    blocks = {int(k.split(".")[1]) for k in sd if k.startswith("blocks.") and k.split(".")[1].isdigit()}
    want_blocks = {int(k.split(".")[1]) for k in expected if k.startswith("blocks.")}
    if blocks and len(blocks) != len(want_blocks):
        hints.append(f"{len(blocks)} blocks in the checkpoint")
    if any(k.startswith("decoder_") for k in missing) and not any(k.startswith("decoder_") for k in sd):
        hints.append("the checkpoint has no MaskDiT decoder")
    if any(k.startswith("decoder_") for k in extra):
        hints.append("the checkpoint is a MaskDiT (family: maskdit)")
    return hints


def check_state_dict(model: nn.Module, sd: Mapping[str, torch.Tensor], where: str, arch: Optional[str] = None) -> None:
    """Raise a one-line UserError naming the first mismatches if `sd` does not fit `model`."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    extra = [k for k in sd if k not in expected]
    shapes = [k for k in expected if k in sd and tuple(sd[k].shape) != tuple(expected[k].shape)]
    if not (missing or extra or shapes):
        return
    parts = []
    if missing:
        parts.append(f"missing {_fmt_keys(missing)}")
    if extra:
        parts.append(f"unexpected {_fmt_keys(extra)}")
    if shapes:
        parts.append("shapes (checkpoint vs model) " + _fmt_keys([f"{k} {tuple(sd[k].shape)} vs {tuple(expected[k].shape)}" for k in shapes]))
    hints = _mismatch_hints(expected, sd, missing, extra)
    hint = f" ({'; '.join(hints)})" if hints else ""
    raise UserError(f"checkpoint {where} does not fit {_describe(model, arch)}: {'; '.join(parts)}{hint}")


# ---- parametrization: recorded by the file, or given; never guessed ----------------------------

#: which training code produces which parametrization (the error of an unrecorded file lists it)
TRAINED_BY = {
    "edm": "CompVis/tread train.py, Anima-Lab/MaskDiT",
    "rf": "CompVis/tread rf.py",
    "velocity": "willisma/SiT, sgbench train",
    "ddpm": "facebookresearch/DiT",
}


@dataclass(frozen=True)
class Recorded:
    value: str  # a PARAMETRIZATIONS name
    source: str  # where the file records it, for messages


def _sit_transport(args: dict) -> Recorded:
    """willisma/SiT train args: `path_type` and `prediction` (its transport) say what was trained."""
    path_type, prediction = args.get("path_type"), args.get("prediction")
    if (path_type, prediction) != ("Linear", "velocity"):
        raise UserError(
            f"this willisma/SiT train file records path_type {path_type!r} and prediction {prediction!r}; "
            "sgbench samples SiT's Linear path with velocity prediction only"
        )
    return Recorded("velocity", "its willisma/SiT train args (path_type Linear, prediction velocity)")


def recorded_parametrization(ck: Checkpoint) -> Optional[Recorded]:
    """The parametrization a file records about itself, or None (plain state dicts, tread files)."""
    if ck.meta is not None:
        value = ck.meta.get("parametrization")
        if value is None:
            return None
        if value not in PARAMETRIZATIONS:
            raise UserError(f"checkpoint {ck.path}: metadata parametrization {value!r} is not one of {', '.join(PARAMETRIZATIONS)}")
        return Recorded(value, "its sgbench metadata")
    args = ck.args or {}
    if ck.fmt == "maskdit" and args:
        # Anima-Lab's train files: every shipped config and released model is `precond: edm`
        return Recorded("edm", "its Anima-Lab/MaskDiT train-file format (EDM)")
    if ck.fmt == "dit-train" and args:
        if "path_type" in args or "prediction" in args:
            return _sit_transport(args)
        if str(args.get("model", "")).startswith("DiT-"):
            # facebookresearch/DiT's train.py: --model DiT-*, no transport args, DDPM only
            return Recorded("ddpm", "its facebookresearch/DiT train args (DDPM)")
    return None


def _no_record_message(ck: Checkpoint) -> str:
    what = {"tread": "a CompVis/tread training file", "plain": "a plain state dict", "safetensors": "a safetensors file",
            "dit-train": "a DiT/SiT-style train file", "maskdit": "a MaskDiT-layout file without its train args"}
    choices = "; ".join(f"{p} ({TRAINED_BY[p]})" for p in PARAMETRIZATIONS)
    return (f"checkpoint {ck.path} ({what.get(ck.fmt, ck.fmt)}) does not record how it was trained: set parametrization "
            f"(suite: model.parametrization, CLI: --parametrization) to one of {choices} "
            f"(`sgbench convert SRC OUT.safetensors --parametrization P` records it once)")


def checkpoint_facts(spec: ModelSpec) -> Checkpoint:
    """The file's own description without its weights (lazy read: metadata, recorded step, tensor
    shapes), after the checks of `check_model_spec`."""
    ck = read_checkpoint(spec.checkpoint, spec.use_ema, spec.trust_checkpoint, lazy=True)
    resolve_parametrization(spec, ck)
    return ck


def check_model_spec(spec: ModelSpec) -> str:
    """What `load_denoiser` would refuse about the file itself, checked cheaply before anything is
    built (a run directory, a model): readable, recognised, parametrization recorded or given and
    consistent. Returns the parametrization."""
    ck = read_checkpoint(spec.checkpoint, spec.use_ema, spec.trust_checkpoint, lazy=True) if spec.checkpoint else None
    return resolve_parametrization(spec, ck)


def resolve_parametrization(spec: ModelSpec, ck: Optional[Checkpoint]) -> str:
    """Recorded wins; an explicit value must agree with it; no record and no value is an error."""
    explicit = None if spec.parametrization == "auto" else spec.parametrization
    if ck is None:
        return explicit or "velocity"  # a randomly initialised `arch` (demos, FLOP counting)
    rec = recorded_parametrization(ck)
    if rec is not None:
        if explicit is not None and explicit != rec.value:
            raise UserError(
                f"checkpoint {ck.path} records parametrization {rec.value} ({rec.source}), but {explicit} was given: "
                f"remove the explicit parametrization (or set it to {rec.value})"
            )
        return rec.value
    if explicit is None:
        raise UserError(_no_record_message(ck))
    return explicit


# ---- public entry points -----------------------------------------------------------------------

def load_backbone(spec: ModelSpec) -> tuple[nn.Module, Optional[Checkpoint], str]:
    """(backbone with weights loaded, checkpoint contents or None, family)."""
    ck = read_checkpoint(spec.checkpoint, spec.use_ema, spec.trust_checkpoint) if spec.checkpoint else None
    family = _family_of(spec, ck)
    if ck is not None and ck.meta:
        recorded = FAMILY_ALIASES.get(ck.meta["family"], ck.meta["family"])
        if recorded != family:
            raise UserError(f"checkpoint {spec.checkpoint} holds a {ck.meta['family']} model, not {family}")
        cfg = dict(ck.meta["config"])
        _refuse_contradictions(cfg, spec, family)
        cfg.update(spec.config)
    elif ck is not None:
        cfg = _config_from_weights(family, spec, ck.state_dict)
    else:
        cfg = _preset_config(family, spec)
    cfg = _apply_spec(cfg, spec, family)
    if ck is None:
        return build_backbone(family, cfg), ck, family
    model = build_fitting(family, cfg, ck.state_dict, spec.checkpoint, spec.arch)
    model.load_state_dict(ck.state_dict, strict=True)
    return model, ck, family


class _LargerThanFile(Exception):
    pass


def build_fitting(family: str, cfg: dict, sd: Mapping[str, torch.Tensor], where, arch: Optional[str] = None) -> nn.Module:
    """Build the backbone `cfg` describes only once it is known to fit the file's tensors: first on
    the meta device (no memory), stopped once it registers far more parameters than the file holds
    (ordinary mismatches still get `check_state_dict`'s precise message), then checked shape by shape. A config (metadata or spec) declaring a huge width or depth
    is refused before anything is allocated."""
    count, limit = [0], 4 * len(sd) + 64

    def hook(module, name, param):
        count[0] += 1
        if count[0] > limit:
            raise _LargerThanFile

    handle = torch.nn.modules.module.register_module_parameter_registration_hook(hook)
    try:
        with torch.device("meta"):
            probe = build_backbone(family, cfg)
    except _LargerThanFile:
        raise UserError(f"checkpoint {where} does not fit its configuration: the {family} model it describes has "
                        f"over {limit} parameter tensors, the file {len(sd)}") from None
    finally:
        handle.remove()
    check_state_dict(probe, sd, where, arch)
    return build_backbone(family, cfg)


def load_denoiser(spec: ModelSpec, device="cpu") -> Denoiser:
    """Build the backbone, load its weights and wrap it in the Denoiser of its parametrization."""
    model, ck, family = load_backbone(spec)
    param = resolve_parametrization(spec, ck)
    fam = get_backbone_family(family)
    edm_kw = dict(sigma_min=spec.sigma_min, sigma_max=spec.sigma_max, sigma_data=spec.sigma_data) if param == "edm" else {}
    if fam.make_denoiser is not None:
        den = fam.make_denoiser(model, param, spec=spec, meta=ck.meta if ck else None, device=device, **edm_kw)
    else:
        c = model.config
        den = make_denoiser(model, param, c.num_classes, (c.in_channels, c.input_size, c.input_size), **edm_kw)
    den = den.to(device).eval()
    den.requires_grad_(False)
    return den


def sgbench_metadata(model: nn.Module, parametrization: Optional[str] = None, extra: Optional[dict] = None) -> dict:
    """The metadata dict sgbench files carry (also the 'config' entry of sgbench train `.pt` files)."""
    if isinstance(model, Denoiser):
        parametrization = parametrization or model.parametrization
        model = model.backbone
    if parametrization not in PARAMETRIZATIONS:
        raise UserError(f"parametrization must be one of {', '.join(PARAMETRIZATIONS)}, got {parametrization!r}")
    family = getattr(model, "family", None)
    if family is None or not hasattr(getattr(model, "config", None), "to_dict"):
        raise UserError(f"{type(model).__name__} has no `family` / `config.to_dict()`; cannot describe it")
    meta = {"format": 1, "family": family, "config": model.config.to_dict(), "parametrization": parametrization}
    meta.update(extra or {})
    return meta


def save_sgbench_safetensors(path, model: nn.Module, parametrization: Optional[str] = None, extra: Optional[dict] = None) -> Path:
    """Write `model` (a backbone or a Denoiser) as safetensors with sgbench metadata, atomically.

    `extra` (JSON-able) is stored in the metadata too, e.g. {"train_steps": 5000, "dataset": "shapes"}.
    """
    from safetensors.torch import save_file

    meta = sgbench_metadata(model, parametrization, extra)
    backbone = model.backbone if isinstance(model, Denoiser) else model
    try:
        text = json.dumps(meta)
    except TypeError as e:
        raise UserError(f"checkpoint metadata must be JSON-serialisable: {e}") from None
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in backbone.state_dict().items()}
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    try:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: text})
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # safetensors creates 0600 files; make them ordinary
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def read_sgbench_metadata(path) -> Optional[dict]:
    """The 'sgbench' metadata of a safetensors file (None if it has none); cheap, reads no tensors."""
    p = require_file(path, "checkpoint")
    if p.suffix != ".safetensors":
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(p), framework="pt", device="cpu") as f:
            text = (f.metadata() or {}).get(METADATA_KEY)
    except Exception as e:
        raise UserError(f"cannot read safetensors checkpoint {p}: {_one_line(e)}") from None
    if text is None:
        return None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"checkpoint {p}: metadata '{METADATA_KEY}' is not valid JSON ({e})") from None
    _check_meta(meta, p)
    return meta
