"""Decoders from model space to uint8 NHWC images (the ADM `.npz` layout).

Rounding convention (both decoders): pixels x in [-1, 1] become
    uint8 = clamp(127.5 * x + 128, 0, 255), truncated
i.e. (x + 1) * 127.5 rounded half up, as DiT/SiT `sample_ddp.py` do. MaskDiT and
CompVis/tread truncate (x + 1) * 127.5 instead (half a level darker on average; it shifts FID
slightly): pass rounding="truncate" to reproduce their numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sgbench.errors import UserError

ROUNDINGS = ("round", "truncate")
SD_VAE_SCALE = 0.18215  # latent scale of stabilityai/sd-vae-ft-ema / ft-mse


def to_uint8(x: torch.Tensor, rounding: str = "round") -> np.ndarray:
    """[B, C, H, W] in [-1, 1] -> uint8 numpy [B, H, W, C] (see the module docstring)."""
    if rounding not in ROUNDINGS:
        raise UserError(f"unknown rounding {rounding!r}; known: {', '.join(ROUNDINGS)}")
    offset = 128.0 if rounding == "round" else 127.5
    y = torch.clamp(127.5 * x.float() + offset, 0, 255).to(torch.uint8)
    return y.permute(0, 2, 3, 1).contiguous().cpu().numpy()


class PixelDecoder:
    """Pixel-space models: the sample already is the image in [-1, 1]."""

    def __init__(self, rounding: str = "round"):
        to_uint8(torch.zeros(1, 1, 1, 1), rounding)  # validate once
        self.rounding = rounding

    def check(self, latent_shape) -> None:
        if latent_shape[0] not in (1, 3):
            raise UserError(
                f"the model samples {latent_shape[0]}-channel tensors, not images: pass a VAE directory (--vae DIR)"
            )

    def __call__(self, x: torch.Tensor) -> np.ndarray:
        return to_uint8(x, self.rounding)


class VAEDecoder:
    """diffusers AutoencoderKL from a local directory (e.g. sd-vae-ft-ema); decodes latents / scale.

    Decoding runs in float32 (no autocast: the VAE decoder is sensitive to bf16 and cheap next
    to the sampler), in chunks of `micro_batch` to bound memory.
    """

    def __init__(self, path, device="cpu", scale: float = SD_VAE_SCALE, rounding: str = "round", micro_batch: int = 32):
        p = Path(path).expanduser()
        if not (p / "config.json").is_file():
            raise UserError(f"VAE directory not found or without config.json: {p} (a diffusers AutoencoderKL save_pretrained dir)")
        from diffusers import AutoencoderKL  # heavy import, only when a VAE is used

        try:
            self.vae = AutoencoderKL.from_pretrained(str(p), local_files_only=True)
        except (OSError, ValueError, EnvironmentError) as e:
            raise UserError(f"cannot load the VAE from {p}: {str(e).splitlines()[0]}") from None
        self.vae = self.vae.to(device).eval().requires_grad_(False)
        self.scale = float(scale)
        self.rounding = rounding
        self.micro_batch = int(micro_batch)
        to_uint8(torch.zeros(1, 1, 1, 1), rounding)

    def check(self, latent_shape) -> None:
        want = int(self.vae.config.latent_channels)
        if latent_shape[0] != want:
            raise UserError(f"the model samples {latent_shape[0]} channels but the VAE expects {want} latent channels")

    @torch.inference_mode()
    def __call__(self, z: torch.Tensor) -> np.ndarray:
        dev = next(self.vae.parameters()).device
        out = []
        for chunk in z.split(self.micro_batch):
            img = self.vae.decode(chunk.to(dev, torch.float32) / self.scale).sample
            out.append(to_uint8(img, self.rounding))
        return np.concatenate(out) if out else np.zeros((0,), np.uint8)
