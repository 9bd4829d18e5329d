"""Final weights as safetensors with self-describing metadata.

`output.export` is a path under `output.dir` (so `--output-dir` moves it too) unless absolute;
nothing is ever written inside the installed package, and an existing file is replaced only
with `--force`.

Format (shared with `sgbench.models.loading`): tensors = the model's state dict (EMA weights),
metadata key "sgbench" = JSON {"family": "dit", "config": {DiTConfig fields, routes as
"start-end" strings}, "parametrization": "velocity", "image_size": 32, "dataset": "shapes", ...}
so `load_denoiser(ModelSpec(checkpoint=path))` needs nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Optional

import torch


def dit_config_json(config) -> dict:
    """DiTConfig -> JSON-able dict with routes as 'start-end' strings."""
    out = {}
    for f in dataclasses.fields(config):
        v = getattr(config, f.name)
        if f.name == "routes":
            v = [f"{r.start}-{r.end}" for r in v]
        out[f.name] = v
    return out


def save_sgbench_model(path, model: torch.nn.Module, meta: dict) -> Path:
    """Write `model`'s weights + metadata {"sgbench": json(meta)} atomically; returns the path.

    Uses `sgbench.models.loading.save_sgbench_safetensors` when that module provides it, so there
    is one writer of the format; otherwise writes the same layout itself.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        from sgbench.models.loading import save_sgbench_safetensors  # type: ignore
    except ImportError:
        save_sgbench_safetensors = None
    if save_sgbench_safetensors is not None:
        # family / config / parametrization come from the model itself in that writer
        extra = {k: v for k, v in meta.items() if k not in ("parametrization", "family", "config")}
        save_sgbench_safetensors(path, model, meta.get("parametrization", "velocity"), extra)
        return path
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata={"sgbench": json.dumps(meta, sort_keys=True)})
    os.replace(tmp, path)
    return path


def read_sgbench_metadata(path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return json.loads((f.metadata() or {})["sgbench"])


def export_path(output) -> Optional[Path]:
    """Where `output.export` goes: under `output.dir` unless it is absolute (None: no export)."""
    if not output.export:
        return None
    p = Path(os.path.expanduser(output.export))
    return p if p.is_absolute() else Path(output.dir) / p


def export_target(output, force: bool = False) -> Optional[Path]:
    """The export path, checked before any training: never inside the installed package (its
    shipped assets), never an existing file unless `force`."""
    from sgbench.config.files import check_output_dir, check_output_file

    check_output_dir(output.dir, "output.dir")
    p = export_path(output)
    return None if p is None else check_output_file(p, "the export (output.export)", force)


def export_checkpoint(ckpt_path, out_path, use_ema: bool = True, trust: bool = False) -> Path:
    """Export a training checkpoint (.pt, e.g. an early kept step for autoguidance) as an sgbench
    safetensors file, rebuilding the network from the checkpoint's own metadata ('config')."""
    from sgbench.errors import UserError
    from sgbench.models.loading import build_fitting
    from sgbench.models.registry import backbone_families
    from sgbench.train.checkpoint import load_checkpoint

    ck = load_checkpoint(ckpt_path, trust=trust)
    meta = ck.get("config")
    if not isinstance(meta, dict) or meta.get("family") not in backbone_families():
        raise UserError(f"{ckpt_path}: no model metadata of a {'/'.join(backbone_families())} model to export")
    state = ck["ema"] if use_ema and ck.get("ema") is not None else ck["model"]
    if not isinstance(state, dict) or not state:
        raise UserError(f"{ckpt_path}: no weights to export")
    # the family registry rebuilds any backbone, once its shapes are checked against the file's
    net = build_fitting(meta["family"], meta["config"], state, ckpt_path)
    net.load_state_dict(state, strict=True)
    info = {"steps": int(ck["step"]), "wall_s": round(float(ck.get("wall_s", 0.0)), 1), "weights": "ema" if state is ck.get("ema") else "model"}
    return save_sgbench_model(out_path, net.eval(), {**meta, "train": info})
