"""Samplers: guided velocity per rule, batching of branches, interval skipping, Euler/Heun,
per-sample reproducibility (batch size, order) with a tiny routed DiT."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn as nn

from sgbench.errors import UserError
from sgbench.guidance import Branch, GuidanceConfig, build_rule
from sgbench.models.denoiser import Denoiser, VelocityDenoiser
from sgbench.models.dit import DiT, DiTConfig
from sgbench.sampling import (
    PixelDecoder,
    evaluation_schedule,
    generate,
    initial_noise,
    labels_for,
    make_generators,
    plan_calls,
    sample,
)

NUM_CLASSES = 5


class Recorder(Denoiser):
    """v = offset + 10 * (cond + 1) + 100 * gamma (per sample); records every call."""

    def __init__(self, offset=0.0, shape=(1, 2, 2)):
        super().__init__(nn.Identity(), NUM_CLASSES, shape)
        self.offset = offset
        self.calls = []

    def forward(self, x, t, cond, gamma=0.0, keep_idx=None, generator=None):
        self.calls.append(dict(batch=x.shape[0], gamma=gamma, cond=cond.clone(), t=float(t)))
        v = self.offset + 10.0 * (cond.float() + 1) + 100.0 * gamma
        return v.view(-1, 1, 1, 1).expand_as(x).clone()


def velocity(cond, gamma, offset=0.0):
    return offset + 10.0 * (cond.float() + 1) + 100.0 * gamma


def tiny_dit(routes=("1-2",), seed=0):
    torch.manual_seed(seed)
    cfg = DiTConfig(input_size=8, patch_size=2, in_channels=3, hidden_size=32, depth=4, num_heads=2,
                    num_classes=NUM_CLASSES, routes=routes, learn_sigma=False)
    model = DiT(cfg)
    for p in model.parameters():  # DiT zero-inits its outputs; random weights make the test bite
        nn.init.normal_(p, std=0.05)
    return VelocityDenoiser(model, NUM_CLASSES, (3, 8, 8)).eval()


CASES = {
    # method: (config kwargs, expected weak velocity given cond c, or None for the unguided rule)
    "none": (dict(gamma_strong=0.5), None),
    "cfg": (dict(omega=3.0), lambda c: velocity(torch.full_like(c, NUM_CLASSES), 0.0)),
    "sg": (dict(omega=3.0, gamma_strong=0.5, gamma_weak=0.9), lambda c: velocity(c, 0.9)),
    "cfg+sg": (dict(omega=3.0, gamma_strong=0.5, gamma_weak=0.9),
               lambda c: velocity(torch.full_like(c, NUM_CLASSES), 0.9)),
    "ag": (dict(omega=3.0), lambda c: velocity(c, 0.0, offset=-7.0)),
    "ag+sg": (dict(omega=3.0, gamma_strong=0.5, gamma_weak=0.25), lambda c: velocity(c, 0.25, offset=-7.0)),
}


@pytest.mark.parametrize("method", list(CASES))
def test_one_euler_step_applies_each_rules_formula(method):
    kwargs, weak_fn = CASES[method]
    cfg = GuidanceConfig(method, **kwargs)
    rule = build_rule(cfg)
    nets = {"main": Recorder(), "weak": Recorder(offset=-7.0)}
    cond = torch.tensor([0, 3, 4])
    noise = torch.randn(3, 1, 2, 2)
    x1 = sample(nets, rule, noise, cond, steps=1)
    strong = velocity(cond, rule.strong.gamma.start)
    expected = strong if weak_fn is None else cfg.omega * strong + (1 - cfg.omega) * weak_fn(cond)
    assert torch.allclose(x1 - noise, expected.view(-1, 1, 1, 1).expand_as(noise), atol=1e-4)


def test_icg_weak_branch_uses_independent_real_classes_never_null():
    rule = build_rule(GuidanceConfig("icg", omega=2.0))
    net = Recorder()
    n = 64
    cond = torch.zeros(n, dtype=torch.long)
    sample(net, rule, torch.zeros(n, 1, 2, 2), cond, steps=3, generators=make_generators(0, range(n)))
    assert len(net.calls) == 3  # c and random batched into one call per step
    for call in net.calls:
        rand = call["cond"][n:]
        assert torch.equal(call["cond"][:n], cond)
        assert int(rand.max()) < NUM_CLASSES and int(rand.min()) >= 0  # never the null id
        assert len(set(rand.tolist())) > 1  # independent draws
    # the random class of sample i comes from (seed, i): same for the sample in another batch
    net2 = Recorder()
    sample(net2, rule, torch.zeros(3, 1, 2, 2), cond[:3], steps=1, generators=make_generators(0, [5, 6, 7]))
    assert torch.equal(net2.calls[0]["cond"][3:], net.calls[0]["cond"][n + 5 : n + 8])


def test_branches_sharing_network_and_gamma_run_as_one_call():
    net = Recorder()
    sample(net, build_rule(GuidanceConfig("cfg", omega=2.0, gamma_strong=0.5)), torch.zeros(2, 1, 2, 2),
           torch.tensor([1, 2]), steps=2, generators=make_generators(0, range(2)))
    assert [(c["batch"], c["gamma"]) for c in net.calls] == [(4, 0.5), (4, 0.5)]
    assert net.calls[0]["cond"].tolist() == [1, 2, NUM_CLASSES, NUM_CLASSES]
    net = Recorder()
    sample(net, build_rule(GuidanceConfig("sg", omega=2.0, gamma_strong=0.5, gamma_weak=0.9)),
           torch.zeros(2, 1, 2, 2), torch.tensor([1, 2]), steps=2, generators=make_generators(0, range(2)))
    assert [(c["batch"], c["gamma"]) for c in net.calls] == [(2, 0.5), (2, 0.9)] * 2
    assert [c.gamma for c in plan_calls([("main", "c", 0.0), ("main", "null", 0.0), ("weak", "c", 0.0)])] == [0.0, 0.0]


def test_interval_skips_weak_evaluations():
    net = Recorder()
    rule = build_rule(GuidanceConfig("sg", omega=2.0, gamma_strong=0.5, gamma_weak=0.9, interval=(0.3, 0.6)))
    sample(net, rule, torch.zeros(2, 1, 2, 2), torch.tensor([0, 1]), steps=10, generators=make_generators(0, range(2)))
    weak_times = [c["t"] for c in net.calls if c["gamma"] == 0.9]
    assert weak_times == pytest.approx([0.3, 0.4, 0.5, 0.6])
    assert len(net.calls) == 10 + 4
    # the FLOP accounting sees the same evaluations
    sched = evaluation_schedule(rule, 10)
    assert sum(len(e) for e in sched) == 14
    heun = evaluation_schedule(rule, 10, "heun")
    assert len(heun) == 20


def test_sg_with_equal_gammas_reduces_to_the_conditional_prediction():
    # validation forbids it in configs, so take a valid sg rule and give its weak branch the
    # strong branch's gamma (0: dense, so both predictions are identical)
    den = tiny_dit()
    base = build_rule(GuidanceConfig("sg", omega=3.0, gamma_strong=0.0, gamma_weak=0.5))
    equal = dataclasses.replace(base, weak=Branch("main", "c", base.strong.gamma), requires_gap=False)
    noise = torch.randn(2, 3, 8, 8)
    cond = torch.tensor([1, 3])
    guided = sample(den, equal, noise, cond, steps=3)
    plain = sample(den, build_rule(GuidanceConfig("none")), noise, cond, steps=3)
    assert torch.allclose(guided, plain, atol=1e-5)


def test_omega_one_skips_the_weak_branch():
    net = Recorder()
    sample(net, build_rule(GuidanceConfig("cfg", omega=1.0)), torch.zeros(1, 1, 2, 2), torch.tensor([0]), steps=4)
    assert len(net.calls) == 4 and all(c["batch"] == 1 for c in net.calls)


class Linear(Denoiser):
    """v(x, t) = -x: the exact flow is x(1) = x(0) * e^-1."""

    def __init__(self):
        super().__init__(nn.Identity(), NUM_CLASSES, (1, 1, 1))

    def forward(self, x, t, cond, gamma=0.0, keep_idx=None, generator=None):
        return -x


def test_euler_and_heun_integrate_from_noise_to_data():
    rule = build_rule(GuidanceConfig("none"))
    x0 = torch.ones(1, 1, 1, 1)
    euler = sample(Linear(), rule, x0, torch.tensor([0]), steps=4, solver="euler")
    heun = sample(Linear(), rule, x0, torch.tensor([0]), steps=4, solver="heun")
    assert float(euler) == pytest.approx(0.75**4)  # (1 - h)^n
    assert float(heun) == pytest.approx((1 - 0.25 + 0.25**2 / 2) ** 4)
    assert abs(float(heun) - np.exp(-1)) < abs(float(euler) - np.exp(-1))
    with pytest.raises(UserError, match="unknown solver"):
        sample(Linear(), rule, x0, torch.tensor([0]), steps=4, solver="rk4")


def test_heun_checks_the_ordering_at_its_corrector_evaluations_too():
    # 2 steps, guidance for t in [0.5, 1]; step 0 has gamma_strong 0.6 >= gamma_weak 0.2.
    # Euler evaluates step 0 at t=0 (unguided): fine. Heun's corrector of step 0 runs at t=0.5,
    # guided, with step 0's gammas: refused.
    cfg = GuidanceConfig("sg", omega=2, gamma_strong="linear:0.6:0.0", gamma_weak="linear:0.2:0.8", interval=(0.5, 1.0))
    rule = build_rule(cfg)
    sample(Recorder(), rule, torch.zeros(1, 1, 2, 2), torch.tensor([0]), steps=2, solver="euler")
    with pytest.raises(UserError, match="at step 0 of 2"):
        sample(Recorder(), rule, torch.zeros(1, 1, 2, 2), torch.tensor([0]), steps=2, solver="heun")


def test_ag_without_weak_network_is_a_user_error():
    with pytest.raises(UserError, match="weak network"):
        sample(Recorder(), build_rule(GuidanceConfig("ag", omega=2.0)), torch.zeros(1, 1, 2, 2), torch.tensor([0]), steps=1)


def _images(den, rule, batch_size, indices=None, n=5, steps=3):
    out = list(generate(den, rule, PixelDecoder(), n, seed=7, batch_size=batch_size, steps=steps, indices=indices))
    idx = np.concatenate([b[0] for b in out])
    return idx, np.concatenate([b[1] for b in out]), np.concatenate([b[2] for b in out])


@pytest.mark.parametrize(
    "cfg",
    [
        GuidanceConfig("sg", omega=3.0, gamma_strong=0.25, gamma_weak=0.75),
        GuidanceConfig("icg", omega=2.0, gamma_strong=0.5),
    ],
)
def test_samples_do_not_depend_on_batch_size_or_order(cfg):
    den, rule = tiny_dit(), build_rule(cfg)
    idx1, img1, lab1 = _images(den, rule, batch_size=1)
    idx3, img3, lab3 = _images(den, rule, batch_size=3)
    assert np.array_equal(idx1, np.arange(5)) and np.array_equal(idx1, idx3)
    assert np.array_equal(lab1, lab3) and np.array_equal(lab1, labels_for(range(5), NUM_CLASSES, seed=7))
    assert np.abs(img1.astype(int) - img3.astype(int)).max() <= 1  # fp differences may flip a rounding
    assert (img1 != img3).mean() < 0.01
    idxr, imgr, _ = _images(den, rule, batch_size=2, indices=[4, 2, 0, 3, 1])
    order = np.argsort(idxr)
    assert np.abs(imgr[order].astype(int) - img1.astype(int)).max() <= 1


def test_token_selection_is_per_sample():
    # the same sample drawn alone or inside a batch gets the same final tensor
    den = tiny_dit()
    rule = build_rule(GuidanceConfig("sg", omega=3.0, gamma_strong=0.25, gamma_weak=0.75))
    gens = make_generators(3, range(4))
    noise = initial_noise((3, 8, 8), gens)
    full = sample(den, rule, noise, torch.tensor([0, 1, 2, 3]), steps=2, generators=gens)
    g2 = make_generators(3, [2])
    alone = sample(den, rule, initial_noise((3, 8, 8), g2), torch.tensor([2]), steps=2, generators=g2)
    assert torch.allclose(full[2:3], alone, atol=1e-5)
    # different seeds give different samples
    other = make_generators(4, [2])
    assert not torch.allclose(initial_noise((3, 8, 8), other), noise[2:3])


def test_labels_for():
    assert labels_for(range(7), 3, mode="balanced").tolist() == [0, 1, 2, 0, 1, 2, 0]
    r = labels_for(range(200), 10, seed=1, mode="random")
    assert r.min() >= 0 and r.max() < 10 and len(set(r.tolist())) == 10
    assert np.array_equal(labels_for([5, 9], 10, seed=1, mode="random"), r[[5, 9]])
    assert not np.array_equal(labels_for(range(200), 10, seed=2, mode="random"), r)
    with pytest.raises(UserError, match="unknown label mode"):
        labels_for([0], 10, mode="uniform")


def test_generate_checks_decoder_and_inputs():
    # errors come at call time, before any batch is produced
    with pytest.raises(UserError, match="--vae"):
        generate(Recorder(shape=(4, 2, 2)), build_rule(GuidanceConfig("none")), PixelDecoder(), 2, 0, 1, steps=1)
    with pytest.raises(UserError, match="indices must lie"):
        generate(Recorder(shape=(3, 2, 2)), build_rule(GuidanceConfig("none")), PixelDecoder(), 2, 0, 1,
                 steps=1, indices=[2])
    with pytest.raises(UserError, match="needs the weak network"):
        generate(Recorder(), build_rule(GuidanceConfig("ag", omega=2.0)), PixelDecoder(), 2, 0, 1, steps=1)


def test_autocast_runs_the_networks_in_bf16_and_keeps_the_state_fp32():
    den = tiny_dit()
    rule = build_rule(GuidanceConfig("cfg", omega=2.0))
    noise, cond = torch.randn(2, 3, 8, 8), torch.tensor([0, 1])
    fp32 = sample(den, rule, noise, cond, steps=2)
    bf16 = sample(den, rule, noise, cond, steps=2, autocast=torch.bfloat16)
    assert bf16.dtype == torch.float32
    assert not torch.equal(fp32, bf16) and torch.allclose(fp32, bf16, atol=0.1)
