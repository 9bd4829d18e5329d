"""VAE stand-in: a tiny diffusers `AutoencoderKL` directory with stabilityai/sd-vae-ft-ema's layout
(4 latent channels, four blocks = 8x downsampling, scaling_factor 0.18215), written by diffusers'
own `save_pretrained` (config.json + diffusion_pytorch_model.safetensors), random weights."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sgbench.sampling.decode import SD_VAE_SCALE

LATENT_CHANNELS = 4
DOWNSAMPLING = 8  # 2 ** (len(block_out_channels) - 1)


def write_sd_vae(directory, seed: int = 0, sample_size: int = 256) -> Path:
    """Write the tiny SD-VAE-layout AutoencoderKL into `directory` (replaced atomically)."""
    import torch
    from diffusers import AutoencoderKL

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=LATENT_CHANNELS,
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=4,
            sample_size=sample_size, scaling_factor=SD_VAE_SCALE,
        )
    tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    vae.save_pretrained(str(tmp), safe_serialization=True)
    os.replace(tmp, directory)
    return directory


def downsampling_factor(directory) -> int:
    """Pixels per latent of a diffusers AutoencoderKL directory (from its config.json)."""
    import json

    config = json.loads((Path(directory) / "config.json").read_text())
    return 2 ** (len(config.get("block_out_channels", [0] * 4)) - 1)
