"""The one interface guidance and samplers see: velocity in the paper's convention.

Paper / SiT convention: x_t = (1 - t) * z + t * x, t = 0 is noise, t = 1 is data, v = x - z.
Whatever the backbone predicts natively (SiT velocity, tread's rectified flow with t = 1 as
noise, EDM's denoised D(x; sigma), DiT's DDPM epsilon), a Denoiser converts it, so guidance rules and samplers never
care where a model came from.

Conditions: for class-conditional models `cond` is a LongTensor of class ids and the id
`num_classes` is the null (unconditional) condition. Other condition types (text) implement
`null_condition` / `random_condition` themselves.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from sgbench.errors import UserError
from sgbench.models.routing import GeneratorLike


class Denoiser(nn.Module):
    """Base class: wraps a backbone; `forward` returns the velocity v(x_t, t | cond; gamma)."""

    #: the network's native parametrization, for records and error messages
    parametrization: str = "velocity"

    def __init__(self, backbone: nn.Module, num_classes: int, latent_shape: Sequence[int]):
        super().__init__()
        self.backbone = backbone
        self.num_classes = int(num_classes)
        self.latent_shape = tuple(int(s) for s in latent_shape)  # (C, H, W) of x_t

    @property
    def num_tokens(self) -> int:
        return int(self.backbone.num_tokens)

    @property
    def null_id(self) -> int:
        return self.num_classes

    def null_condition(self, cond: torch.Tensor) -> torch.Tensor:
        return torch.full_like(cond, self.null_id)

    def random_condition(self, cond: torch.Tensor, generators: GeneratorLike = None) -> torch.Tensor:
        """Independently drawn real classes (never the null id), one per sample (for ICG)."""
        if isinstance(generators, (list, tuple)):
            ids = [int(torch.randint(self.num_classes, (1,), generator=g, device=g.device)) for g in generators]
            return torch.tensor(ids, dtype=cond.dtype, device=cond.device)
        return torch.randint(self.num_classes, cond.shape, generator=generators, device=cond.device).to(cond.dtype)

    def forward(self, x, t, cond, gamma: float = 0.0, keep_idx=None, generator: GeneratorLike = None):
        raise NotImplementedError


def _time_batch(t, x: torch.Tensor) -> torch.Tensor:
    """t as a float, 0-d or [B] tensor -> float32 [B] on x's device."""
    t = torch.as_tensor(t, device=x.device).to(torch.float32)
    return t.reshape(-1).expand(x.shape[0]) if t.numel() == 1 else t.reshape(x.shape[0])


def _bcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1, *([1] * (x.dim() - 1))).to(x.dtype)


class VelocityDenoiser(Denoiser):
    """Backbone already predicts v = x - z with t = 0 noise (SiT, sgbench's own training).

    With learn_sigma (DiT/SiT checkpoints) the output has 2C channels; the first C are v.
    """

    parametrization = "velocity"

    def forward(self, x, t, cond, gamma: float = 0.0, keep_idx=None, generator: GeneratorLike = None):
        t = _time_batch(t, x)
        out = self.backbone(x, t, cond, gamma=gamma, keep_idx=keep_idx, generator=generator)
        return out[:, : x.shape[1]]


# ---- pure conversions (paper convention <-> native conventions) ------------------------------

def rf_time(t: torch.Tensor) -> torch.Tensor:
    """tread rectified flow runs time backwards: z_s = (1 - s) x + s eps, s = 1 is noise; s = 1 - t."""
    return 1.0 - t


def rf_to_velocity(u: torch.Tensor) -> torch.Tensor:
    """tread predicts u = eps - x; the paper's v = x - z is its negative."""
    return -u


def edm_sigma(t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) z + t x  =>  x_t / t = x + sigma z with sigma = (1 - t) / t."""
    return (1.0 - t) / t


def edm_time(sigma: torch.Tensor) -> torch.Tensor:
    """Inverse of `edm_sigma`: t = 1 / (1 + sigma)."""
    return 1.0 / (1.0 + sigma)


def edm_precond(sigma: torch.Tensor, sigma_data: float = 0.5):
    """EDM preconditioning (Karras et al. 2022; identical in MaskDiT's and tread's EDMPrecond):
    c_skip, c_out, c_in, c_noise = ln(sigma) / 4."""
    s2, d2 = sigma**2, sigma_data**2
    return d2 / (s2 + d2), sigma * sigma_data / (s2 + d2).sqrt(), 1.0 / (s2 + d2).sqrt(), sigma.log() / 4


def denoised_to_velocity(denoised: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """v = x - z with z = (x_t - t x) / (1 - t)  =>  v = (D - x_t) / (1 - t)."""
    return (denoised - x_t) / _bcast(1.0 - t, x_t)


class RFDenoiser(Denoiser):
    """CompVis/tread `rf.py`: network time s = 1 - t (raw, in [0, 1]), output u = eps - x, v = -u."""

    parametrization = "rf"

    def forward(self, x, t, cond, gamma: float = 0.0, keep_idx=None, generator: GeneratorLike = None):
        s = rf_time(_time_batch(t, x))
        out = self.backbone(x, s, cond, gamma=gamma, keep_idx=keep_idx, generator=generator)
        return rf_to_velocity(out[:, : x.shape[1]])


class EDMDenoiser(Denoiser):
    """EDM-preconditioned D(x; sigma) (MaskDiT, CompVis/tread `edm.py`) seen as a velocity.

    sigma = (1 - t) / t and x_sigma = x_t / t; D = c_skip x_sigma + c_out F(c_in x_sigma, c_noise);
    v = (D - x_t) / (1 - t). sigma is undefined at t = 0 and t = 1, so t is clamped to
    [1 / (1 + sigma_max), 1 / (1 + sigma_min)] (EDM's sampling range sigma in [0.002, 80]) and the
    clamped t is used consistently in sigma, x_sigma and the conversion.
    """

    parametrization = "edm"

    def __init__(self, backbone, num_classes, latent_shape, sigma_data: float = 0.5,
                 sigma_min: float = 0.002, sigma_max: float = 80.0):
        super().__init__(backbone, num_classes, latent_shape)
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        self.sigma_data, self.sigma_min, self.sigma_max = float(sigma_data), float(sigma_min), float(sigma_max)

    def denoise(self, x_sigma, sigma, cond, gamma: float = 0.0, keep_idx=None, generator: GeneratorLike = None):
        """The native EDM denoiser D(x_sigma; sigma), as EDMPrecond.forward computes it."""
        c_skip, c_out, c_in, c_noise = edm_precond(sigma, self.sigma_data)
        f = self.backbone(_bcast(c_in, x_sigma) * x_sigma, c_noise.float(), cond,
                          gamma=gamma, keep_idx=keep_idx, generator=generator)
        return _bcast(c_skip, x_sigma) * x_sigma + _bcast(c_out, x_sigma) * f[:, : x_sigma.shape[1]]

    def forward(self, x, t, cond, gamma: float = 0.0, keep_idx=None, generator: GeneratorLike = None):
        t = _time_batch(t, x).to(torch.float64)  # float64: sigma spans 0.002..80
        t = t.clamp(1.0 / (1.0 + self.sigma_max), 1.0 / (1.0 + self.sigma_min))
        sigma = edm_sigma(t)
        x_sigma = x / _bcast(t, x)
        d = self.denoise(x_sigma, sigma.to(torch.float32), cond, gamma=gamma, keep_idx=keep_idx, generator=generator)
        return denoised_to_velocity(d, x, t)


def ddpm_alphas_cumprod(num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """alpha_bar_k of DiT's / ADM's 'linear' schedule (float64, k = 0..num_steps-1)."""
    scale = 1000.0 / num_steps
    betas = torch.linspace(scale * beta_start, scale * beta_end, num_steps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


def ddpm_step(log_snr: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Continuous DDPM step k whose log-SNR equals `log_snr`, linear between the discrete steps.

    `table` is log(alpha_bar / (1 - alpha_bar)) per step (decreasing); log_snr must lie inside it.
    """
    rising = -table  # increasing in k
    hi = torch.searchsorted(rising, -log_snr).clamp(1, len(table) - 1)
    lo = hi - 1
    frac = (-log_snr - rising[lo]) / (rising[hi] - rising[lo])
    return lo.to(log_snr.dtype) + frac


class DDPMDenoiser(Denoiser):
    """facebookresearch/DiT: discrete DDPM (linear betas 1e-4..0.02, 1000 steps), epsilon prediction.

    x_t / t = x + ((1 - t) / t) z, so the DDPM state with alpha_bar = t^2 / (t^2 + (1 - t)^2) is
    x_k = sqrt(alpha_bar) / t * x_t; k is the (fractional) step with that alpha_bar. The network
    predicts eps (first C of its 2C channels); x0 = (x_k - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar)
    and v = x0 - eps. t is clamped to the schedule's range (alpha_bar_999 ... alpha_bar_0).
    """

    parametrization = "ddpm"

    def __init__(self, backbone, num_classes, latent_shape, num_steps: int = 1000,
                 beta_start: float = 1e-4, beta_end: float = 0.02):
        super().__init__(backbone, num_classes, latent_shape)
        ab = ddpm_alphas_cumprod(num_steps, beta_start, beta_end)
        self.register_buffer("log_snr_table", (ab / (1 - ab)).log(), persistent=False)

    def forward(self, x, t, cond, gamma: float = 0.0, keep_idx=None, generator: GeneratorLike = None):
        t = _time_batch(t, x).to(torch.float64)
        table = self.log_snr_table.to(device=x.device, dtype=torch.float64)
        log_snr = (2 * (t / (1 - t)).log()).clamp(table[-1], table[0])  # t = 0, 1 give -inf, inf
        ab = torch.sigmoid(log_snr)
        t = 1 / (1 + (-log_snr / 2).exp())  # t of the clamped SNR, used consistently below
        x_k = x * _bcast(ab.sqrt() / t, x)
        eps = self.backbone(x_k, ddpm_step(log_snr, table).float(), cond,
                            gamma=gamma, keep_idx=keep_idx, generator=generator)[:, : x.shape[1]]
        x0 = (x_k - _bcast((1 - ab).sqrt(), x) * eps) / _bcast(ab.sqrt(), x)
        return x0 - eps


#: parametrization name -> Denoiser class (names used by ModelSpec and sgbench metadata)
PARAMETRIZATIONS = {"velocity": VelocityDenoiser, "rf": RFDenoiser, "edm": EDMDenoiser, "ddpm": DDPMDenoiser}


def make_denoiser(backbone: nn.Module, parametrization: str, num_classes: int, latent_shape, **kwargs) -> Denoiser:
    """Wrap a class-conditional backbone in the Denoiser for its native parametrization."""
    if parametrization not in PARAMETRIZATIONS:
        raise UserError(f"unknown parametrization {parametrization!r}; known: {', '.join(PARAMETRIZATIONS)}")
    return PARAMETRIZATIONS[parametrization](backbone, num_classes, latent_shape, **kwargs)
