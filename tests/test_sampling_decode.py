"""Decoders: the uint8 rounding conventions and a tiny random diffusers AutoencoderKL on disk."""

import numpy as np
import pytest
import torch

from sgbench.errors import UserError
from sgbench.sampling import PixelDecoder, VAEDecoder, to_uint8


def test_rounding_conventions():
    x = torch.tensor([-1.5, -1.0, -0.999, 0.0, 0.5, 1.0, 2.0]).view(1, 1, 1, 7)
    # round: floor(127.5 x + 128) clamped (DiT/SiT); truncate: floor(127.5 (x + 1)) (MaskDiT/tread)
    assert to_uint8(x, "round").ravel().tolist() == [0, 0, 0, 128, 191, 255, 255]
    assert to_uint8(x, "truncate").ravel().tolist() == [0, 0, 0, 127, 191, 255, 255]
    with pytest.raises(UserError, match="unknown rounding"):
        PixelDecoder("nearest")


def test_pixel_decoder_is_nhwc_uint8():
    x = torch.zeros(2, 3, 4, 5)
    x[:, 1] = 1.0
    img = PixelDecoder()(x)
    assert img.shape == (2, 4, 5, 3) and img.dtype == np.uint8
    assert (img[..., 0] == 128).all() and (img[..., 1] == 255).all()


def tiny_vae(path):
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 8),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=8,
    )
    vae.save_pretrained(path)
    return vae


def test_vae_decoder_loads_a_local_autoencoder_and_scales_latents(tmp_path):
    vae = tiny_vae(tmp_path / "vae")
    dec = VAEDecoder(tmp_path / "vae", micro_batch=2)
    z = torch.randn(3, 4, 4, 4)
    img = dec(z)
    assert img.shape == (3, 8, 8, 3) and img.dtype == np.uint8
    with torch.no_grad():
        ref = to_uint8(vae.decode(z / 0.18215).sample)
    assert np.array_equal(img, ref)
    dec.check((4, 4, 4))
    with pytest.raises(UserError, match="latent channels"):
        dec.check((3, 4, 4))


def test_vae_decoder_missing_directory(tmp_path):
    with pytest.raises(UserError, match="VAE directory not found"):
        VAEDecoder(tmp_path / "nowhere")
