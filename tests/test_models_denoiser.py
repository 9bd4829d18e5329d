"""Parametrization adapters, checked analytically against exact denoisers for one data point.

Paper convention: x_t = (1 - t) z + t x, t = 0 noise, t = 1 data, v = x - z. Each fake backbone
below is the *exact* native predictor for a single data point `x0` in its own convention, so the
adapter must return exactly v = x0 - z.
"""

import math

import pytest
import torch
import torch.nn as nn

from sgbench.errors import UserError
from sgbench.models import DDPMDenoiser, EDMDenoiser, RFDenoiser, VelocityDenoiser, make_denoiser
from sgbench.models.denoiser import (
    ddpm_alphas_cumprod,
    ddpm_step,
    denoised_to_velocity,
    edm_precond,
    edm_sigma,
    edm_time,
    rf_time,
)

X0 = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
Z = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1))


class Recorder(nn.Module):
    """Backbone stub: remembers its inputs and applies `fn(x, time)`; learn_sigma-style 2C output."""

    num_tokens = 16

    def __init__(self, fn):
        super().__init__()
        self.fn, self.calls = fn, []

    def forward(self, x, t, y, gamma=0.0, keep_idx=None, generator=None):
        self.calls.append(dict(x=x, t=t, y=y, gamma=gamma, keep_idx=keep_idx, generator=generator))
        out = self.fn(x, t)
        return torch.cat([out, torch.full_like(out, 1e6)], dim=1)  # junk "sigma" channels


def x_t(t):
    t = torch.as_tensor(t, dtype=torch.float32).reshape(-1, 1, 1, 1)
    return (1 - t) * Z + t * X0


def test_velocity_passes_through_and_slices_learn_sigma():
    t = torch.tensor([0.3, 0.8])
    net = Recorder(lambda x, tt: (X0 - x) / (1 - tt).reshape(-1, 1, 1, 1))  # exact SiT velocity
    den = VelocityDenoiser(net, num_classes=10, latent_shape=(3, 4, 4))
    v = den(x_t(t), t, torch.tensor([1, 10]), gamma=0.5, keep_idx="K", generator="G")
    assert torch.allclose(v, X0 - Z, atol=1e-5)
    call = net.calls[-1]
    assert torch.equal(call["t"], t) and call["gamma"] == 0.5 and call["keep_idx"] == "K" and call["generator"] == "G"
    den(x_t(0.25), 0.25, torch.tensor([1, 2]))  # a float t becomes a [B] tensor
    assert torch.equal(net.calls[-1]["t"], torch.tensor([0.25, 0.25]))


def test_rf_runs_time_backwards_and_negates():
    # tread rf.py: z_s = (1 - s) x + s eps, network predicts u = eps - x
    def exact_u(z, s):
        s = s.reshape(-1, 1, 1, 1)
        eps = (z - (1 - s) * X0) / s
        return eps - X0

    net = Recorder(exact_u)
    den = RFDenoiser(net, num_classes=10, latent_shape=(3, 4, 4))
    t = torch.tensor([0.2, 0.7])
    v = den(x_t(t), t, torch.tensor([0, 0]))
    assert torch.allclose(net.calls[-1]["t"], torch.tensor([0.8, 0.3]))
    assert torch.allclose(v, X0 - Z, atol=1e-5)
    assert torch.equal(rf_time(torch.tensor([0.0, 1.0])), torch.tensor([1.0, 0.0]))


def edm_exact_F(sigma_data=0.5):
    """The raw network output F that makes EDMPrecond's D(x_sigma) == X0 exactly."""

    def fn(net_in, c_noise):
        sigma = torch.exp(4 * c_noise.double()).reshape(-1, 1, 1, 1)
        c_skip, c_out, c_in, _ = edm_precond(sigma, sigma_data)
        x_sigma = net_in.double() / c_in
        return ((X0.double() - c_skip * x_sigma) / c_out).float()

    return fn


@pytest.mark.parametrize("t", [0.05, 0.3, 0.5, 0.9, 0.99])
def test_edm_denoiser_gives_the_paper_velocity(t):
    net = Recorder(edm_exact_F())
    den = EDMDenoiser(net, num_classes=10, latent_shape=(3, 4, 4))
    v = den(x_t(t), t, torch.tensor([3, 10]))
    assert torch.allclose(v, X0 - Z, atol=2e-4 / (1 - t))
    sigma = (1 - t) / t
    call = net.calls[-1]
    assert torch.allclose(call["t"], torch.full((2,), math.log(sigma) / 4), atol=1e-6)  # c_noise = ln(sigma)/4
    c_in = 1 / math.sqrt(sigma**2 + 0.25)
    assert torch.allclose(call["x"], x_t(t) / t * c_in, atol=1e-5)  # x_sigma = x_t / t, scaled by c_in


def test_edm_precond_values_and_inverse_time():
    c_skip, c_out, c_in, c_noise = edm_precond(torch.tensor(0.5), 0.5)  # sigma = sigma_data
    assert torch.allclose(torch.stack([c_skip, c_out, c_in]), torch.tensor([0.5, 0.5 / math.sqrt(2), 1 / math.sqrt(0.5)]))
    assert torch.isclose(c_noise, torch.tensor(math.log(0.5) / 4))
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    assert torch.allclose(edm_time(edm_sigma(t)), t)
    assert torch.allclose(edm_sigma(torch.tensor([0.5])), torch.tensor([1.0]))
    # v = (D - x_t) / (1 - t) with D = x: x - z
    assert torch.allclose(denoised_to_velocity(X0, x_t(0.4), torch.full((2,), 0.4)), X0 - Z, atol=1e-5)


def test_edm_clamps_t_to_the_sigma_range():
    net = Recorder(edm_exact_F())
    den = EDMDenoiser(net, num_classes=10, latent_shape=(3, 4, 4), sigma_min=0.002, sigma_max=80.0)
    v0 = den(Z, 0.0, torch.tensor([1, 1]))  # pure noise: sigma would be infinite
    assert torch.allclose(net.calls[-1]["t"], torch.full((2,), math.log(80.0) / 4), atol=1e-6)
    assert torch.isfinite(v0).all()
    # at t = 0 the clamped t' = 1/81 treats x_t as x + 80 z' with z' = z * 81/80; v = (x - x_t)/(1 - t')
    assert torch.allclose(v0, (X0 - Z) * 81 / 80, atol=1e-4)
    v1 = den(X0, 1.0, torch.tensor([1, 1]))  # clean data: sigma would be 0
    assert torch.allclose(net.calls[-1]["t"], torch.full((2,), math.log(0.002) / 4), atol=1e-5)
    assert torch.isfinite(v1).all() and v1.abs().max() < 1e-2
    with pytest.raises(ValueError):
        EDMDenoiser(net, 10, (3, 4, 4), sigma_min=1.0, sigma_max=0.5)


def dit_alpha_bar():
    """DiT's schedule written out independently: linear betas 1e-4..0.02 over 1000 steps."""
    betas = [1e-4 + (0.02 - 1e-4) * k / 999 for k in range(1000)]
    out, acc = [], 1.0
    for b in betas:
        acc *= 1 - b
        out.append(acc)
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("k", [0, 37, 500, 999])
def test_ddpm_denoiser_at_integer_steps(k):
    ab_table = dit_alpha_bar()
    assert torch.allclose(ddpm_alphas_cumprod(), ab_table, rtol=1e-12)

    def exact_eps(x_k, step):  # the true noise of x_k = sqrt(ab) X0 + sqrt(1 - ab) eps at integer steps
        ab = ab_table[step.round().long()].reshape(-1, 1, 1, 1)
        return ((x_k.double() - ab.sqrt() * X0.double()) / (1 - ab).sqrt()).float()

    net = Recorder(exact_eps)
    den = DDPMDenoiser(net, num_classes=10, latent_shape=(3, 4, 4))
    ab = ab_table[k]
    t = float(ab.sqrt() / (ab.sqrt() + (1 - ab).sqrt()))  # the t whose SNR is step k's
    v = den(x_t(t), t, torch.tensor([0, 1]))
    assert torch.allclose(net.calls[-1]["t"], torch.full((2,), float(k)), atol=1e-3)
    assert torch.allclose(net.calls[-1]["x"], float(ab.sqrt()) * X0 + float((1 - ab).sqrt()) * Z, atol=1e-4)
    assert torch.allclose(v, X0 - Z, atol=1e-3 / float(ab.sqrt()))


def test_ddpm_step_interpolates_and_t_is_clamped():
    ab = ddpm_alphas_cumprod()
    table = (ab / (1 - ab)).log()
    assert torch.allclose(ddpm_step((table[10] + table[11]) / 2, table), torch.tensor(10.5, dtype=torch.float64))
    net = Recorder(lambda x, k: torch.zeros_like(x))
    den = DDPMDenoiser(net, num_classes=10, latent_shape=(3, 4, 4))
    den(Z, 0.0, torch.tensor([0, 0]))  # pure noise -> the last step
    assert torch.allclose(net.calls[-1]["t"], torch.full((2,), 999.0))
    v = den(X0, 1.0, torch.tensor([0, 0]))  # clean data -> step 0, finite
    assert torch.allclose(net.calls[-1]["t"], torch.zeros(2)) and torch.isfinite(v).all()


def test_make_denoiser_and_conditions():
    net = Recorder(lambda x, t: x)
    den = make_denoiser(net, "edm", 10, (3, 4, 4), sigma_max=40.0)
    assert isinstance(den, EDMDenoiser) and den.sigma_max == 40.0 and den.parametrization == "edm"
    with pytest.raises(UserError, match="parametrization"):
        make_denoiser(net, "eps", 10, (3, 4, 4))
    cond = torch.tensor([1, 2, 3])
    assert torch.equal(den.null_condition(cond), torch.full((3,), 10))
    gens = lambda: [torch.Generator().manual_seed(s) for s in (0, 1, 2)]  # noqa: E731
    r = den.random_condition(cond, gens())
    assert torch.equal(r, den.random_condition(cond, gens())) and int(r.max()) < 10
    assert torch.equal(den.random_condition(cond[1:2], gens()[1:2]), r[1:2])
    assert den.num_tokens == 16 and den.null_id == 10
