"""LPIPS between guided outputs and conditional predictions from the same noise (paper Fig. 7).

Uses the `lpips` package (its shipped linear heads, v0.1) with the torchvision backbone loaded
from a local file: lpips would otherwise download it (`pnet_rand=False`), which fails offline.
Backbone files are torchvision's: alexnet-owt-7be5be79.pth, vgg16-397923af.pth,
squeezenet1_1-b8a52dc0.pth (full state dicts, or only their `features.*` entries).
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from sgbench.errors import UserError

BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth", "squeeze": "squeezenet1_1-b8a52dc0.pth"}


def load_lpips(backbone_weights, net: str = "alex", device="cpu", random_backbone: bool = False):
    """lpips.LPIPS with its backbone read from `backbone_weights` (torchvision state dict).

    `random_backbone=True` skips the file (tests only: distances are then meaningless).
    """
    import lpips

    if net not in BACKBONE_FILES:
        raise UserError(f"LPIPS net must be one of {', '.join(BACKBONE_FILES)}, got {net!r}")
    state = None
    if not random_backbone:
        if not backbone_weights:
            raise UserError(f"LPIPS needs the torchvision {net} backbone weights file ({BACKBONE_FILES[net]}); pass its path")
        path = Path(backbone_weights).expanduser()
        if not path.is_file():
            raise UserError(
                f"LPIPS backbone weights not found: {path} (torchvision's {BACKBONE_FILES[net]}, from "
                f"https://download.pytorch.org/models/{BACKBONE_FILES[net]})"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # corrupt / not a state dict
            raise UserError(f"cannot read LPIPS backbone weights {path}: {str(e).splitlines()[0]}") from None
    # pnet_rand=True: lpips builds the torchvision trunk without downloading; we fill it below.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchvision's `pretrained=` deprecation, from lpips
        model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
    if state is not None:
        _load_backbone(model.net, state, path)
    return model.to(device).eval().requires_grad_(False)


def _load_backbone(pnet: torch.nn.Module, state: dict, path) -> None:
    """lpips splits torchvision's `features` into slices named `sliceK.<index>`: map the keys."""
    mapped = {}
    for name in pnet.state_dict():
        m = re.fullmatch(r"slice\d+\.(\d+)\.(.+)", name)
        src = f"features.{m.group(1)}.{m.group(2)}" if m else name
        if src not in state:
            raise UserError(f"LPIPS backbone weights {path} lack {src!r} (wrong network file?)")
        mapped[name] = state[src]
    try:
        pnet.load_state_dict(mapped, strict=True)
    except RuntimeError as e:
        raise UserError(f"LPIPS backbone weights {path} do not fit: {str(e).splitlines()[0]}") from None


def _to_lpips_input(x) -> torch.Tensor:
    """uint8 [N,H,W,3] (numpy/torch) -> float [-1,1] NCHW; float NCHW tensors pass through."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if x.dtype == torch.uint8:
        if x.dim() != 4 or x.shape[-1] != 3:
            raise UserError(f"uint8 images for LPIPS must be [N, H, W, 3], got {list(x.shape)}")
        return x.permute(0, 3, 1, 2).float() / 127.5 - 1.0
    if x.dim() != 4 or x.shape[1] != 3:
        raise UserError(f"float images for LPIPS must be [N, 3, H, W] in [-1, 1], got {list(x.shape)}")
    return x.float()


@torch.no_grad()
def lpips_distance(model, images_a, images_b, batch_size: int = 32, device: Optional[str] = None) -> np.ndarray:
    """Per-image LPIPS [N] between two aligned image sets (uint8 NHWC or float NCHW in [-1, 1])."""
    a, b = _to_lpips_input(images_a), _to_lpips_input(images_b)
    if a.shape != b.shape:
        raise UserError(f"LPIPS needs aligned image sets of one shape, got {list(a.shape)} and {list(b.shape)}")
    dev = device or next(model.parameters()).device
    out = [model(a[i : i + batch_size].to(dev), b[i : i + batch_size].to(dev)).reshape(-1).cpu() for i in range(0, len(a), batch_size)]
    return torch.cat(out).numpy().astype(np.float64)
