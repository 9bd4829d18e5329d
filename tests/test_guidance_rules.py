"""Guidance rules: registry, config validation, schedules, per-step branches, combine formulas."""

import math

import pytest
import torch

from sgbench.errors import UserError
from sgbench.guidance import (
    METHODS,
    PRESETS,
    GuidanceConfig,
    Schedule,
    build_rule,
    linear_guidance,
    parse_schedule,
    preset,
)

SG_TYPES = {"sg": 0.9, "cfg+sg": 0.9, "ag+sg": 0.9}


def cfg_for(method, omega=2.0):
    return GuidanceConfig(method, omega=omega, gamma_strong=0.5, gamma_weak=SG_TYPES.get(method))


def test_registry_holds_the_paper_methods():
    assert list(METHODS) == ["none", "cfg", "sg", "cfg+sg", "ag", "ag+sg", "icg"]


@pytest.mark.parametrize(
    "method, weak",
    [
        ("none", None),
        ("cfg", ("main", "null", 0.5)),
        ("sg", ("main", "c", 0.9)),
        ("cfg+sg", ("main", "null", 0.9)),
        ("ag", ("weak", "c", 0.5)),
        ("ag+sg", ("weak", "c", 0.9)),
        ("icg", ("main", "random", 0.5)),
    ],
)
def test_branches_of_each_rule(method, weak):
    rule = build_rule(cfg_for(method))
    expected = [("main", "c", 0.5)] + ([weak] if weak else [])
    assert rule.branches_at(0, 10) == expected
    assert rule.branches_at(3, 10) == expected
    assert rule.networks == (("main", "weak") if method.startswith("ag") else ("main",))


def test_linear_guidance_on_fixed_tensors():
    strong = torch.tensor([1.0, -2.0, 0.5])
    weak = torch.tensor([0.0, 1.0, 0.5])
    assert torch.equal(linear_guidance(strong, weak, 3.0), torch.tensor([3.0, -8.0, 0.5]))
    assert torch.equal(linear_guidance(strong, weak, 1.0), strong)
    assert torch.equal(linear_guidance(strong, weak, 0.0), weak)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "none"])
def test_every_guided_rule_combines_omega_strong_plus_one_minus_omega_weak(method):
    rule = build_rule(cfg_for(method, omega=1.5))
    s, w = torch.tensor([2.0, 4.0]), torch.tensor([1.0, -1.0])
    assert torch.allclose(rule.combine(s, w), torch.tensor([2.5, 6.5]))


def test_unguided_combine_returns_strong():
    s = torch.tensor([1.0, 2.0])
    assert build_rule(GuidanceConfig("none")).combine(s, None) is s


def test_sg_with_equal_gammas_combines_to_the_conditional_prediction():
    # configs forbid gamma_strong == gamma_weak; the combine path itself must reduce exactly
    cond = torch.randn(4, 3)
    for omega in (0.0, 1.0, 2.5, 7.0):
        assert torch.allclose(linear_guidance(cond, cond.clone(), omega), cond, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(method="nope"), "method: unknown guidance method 'nope'"),
        (dict(method="cfg", omega=-0.1), "omega: must be >= 0"),
        (dict(method="cfg", omega=float("nan")), "omega: must be >= 0"),
        (dict(method="cfg", omega=20.5), "omega: must be <= 20"),
        (dict(method="sg", gamma_strong=0.9, gamma_weak=0.5), "gamma_strong < gamma_weak"),
        (dict(method="sg", gamma_strong=0.5, gamma_weak=0.5), "gamma_strong < gamma_weak"),
        (dict(method="cfg+sg", gamma_strong=0.6, gamma_weak=0.2), "gamma_strong < gamma_weak"),
        (dict(method="sg", gamma_strong=0.0), "gamma_weak: required for sg"),
        (dict(method="cfg", gamma_weak=0.5), "gamma_weak: applies only to"),
        (dict(method="sg", gamma_strong=0.0, gamma_weak=1.0), "gamma_weak: sparsity rate must be in \\[0, 1\\)"),
        (dict(method="sg", gamma_strong="cosine:0.0:1.2", gamma_weak=0.9), "got 1.2 \\(in cosine:0:1.2\\)"),
        (dict(method="none", gamma_strong=-0.1), "gamma_strong: sparsity rate must be in \\[0, 1\\)"),
        (dict(method="sg", gamma_strong="exp:0:1", gamma_weak=0.9), "linear:START:END"),
        (dict(method="cfg", interval=(0.8, 0.2)), "t_lo < t_hi"),
        (dict(method="cfg", interval=(0.5, 0.5)), "t_lo < t_hi"),  # the suite's rule, now everywhere
        (dict(method="cfg", interval="a,b"), "two times"),
        (dict(method="none", interval=(0.1, 0.9)), "needs a guided method"),
    ],
)
def test_invalid_configs_raise_one_line_user_errors(kwargs, match):
    with pytest.raises(UserError, match=match) as e:
        GuidanceConfig(**kwargs)
    assert "\n" not in str(e.value)


def test_ag_sg_allows_crossing_gammas():
    # the gap of ag+sg comes from the earlier checkpoint: no ordering (SG_FID crosses mid-way)
    GuidanceConfig("ag+sg", omega=2.0, gamma_strong=0.7, gamma_weak=0.1)


def test_schedules_values():
    lin = parse_schedule("linear:0.2:0.6")
    assert lin.values(5) == pytest.approx([0.2, 0.3, 0.4, 0.5, 0.6])
    cos = parse_schedule("cosine:0.6:0.0")
    v = cos.values(5)
    assert v[0] == pytest.approx(0.6) and v[-1] == pytest.approx(0.0)
    assert v[2] == pytest.approx(0.3)
    assert v[1] == pytest.approx(0.3 * (1 + math.cos(math.pi / 4)))
    assert parse_schedule("0.25") == Schedule.constant(0.25)
    assert parse_schedule(0.25).values(3) == [0.25] * 3
    assert parse_schedule("constant:0.1").value(7, 9) == 0.1
    assert parse_schedule("linear:0.2:0.6").value(0, 1) == 0.2  # one step: the start value


def test_sg_fid_preset_is_the_paper_setting():
    cfg = PRESETS["sg_fid"]
    assert cfg.method == "ag+sg" and cfg.needs_weak_network
    rule = build_rule(cfg)
    rule.check_steps(40)
    strong, weak = rule.strong.gamma.values(40), rule.weak.gamma.values(40)
    assert weak[0] == pytest.approx(0.6) and weak[-1] == pytest.approx(0.0)
    assert strong[0] == pytest.approx(0.0) and strong[-1] == pytest.approx(0.6)
    assert all(a + b == pytest.approx(0.6) for a, b in zip(strong, weak))  # "the inverse"
    assert all(x >= y for x, y in zip(weak, weak[1:]))  # cosine decay


def test_preset_overrides():
    cfg = preset("sg_flops", omega=3.0)
    assert (cfg.method, cfg.omega, cfg.gamma_strong, cfg.gamma_weak) == ("sg", 3.0, 0.5, 0.9)
    with pytest.raises(UserError, match="unknown guidance preset"):
        preset("sg_best")
    # a one-rate method drops the preset's gamma_weak; a new gamma re-derives the schedule label
    assert preset("sg_fid", method="ag").gamma_weak is None
    assert preset("sg_fid").schedule == "cosine" and preset("sg_fid", gamma_strong=0.1, gamma_weak=0.2).schedule == ""


def test_sg_schedules_are_checked_per_guided_step():
    # crossing schedules pass the config (not constant) but fail per step ...
    cfg = GuidanceConfig("sg", omega=2, gamma_strong="linear:0.0:0.8", gamma_weak="linear:0.8:0.0")
    with pytest.raises(UserError, match="at step 5 of 10"):
        build_rule(cfg).check_steps(10)
    # ... unless the interval excludes the steps where they cross (t = 5/10 .. 9/10)
    ok = GuidanceConfig("sg", omega=2, gamma_strong="linear:0.0:0.8", gamma_weak="linear:0.8:0.0", interval=(0.0, 0.45))
    build_rule(ok).check_steps(10)


def test_interval_and_omega_one_skip_the_weak_branch():
    rule = build_rule(GuidanceConfig("cfg", omega=2.0, interval=(0.25, 0.5)))
    guided = [len(rule.branches_at(k, 8)) == 2 for k in range(8)]
    assert guided == [False, False, True, True, True, False, False, False]  # t = k/8 in [0.25, 0.5]
    assert rule.branches_at(1, 8, t=0.25) == [("main", "c", 0.0), ("main", "null", 0.0)]
    one = build_rule(GuidanceConfig("sg", omega=1.0, gamma_strong=0.0, gamma_weak=0.5))
    assert one.branches_at(0, 4) == [("main", "c", 0.0)]


def test_scheduled_gammas_per_step():
    rule = build_rule(GuidanceConfig("ag+sg", omega=2, gamma_strong="linear:0.0:0.4", gamma_weak="linear:0.4:0.0"))
    assert [b[2] for b in rule.branches_at(0, 5)] == pytest.approx([0.0, 0.4])
    assert [b[2] for b in rule.branches_at(4, 5)] == pytest.approx([0.4, 0.0])
