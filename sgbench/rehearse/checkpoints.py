"""Checkpoint stand-ins: a random network of the suite's architecture in the layout its codebase
writes, so the real loader reads it as it would read the user's file (trust flag included).

Layouts (`LAYOUTS`; the loader's `read_checkpoint` detects them from the content):
    sgbench      sgbench safetensors with 'sgbench' metadata (family, config, parametrization)
    tread        CompVis/tread training file {model,ema,optimizer}_state_dict + step, keys 'model.'
                 (EDMPrecond); records no parametrization
    sit, dit     willisma/SiT, facebookresearch/DiT released file: a plain state dict
    dit-train    SiT/DiT train file {'model', 'ema', 'opt', 'args'}; 'args' an argparse Namespace
    maskdit      Anima-Lab/MaskDiT train file {'model', 'ema', 'opt', 'args'}, keys 'model.'
    sgbench-train  `sgbench train`'s step_XXXXXXX.pt {'model', 'ema', 'opt', 'step', 'config'}, 'config'
                 the model's metadata (family, config, parametrization): a .pt that needs no arch
`declared_layout` reads which one a suite declares from its model fields and the file extension.
Weights are drawn from a seed (the weak checkpoint gets another), shapes from the config; model
and EMA entries share their tensors, so a file is the size of one copy of the weights. The
training iteration is recorded where the layout records one (`STEP_LAYOUTS`: sgbench metadata
`train_steps`, as `sgbench convert` writes it; tread's `step`); the others record none, as the
released files and the SiT/DiT/MaskDiT train files do.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Optional

import torch


LAYOUTS = {
    "sgbench": "sgbench safetensors (metadata: family, config, parametrization)",
    "tread": "CompVis/tread training file ({model,ema,optimizer}_state_dict, 'model.' keys)",
    "sit": "willisma/SiT state dict",
    "dit": "facebookresearch/DiT state dict",
    "dit-train": "SiT/DiT train file ('model', 'ema', 'opt', 'args' = argparse Namespace)",
    "maskdit": "Anima-Lab/MaskDiT train file ('model', 'ema', 'opt', 'args' = argparse Namespace, 'model.' keys)",
    "sgbench-train": "sgbench train checkpoint ('model', 'ema', 'opt', 'step', 'config' = the model's metadata)",
}
STEP_LAYOUTS = ("sgbench", "tread", "sgbench-train")  # the layouts that record a training iteration
TRAIN_FILE_STEP = 400000  # tread and sgbench train files always record one; a stand-in outside a sweep gets this
# what each codebase trains, for a stand-in that must record a parametrization the suite leaves open
# (a SiT-based arch, the paper's masking model included, is a flow-matching velocity model)
NATURAL_PARAMETRIZATION = {"sit": "velocity", "dit": "ddpm", "maskdit": "edm", "t2i": "velocity"}


def is_maskdit(family: Optional[str], arch: Optional[str]) -> bool:
    """The loader's rule (`models.loading`): family maskdit, or a MaskDiT preset as the arch."""
    from sgbench.models.maskdit import MASKDIT_PRESETS

    return family == "maskdit" or (family in (None, "auto") and bool(arch) and
                                   (arch.startswith("MaskDiT-") or arch in MASKDIT_PRESETS))


def declared_layout(path: Path, family: Optional[str], arch: Optional[str], parametrization: Optional[str],
                    trust: bool) -> str:
    """The layout a suite's model section declares: `.safetensors` -> sgbench; otherwise the
    codebase named by `family` (tread, sit, dit, maskdit) or implied by the arch and the
    parametrization (rf/edm DiT-family files come from CompVis/tread); SiT/DiT files are the
    released state dicts, or their train files when the suite trusts the checkpoint; without an
    arch, `sgbench train`'s checkpoint (the only .pt that records its architecture)."""
    if Path(path).suffix == ".safetensors":
        return "sgbench"
    if is_maskdit(family, arch):
        return "maskdit"
    if family == "tread" or (family in (None, "auto", "dit") and parametrization in ("rf", "edm")):
        return "tread"
    if not arch:
        return "sgbench-train"
    codebase = family if family in ("sit", "dit") else ("sit" if arch.startswith("SiT-") else "dit")
    return "dit-train" if trust else codebase


POOL = 1 << 24  # random values drawn once per stand-in; tensors take seeded windows of them


def random_state_dict(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Deterministic random weights of `module`'s shapes (it may live on the meta device):
    matrices N(0, 1/fan_in), biases 0, other vectors (norm scales) 1, so activations stay O(1).
    Each matrix is a window of one seeded pool of normal values at a seeded offset: drawing 675M
    values for a SiT-XL/2 one by one takes ~10 s on a CPU core, the windows well under one."""
    g = torch.Generator().manual_seed(seed)
    pool = torch.randn(POOL, generator=g)
    out = {}
    for name, t in module.state_dict().items():
        if not t.is_floating_point():
            out[name] = torch.zeros(t.shape, dtype=t.dtype)
        elif name.endswith("bias"):
            out[name] = torch.zeros(t.shape)
        elif t.dim() < 2:
            out[name] = torch.ones(t.shape)
        else:
            out[name] = (_window(pool, t.numel(), g) / math.sqrt(max(1, t[0].numel()))).reshape(t.shape)
    return out


def _window(pool: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """n consecutive pool values from a seeded offset, wrapping around (a view where possible)."""
    off = int(torch.randint(len(pool), (1,), generator=g))
    if off + n <= len(pool):
        return pool[off : off + n]
    if n <= len(pool):
        return torch.cat([pool[off:], pool[: off + n - len(pool)]])
    return pool.repeat(-(-(off + n) // len(pool)))[off : off + n]


def random_backbone(family: str, config: dict, seed: int) -> torch.nn.Module:
    """The registered backbone of `config`, built without its (slow) initialisation, then filled
    with `random_state_dict` weights (a SiT-XL/2 takes seconds instead of ~15 s)."""
    from sgbench.models.registry import build_backbone

    with torch.device("meta"):
        model = build_backbone(family, config)
    model.load_state_dict(random_state_dict(model, seed), assign=True)
    return model.eval()


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def train_args(arch: Optional[str], config: dict) -> argparse.Namespace:
    """The argparse Namespace willisma/SiT's or facebookresearch/DiT's train.py stores under 'args'
    (their argument names and defaults; SiT's transport arguments record velocity prediction)."""
    arch = arch or "SiT-XL/2"
    args = dict(model=arch, image_size=8 * int(config.get("input_size", 32)), num_classes=int(config.get("num_classes", 1000)),
                epochs=1400, global_batch_size=256, global_seed=0, vae="ema", num_workers=4, log_every=100,
                ckpt_every=50_000, data_path="/path/to/imagenet/train", results_dir="results")
    if arch.startswith("SiT-"):
        args.update(path_type="Linear", prediction="velocity", loss_weight=None, sample_eps=None, train_eps=None,
                    cfg_scale=4.0, sample_every=10_000, wandb=False, ckpt=None)
    return argparse.Namespace(**args)


def maskdit_args(arch: Optional[str], config: dict) -> argparse.Namespace:
    """The Namespace Anima-Lab/MaskDiT's training stores under 'args' (EDM preconditioning)."""
    return argparse.Namespace(model_type=(arch or "MaskDiT-XL/2").replace("MaskDiT-", "DiT-"), precond="edm",
                              mask_ratio=0.5, mae_loss_coef=0.1, num_classes=int(config.get("num_classes", 1000)),
                              input_size=int(config.get("input_size", 32)), use_fp16=True)


def write_checkpoint(path, layout: str, family: str, config: dict, parametrization: Optional[str], seed: int,
                     arch: Optional[str] = None, extra: Optional[dict] = None, step: Optional[int] = None) -> Path:
    """Write a random `family` network of `config` at `path` in `layout` (see `LAYOUTS`).
    `parametrization` is recorded only by the sgbench layout (the others record none), the
    training iteration `step` only by `STEP_LAYOUTS`."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown checkpoint layout {layout!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = random_backbone(family, config, seed)
    if layout == "sgbench":
        from sgbench.models.loading import save_sgbench_safetensors

        extra = dict(extra or {}, **({} if step is None else {"train_steps": int(step)}))
        return save_sgbench_safetensors(path, model, parametrization, extra or None)
    sd = model.state_dict()
    prefixed = {f"model.{k}": v for k, v in sd.items()}  # EDMPrecond's attribute name
    if layout == "tread":
        obj = {"model_state_dict": prefixed, "ema_state_dict": prefixed,
               "optimizer_state_dict": {"state": {}, "param_groups": []},
               "step": TRAIN_FILE_STEP if step is None else int(step)}
    elif layout == "maskdit":
        obj = {"model": prefixed, "ema": prefixed, "opt": {}, "args": maskdit_args(arch, config)}
    elif layout == "sgbench-train":  # `sgbench train`'s payload (sgbench.train.loop)
        from sgbench.models.loading import sgbench_metadata

        meta = sgbench_metadata(model, parametrization, extra)
        obj = {"model": sd, "ema": sd, "opt": {"state": {}, "param_groups": []},
               "step": TRAIN_FILE_STEP if step is None else int(step), "config": meta, "train_config": {},
               "task": "class_image", "wall_s": 0.0}
    elif layout == "dit-train":
        obj = {"model": sd, "ema": sd, "opt": {}, "args": train_args(arch, config)}
    else:  # sit, dit: the released files are the EMA state dict itself
        obj = sd
    _atomic_torch_save(obj, path)
    return path


def write_t2i_checkpoint(path, config, text_encoder: dict, image_size: int, seed: int) -> Path:
    """A random T2I DiT of `config` (T2IDiTConfig) as the sgbench T2I safetensors `sgbench train`
    writes: metadata with its velocity parametrization, image size and text encoder spec."""
    from sgbench.models.loading import save_sgbench_safetensors

    model = random_backbone("t2i", config.to_dict(), seed)
    return save_sgbench_safetensors(path, model, "velocity",
                                    {"image_size": int(image_size), "text_encoder": dict(text_encoder), "task": "t2i"})
