"""DINOv2 ViT features for FD_DINOv2, as NVlabs/edm2 computes it, from the user's local weights file.

edm2 (`calculate_metrics.py`, `DINOv2Detector`, after layer6ai-labs/dgm-eval) runs torch.hub
'facebookresearch/dinov2' 'dinov2_vitl14' on uint8 NCHW images:
  float32 -> bicubic resize to 224 x 224 with antialiasing -> / 255 -> ImageNet mean/std ->
  the hub model's output: the CLS token after the final LayerNorm (1024-d for ViT-L/14).
`preprocess` and `DINOv2.forward` do exactly that. The ViT follows the hub model's forward: patch
embedding, CLS token, positional embedding resized from the 37 x 37 pretraining grid as the hub
does (bicubic, no antialiasing, scale factor (16 + 0.1) / 37 — its historical offset), pre-norm
blocks with LayerScale, final norm.

Weights come from a file, never a download: torch-hub's `dinov2_vitl14_pretrain.pth` or timm's
`vit_large_patch14_dinov2.lvd142m` (`model.safetensors` / `pytorch_model.bin`). The two layouts hold
the same tensors under the same names, except that torch-hub keeps the (unused) `mask_token` and
timm drops it; `detect_layout` tells them apart from the keys, anything else is refused. Files are
read as tensors only (safetensors, or torch.load(weights_only=True)). The architecture is read
from the tensors' shapes (every DINOv2 ViT has 64-wide heads), so tiny random models load through
the same code; `DINOV2_PRESETS` names ViT-L/14, the model edm2's metric is defined with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from sgbench.errors import UserError

INPUT_SIZE = 224  # edm2 resizes every image to 224 x 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HEAD_DIM = 64  # DINOv2 ViT-S/B/L/g: 384/6, 768/12, 1024/16, 1536/24
POS_OFFSET = 0.1  # the hub's `interpolate_offset` (dinov2_vitl14 default)
LN_EPS = 1e-6
LAYOUTS = ("torch-hub", "timm")
WEIGHTS_FILE = "dinov2_vitl14_pretrain.pth"
WEIGHTS_URL = "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth"
WEIGHTS_HINT = (f"the DINOv2 ViT-L/14 weights {WEIGHTS_FILE} (what torch.hub.load('facebookresearch/dinov2', "
                f"'dinov2_vitl14') downloads, from {WEIGHTS_URL}) or timm's vit_large_patch14_dinov2.lvd142m "
                "model.safetensors, copied to this machine")


@dataclass(frozen=True)
class DINOv2Config:
    embed_dim: int = 1024
    depth: int = 24
    patch_size: int = 14
    mlp_dim: int = 4096
    pos_grid: int = 37  # positional-embedding grid of the weights (518 px pretraining / 14)

    @property
    def num_heads(self) -> int:
        return self.embed_dim // HEAD_DIM


DINOV2_PRESETS = {"ViT-L/14": DINOv2Config()}


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """edm2's DINOv2 input: uint8 [B, 3, H, W] -> float32 [B, 3, 224, 224], ImageNet-normalised.

    Its default ('torch') resize: `interpolate(x.float(), 224, bicubic, antialias=True)` on the
    0..255 values, not clamped or rounded, then / 255, minus the mean, over the std."""
    x = F.interpolate(images.to(torch.float32), size=(INPUT_SIZE, INPUT_SIZE), mode="bicubic", antialias=True)
    x = x.to(torch.float32) / 255
    x = x - torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
    return x / torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)


# ---- the network (torch-hub's parameter names) ---------------------------------------------------
class PatchEmbed(nn.Module):
    def __init__(self, c: DINOv2Config):
        super().__init__()
        self.proj = nn.Conv2d(3, c.embed_dim, kernel_size=c.patch_size, stride=c.patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, N, D], patches in row-major order


class LayerScale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class Attention(nn.Module):
    def __init__(self, c: DINOv2Config):
        super().__init__()
        self.num_heads = c.num_heads
        self.qkv = nn.Linear(c.embed_dim, 3 * c.embed_dim)
        self.proj = nn.Linear(c.embed_dim, c.embed_dim)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).unbind(2)
        x = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(x.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, c: DINOv2Config):
        super().__init__()
        self.fc1 = nn.Linear(c.embed_dim, c.mlp_dim)
        self.fc2 = nn.Linear(c.mlp_dim, c.embed_dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, c: DINOv2Config):
        super().__init__()
        self.norm1 = nn.LayerNorm(c.embed_dim, eps=LN_EPS)
        self.attn = Attention(c)
        self.ls1 = LayerScale(c.embed_dim)
        self.norm2 = nn.LayerNorm(c.embed_dim, eps=LN_EPS)
        self.mlp = Mlp(c)
        self.ls2 = LayerScale(c.embed_dim)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DINOv2(nn.Module):
    """DINOv2 ViT (no register tokens, MLP feed-forward): uint8 images -> final-norm CLS features."""

    def __init__(self, config: DINOv2Config):
        super().__init__()
        self.config = c = config
        if c.embed_dim % HEAD_DIM:
            raise ValueError(f"DINOv2 widths are multiples of {HEAD_DIM}, got {c.embed_dim}")
        self.patch_embed = PatchEmbed(c)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + c.pos_grid ** 2, c.embed_dim))
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.embed_dim, eps=LN_EPS)

    def position_embedding(self, rows: int, cols: int) -> torch.Tensor:
        """[1, 1 + rows * cols, D]: the stored grid, resized as torch-hub's `interpolate_pos_encoding`."""
        m = self.config.pos_grid
        if rows == cols == m:
            return self.pos_embed
        pos = self.pos_embed.float()
        grid = pos[:, 1:].reshape(1, m, m, -1).permute(0, 3, 1, 2)
        # the hub passes a scale factor (with its offset), not the size: the sampling positions follow it
        grid = F.interpolate(grid, scale_factor=((rows + POS_OFFSET) / m, (cols + POS_OFFSET) / m), mode="bicubic",
                             antialias=False)
        grid = grid.permute(0, 2, 3, 1).reshape(1, rows * cols, -1)
        return torch.cat([pos[:, :1], grid], dim=1).to(self.pos_embed.dtype)

    def forward_normalized(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed float images [B, 3, H, W] (H, W multiples of the patch) -> CLS features [B, D]."""
        p = self.config.patch_size
        tokens = self.patch_embed(x)
        tokens = torch.cat([self.cls_token.expand(len(tokens), -1, -1), tokens], dim=1)
        tokens = tokens + self.position_embedding(x.shape[2] // p, x.shape[3] // p)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)[:, 0]

    def forward(self, images_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 [B, 3, H, W] -> [B, D] (edm2's FD_DINOv2 features)."""
        return self.forward_normalized(preprocess(images_uint8))


# ---- layouts and loading ------------------------------------------------------------------------
def model_keys(config: DINOv2Config) -> set[str]:
    """The tensor names of `DINOv2(config)` (timm's layout; torch-hub's adds `mask_token`)."""
    keys = {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "norm.weight", "norm.bias"}
    per_block = ["norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
                 "attn.proj.bias", "ls1.gamma", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
                 "mlp.fc2.weight", "mlp.fc2.bias", "ls2.gamma"]
    return keys | {f"blocks.{i}.{k}" for i in range(config.depth) for k in per_block}


def config_from_state_dict(state: dict, source: str) -> DINOv2Config:
    """The architecture the tensors' shapes say; a file that is not a DINOv2 ViT is a UserError."""
    if "register_tokens" in state or "reg_token" in state:
        raise UserError(f"{source} is a DINOv2 model with register tokens (dinov2_vitl14_reg); FD_DINOv2 as edm2 "
                        f"computes it uses dinov2_vitl14 without registers: {WEIGHTS_HINT}")
    needed = ("cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.mlp.fc1.weight")
    missing = [k for k in needed if k not in state]
    if missing:
        raise UserError(f"{source} is not a DINOv2 ViT state dict in torch-hub (facebookresearch/dinov2) or timm "
                        f"layout: no {', '.join(missing)}; expected {WEIGHTS_HINT}")
    cls, pos, patch, fc1 = (state[k] for k in needed)
    dim = cls.shape[-1]
    grid = math.isqrt(max(pos.shape[1] - 1, 0)) if pos.dim() == 3 else 0
    ok = (cls.shape == (1, 1, dim) and pos.dim() == 3 and pos.shape[1] == 1 + grid * grid and grid > 0
          and pos.shape[2] == dim and patch.dim() == 4 and patch.shape[:2] == (dim, 3) and patch.shape[2] == patch.shape[3]
          and fc1.dim() == 2 and fc1.shape[1] == dim and dim % HEAD_DIM == 0)
    if not ok:
        raise UserError(f"{source}: tensor shapes are not a DINOv2 ViT's (cls_token {tuple(cls.shape)}, pos_embed "
                        f"{tuple(pos.shape)}, patch_embed.proj.weight {tuple(patch.shape)})")
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks.") and k.split(".")[1].isdigit())
    return DINOv2Config(embed_dim=dim, depth=depth, patch_size=patch.shape[2], mlp_dim=fc1.shape[0], pos_grid=grid)


def detect_layout(keys, config: DINOv2Config) -> str | None:
    """'torch-hub' (with `mask_token`), 'timm' (without), or None when the names fit neither."""
    keys, expected = set(keys), model_keys(config)
    if keys == expected | {"mask_token"}:
        return "torch-hub"
    if keys == expected:
        return "timm"
    return None


def read_weights(path) -> dict:
    """name -> tensor of a safetensors or torch file, never unpickling objects."""
    from sgbench.torchfiles import load_state_dict

    return load_state_dict(path, "DINOv2 weights")


def load_dinov2(path, device="cpu") -> tuple[DINOv2, str]:
    """The DINOv2 model of a local weights file (torch-hub or timm layout) and the layout found."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"DINOv2 weights not found: {p}; {WEIGHTS_HINT}")
    state = read_weights(p)
    config = config_from_state_dict(state, str(p))
    layout = detect_layout(state, config)
    if layout is None:
        expected = model_keys(config)
        differences = [(word, sorted(names)) for word, names in (
            ("unexpected", set(state) - expected - {"mask_token"}), ("missing", expected - set(state))) if names]
        what = "; ".join(f"{word} {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}" for word, names in differences)
        raise UserError(f"{p} is neither torch-hub's (facebookresearch/dinov2) nor timm's DINOv2 layout ({what}); "
                        f"expected {WEIGHTS_HINT}")
    model = DINOv2(config)
    tensors = {k: v.to(torch.float32) for k, v in state.items() if k != "mask_token"}
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise UserError(f"DINOv2 weights {p} do not fit a {config.embed_dim}-wide ViT: "
                        f"{str(e).strip().splitlines()[-1].strip()[:200]}") from None
    return model.to(device).eval().requires_grad_(False), layout


# ---- random weights: tests and `sgbench run --rehearse` -----------------------------------------
def random_dinov2(config: DINOv2Config, seed: int = 0) -> DINOv2:
    """Deterministic random weights (truncated normal 0.02 as DINOv2's init, LayerScale 1 as the
    hub's dinov2_vitl14), so every block shapes the features."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DINOv2(config)
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.trunc_normal_(model.pos_embed, std=0.02)
        nn.init.normal_(model.cls_token, std=0.02)
    return model.eval()


def layout_state_dict(model: DINOv2, layout: str) -> dict:
    """The model's tensors as a file of `layout` holds them (torch-hub keeps a `mask_token`)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    if layout == "torch-hub":
        state["mask_token"] = torch.zeros(1, model.config.embed_dim)
    return state


def write_weights(path, model: DINOv2, layout: str = "torch-hub") -> Path:
    """Save `model` as a weights file of `layout` (.safetensors by suffix, else torch.save), atomically."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = layout_state_dict(model, layout)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(tmp))
    else:
        torch.save(state, tmp)
    os.replace(tmp, path)
    return path


STANDIN_CONFIG = DINOv2Config(embed_dim=64, depth=2, patch_size=14, mlp_dim=256, pos_grid=37)


def write_standin_weights(path, seed: int = 0) -> Path:
    """`--rehearse` stand-in for the DINOv2 weights: a tiny random DINOv2 (64 wide, 2 blocks, ViT-L's
    patch and 37 x 37 positional grid, so the same resize paths run) in torch-hub's layout."""
    return write_weights(path, random_dinov2(STANDIN_CONFIG, seed), "torch-hub")
