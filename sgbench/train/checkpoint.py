"""Training checkpoints: <dir>/checkpoints/latest.pt (overwritten) + step_XXXXXXX.pt (kept).

A checkpoint is a torch file (tensors and plain containers only, so `torch.load(weights_only=True)`
reads it) with 'model', 'ema' (or None), 'opt', 'step', 'config' (the task's model metadata, the
same dict the exported safetensors carries: {"family", "config", "parametrization", ...}, so
`sgbench.models.loading` rebuilds the network from the .pt alone), 'train_config' (the YAML
mapping as loaded), 'task' and 'wall_s' (training time so far).
Kept checkpoints are never deleted: autoguidance needs early, weaker models.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from sgbench.errors import UserError


def ckpt_dir(run_dir) -> Path:
    return Path(run_dir) / "checkpoints"


def kept_name(step: int) -> str:
    return f"step_{step:07d}.pt"


def should_keep(step: int, keep_every: int, keep_steps) -> bool:
    return step % keep_every == 0 or step in set(keep_steps)


def save_checkpoint(path, payload: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, trust: bool = False) -> dict:
    """Read a training checkpoint (tensors and plain containers only, unless `trust`: see
    `sgbench.torchfiles`)."""
    from sgbench.torchfiles import load_torch_file

    path = Path(path)
    ck = load_torch_file(path, "training checkpoint", trust=trust)
    if not isinstance(ck, dict):
        raise UserError(f"{path} is not an sgbench training checkpoint (it holds a {type(ck).__name__})")
    missing = [k for k in ("model", "opt", "step") if k not in ck]
    if missing:
        raise UserError(f"{path} is not an sgbench training checkpoint (missing {', '.join(missing)})")
    return ck


def latest_checkpoint(run_dir):
    p = ckpt_dir(run_dir) / "latest.pt"
    return p if p.is_file() else None


def kept_checkpoints(run_dir) -> list[Path]:
    return sorted(ckpt_dir(run_dir).glob("step_*.pt"))
