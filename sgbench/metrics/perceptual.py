"""LPIPS between guided outputs and conditional predictions from the same noise (paper Fig. 7).

Uses the `lpips` package (its shipped linear heads, v0.1) with the torchvision backbone loaded
from a local file: lpips would otherwise download it (`pnet_rand=False`), which fails offline.
Backbone files are torchvision's: alexnet-owt-7be5be79.pth, vgg16-397923af.pth,
squeezenet1_1-b8a52dc0.pth (full state dicts, or only their `features.*` entries); a full
`lpips.LPIPS` state dict (`net.*` and the `lin*` heads) loads as well.

`sgbench run` records the suite metric `lpips_cond` with `LpipsAccumulator` (per-sample
distances to aligned reference images, streamed; standard error by the Poisson bootstrap of
`sgbench.metrics.bootstrap`); `sgbench.run.conditional` supplies the references.
`write_standin_backbone` writes a random backbone in torchvision's layout (tests, rehearsals).
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
        if _is_full_lpips(state):
            _load_full(model, state, path)
        else:
            _load_backbone(model.net, state, path)
    return model.to(device).eval().requires_grad_(False)


def _is_full_lpips(state) -> bool:
    return isinstance(state, dict) and any(str(k).startswith("net.") for k in state) and any(
        str(k).startswith("lin") for k in state)


def _load_full(model: torch.nn.Module, state: dict, path) -> None:
    """An lpips.LPIPS state dict: backbone and heads from the file (`lins.K` repeats `linK`)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.startswith(("lins.", "scaling_layer."))]
    if missing:
        raise UserError(f"LPIPS weights {path} lack {missing[0]!r} (an lpips file of another net?)")
    wanted = {k: v for k, v in state.items() if k in own}
    bad = [k for k, v in wanted.items() if tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise UserError(f"LPIPS weights {path} do not fit: {bad[0]} has shape {tuple(wanted[bad[0]].shape)}, "
                        f"the {type(model.net).__name__} net {tuple(own[bad[0]].shape)}")
    model.load_state_dict(wanted, strict=False)


def write_standin_backbone(path, net: str = "alex", seed: int = 0) -> Path:
    """A randomly initialised torchvision backbone (seeded) saved in the layout of torchvision's
    file for `net` (BACKBONE_FILES), which `load_lpips` reads like the real one: the stand-in for
    tests and for `sgbench run --rehearse`. Distances from it are meaningless."""
    import torchvision

    builders = {"alex": torchvision.models.alexnet, "vgg": torchvision.models.vgg16,
                "squeeze": torchvision.models.squeezenet1_1}
    if net not in builders:
        raise UserError(f"LPIPS net must be one of {', '.join(BACKBONE_FILES)}, got {net!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        features = builders[net](weights=None).features
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, tmp)
    tmp.replace(path)
    return path


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


class LpipsAccumulator:
    """`update(images, references, positions)` per batch, `compute() -> {key, key_se}`: the mean
    per-sample LPIPS between images and their aligned references (uint8 NHWC), and with
    `bootstrap=B` its standard error, the replicates weighting sample i by the Poisson weights of
    (seed, i) (`sgbench.metrics.bootstrap`), as every other metric of the trial."""

    def __init__(self, model, key: str, bootstrap: int = 0, seed: int = 0, batch_size: int = 32):
        self.model, self.key = model, key
        self.replicates, self.seed, self.batch_size = int(bootstrap), int(seed), int(batch_size)
        self._d: list[np.ndarray] = []
        self._pos: list[np.ndarray] = []

    @property
    def count(self) -> int:
        return sum(len(d) for d in self._d)

    def update(self, images, references, positions) -> None:
        pos = np.asarray(positions, dtype=np.int64).reshape(-1)
        if len(pos) != len(images):
            raise UserError(f"got {len(pos)} positions for {len(images)} images")
        if len(pos):
            self._d.append(lpips_distance(self.model, images, references, batch_size=self.batch_size))
            self._pos.append(pos)

    def compute(self) -> dict[str, float]:
        from sgbench.metrics import bootstrap as bs
        from sgbench.metrics.registry import se_column

        if self.count < 1:
            return {}
        d, pos = np.concatenate(self._d), np.concatenate(self._pos)
        out = {self.key: float(d.mean())}
        if self.replicates:
            w = bs.poisson_weights(self.seed, 0, int(pos.max()) + 1, self.replicates)[:, pos]
            out[se_column(self.key)] = bs.mean_se(d, w)
        return out
