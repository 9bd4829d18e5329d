"""FLOPs: hand count of a tiny DiT, fast composed path == full fvcore traces, schedules, CLI."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sgbench.cli import main as cli_main
from sgbench.errors import UserError
from sgbench.metrics.flops import (
    forward_flops,
    gflops_per_image,
    guidance_branch_gammas,
    schedule_values,
    trace_model_flops,
)
from sgbench.models.dit import DiT, DiTConfig

TINY = dict(input_size=4, patch_size=2, in_channels=1, hidden_size=8, depth=2, num_heads=2, mlp_ratio=2.0,
            num_classes=3, learn_sigma=False)


def test_tiny_model_hand_count():
    # n = 4 tokens, D = 8, MLP 16, out = p^2 * C = 4; FLOPs = multiply-adds.
    n, D = 4, 8
    patch = n * D * (1 * 2 * 2)  # conv 2x2, 1 -> 8 channels
    t_emb = 256 * D + D * D  # frequency embedding 256 -> D -> D
    block = (D * 6 * D  # adaLN (per image)
             + n * D * 3 * D + n * D * D  # qkv, proj
             + n * D * 2 * D * 2  # fc1, fc2
             + 2 * 4 * n * D)  # two LayerNorms without affine: 4 per element (fvcore)
    final = D * 2 * D + 4 * n * D + n * D * 4  # adaLN, LayerNorm, linear
    unpatchify = 8  # fvcore's einsum handler: numpy's einsum_path estimate (16 elements) / 2
    expected = patch + t_emb + 2 * block + final + unpatchify
    model = DiT(DiTConfig(**TINY))
    assert trace_model_flops(model, attention=False) == expected == 8008
    assert forward_flops(DiTConfig(**TINY), attention=False) == expected
    # Attention scores: 2 * n^2 * D per block.
    assert forward_flops(DiTConfig(**TINY), attention=True) == expected + 2 * (2 * n * n * D)


@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 0.75, 0.9])
def test_fast_path_equals_full_trace_of_routed_model(gamma):
    cfg = DiTConfig(input_size=8, patch_size=2, in_channels=2, hidden_size=16, depth=5, num_heads=2,
                    num_classes=5, routes=["1-2", "4-4"])
    model = DiT(cfg)
    for attention in (False, True):
        assert forward_flops(cfg, gamma, attention) == trace_model_flops(model, gamma, attention)


def _explicit_attention(q, k, v, **_):
    return torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-1) @ v


def test_analytic_attention_equals_fvcore_on_explicit_matmuls(monkeypatch):
    # The original DiT wrote attention as two matmuls, which fvcore counts: our analytic term must agree.
    cfg = DiTConfig(input_size=8, patch_size=2, in_channels=2, hidden_size=16, depth=3, num_heads=4,
                    num_classes=5, routes=["1-1"])
    model = DiT(cfg)
    with_sdpa = trace_model_flops(model, 0.5, attention=True)
    monkeypatch.setattr(F, "scaled_dot_product_attention", _explicit_attention)
    assert trace_model_flops(model, 0.5, attention=False) == with_sdpa


def test_dit_xl2_matches_published_gflops():
    # DiT paper Table 4: DiT-XL/2 118.64 GFLOPs (attention scores included), DiT-XL/8 7.39.
    assert gflops_per_image("DiT-XL/2").gflops == pytest.approx(118.64, abs=0.1)
    assert gflops_per_image("DiT-XL/2", attention=False).gflops == pytest.approx(114.46, abs=0.01)


def test_schedules():
    np.testing.assert_allclose(schedule_values("linear:0.6:0", 4), [0.6, 0.4, 0.2, 0.0])
    cos = schedule_values("cosine:0.6:0", 3)
    np.testing.assert_allclose(cos, [0.6, 0.3, 0.0], atol=1e-12)
    np.testing.assert_allclose(schedule_values(0.5, 3), [0.5] * 3)
    np.testing.assert_allclose(schedule_values("0.5", 1), [0.5])
    np.testing.assert_allclose(schedule_values("cosine:0.2:0.8", 1), [0.2])
    with pytest.raises(UserError, match="cosine:START:END"):
        schedule_values("exp:0:1", 3)


def test_guidance_branches():
    assert guidance_branch_gammas("none", steps=2) == [(0.0,), (0.0,)]
    assert guidance_branch_gammas("cfg", steps=1) == [(0.0, 0.0)]
    assert guidance_branch_gammas("sg", 0.5, 0.9, steps=2) == [(0.5, 0.9), (0.5, 0.9)]
    assert guidance_branch_gammas("cfg+sg", None, "linear:0.9:0.5", steps=2) == [(0.0, 0.9), (0.0, 0.5)]
    with pytest.raises(UserError):
        guidance_branch_gammas("sg", 0.5, None)
    with pytest.raises(UserError):
        guidance_branch_gammas("cfg", 0.5, None)
    with pytest.raises(UserError):
        guidance_branch_gammas("magic")


def test_guided_gflops_compose_per_step():
    cfg = DiTConfig(**{**TINY, "depth": 3, "routes": ["1-1"]})
    r = gflops_per_image(cfg, guidance="sg", gamma_strong="linear:0:0.5", gamma_weak=0.75, steps=3)
    strong = [forward_flops(cfg, g) for g in (0.0, 0.25, 0.5)]
    weak = forward_flops(cfg, 0.75)
    assert r.gflops * 1e9 == pytest.approx(np.mean(strong) + weak)
    assert r.per_branch[1] * 1e9 == pytest.approx(weak)
    assert r.relative_to_unguided == pytest.approx((np.mean(strong) + weak) / forward_flops(cfg, 0.0))
    cfg_r = gflops_per_image(cfg, guidance="cfg", steps=3)
    assert cfg_r.relative_to_unguided == pytest.approx(2.0)


def test_gamma_without_routes_is_user_error():
    with pytest.raises(UserError, match="no routes"):
        gflops_per_image(DiTConfig(**TINY), gamma_strong=0.5)


def test_cli_flops_json(capsys):
    rc = cli_main(["flops", "--arch", "SiT-XL/2", "--routes", "2-24", "--guidance", "sg", "--gamma-strong", "0.5",
                   "--gamma-weak", "0.9", "--steps", "40", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and set(out) >= {"gflops", "per_branch", "relative_to_unguided", "dense_gflops"}
    assert out["gflops"] == pytest.approx(sum(out["per_branch"]))
    assert 0.8 < out["relative_to_unguided"] < 0.9  # 23 of 28 blocks at 50% and 10% of the tokens
    rc = cli_main(["flops", "--guidance", "sg", "--gamma-strong", "0.5"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "gamma_weak" in err


def test_schedule_definition_matches_guidance_package():
    schedules = pytest.importorskip("sgbench.guidance.schedules")
    for spec in ("cosine:0.6:0", "cosine:0:0.6", "linear:0.2:0.9", "0.5", "constant:0.3"):
        for steps in (1, 2, 7, 40):
            np.testing.assert_allclose(schedule_values(spec, steps), schedules.parse_schedule(spec).values(steps),
                                       rtol=0, atol=1e-15)


def test_ragged_steps_from_a_rule_with_an_interval():
    class Rule:  # duck-typed GuidanceRule: weak branch only on the second half of the steps
        method = "sg"

        def branch_gammas(self, step, n_steps):
            out = [("main", "c", 0.0)]
            return out + [("main", "c", 0.5)] if step >= n_steps // 2 else out

    cfg = DiTConfig(**{**TINY, "routes": ["0-1"]})
    r = gflops_per_image(cfg, rule=Rule(), steps=4)
    dense, sparse = forward_flops(cfg, 0.0), forward_flops(cfg, 0.5)
    assert r.gflops * 1e9 == pytest.approx(dense + sparse / 2)
    assert r.per_branch[1] * 1e9 == pytest.approx(sparse / 2) and r.guidance == "sg"


def test_real_guidance_rule_matches_cli_mapping():
    guidance = pytest.importorskip("sgbench.guidance")
    cfg = DiTConfig(**{**TINY, "depth": 3, "routes": ["1-2"]})
    for method, gs, gw in (("sg", 0.5, 0.75), ("cfg+sg", "cosine:0:0.25", "cosine:0.75:0.5"), ("cfg", None, None)):
        kwargs = {k: v for k, v in (("gamma_strong", gs), ("gamma_weak", gw)) if v is not None}
        rule = guidance.build_rule(guidance.GuidanceConfig(method, omega=2.0, **kwargs))
        assert gflops_per_image(cfg, rule=rule, steps=5) == gflops_per_image(cfg, guidance=method, steps=5, **kwargs)


# ---- MaskDiT ------------------------------------------------------------------------------------
TINY_MASK = dict(input_size=8, patch_size=2, in_channels=2, hidden_size=16, depth=3, num_heads=2, num_classes=5,
                 decoder_hidden_size=8, decoder_depth=2, decoder_num_heads=2)


@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 0.75, 0.9])
def test_fast_path_equals_full_trace_of_masked_maskdit(gamma):
    from sgbench.models.maskdit import MaskDiT, MaskDiTConfig

    for extra in ({}, {"mask_token": False, "learn_sigma": True, "mlp_ratio": 2.0}):
        cfg = MaskDiTConfig(**TINY_MASK, **extra)
        model = MaskDiT(cfg)
        for attention in (False, True):
            assert forward_flops(cfg, gamma, attention) == trace_model_flops(model, gamma, attention)


def test_maskdit_attention_terms_and_masking_saves_encoder_flops(monkeypatch):
    from sgbench.models.maskdit import MaskDiT, MaskDiTConfig

    cfg = MaskDiTConfig(**{**TINY_MASK, "num_heads": 4})
    model = MaskDiT(cfg)
    # analytic attention (encoder: kept tokens at width 16, decoder: all 16 tokens at width 8) == explicit matmuls
    with_sdpa = trace_model_flops(model, 0.5, attention=True)
    n, k = cfg.num_tokens, cfg.num_tokens - int(cfg.num_tokens * 0.5)
    assert with_sdpa - trace_model_flops(model, 0.5, attention=False) == 3 * 2 * k * k * 16 + 2 * 2 * n * n * 8
    monkeypatch.setattr(F, "scaled_dot_product_attention", _explicit_attention)
    assert trace_model_flops(model, 0.5, attention=False) == with_sdpa
    # only the encoder blocks and decoder_layer shrink with gamma: dense - masked is affine in the dropped count
    drop = [forward_flops(cfg, g, attention=False) for g in (0.0, 0.25, 0.5)]
    assert drop[0] - drop[1] == drop[1] - drop[2] > 0


def test_maskdit_presets_by_name_and_config():
    from sgbench.models.maskdit import maskdit_config

    r = gflops_per_image("MaskDiT-XL/2", guidance="none", gamma_strong=0.5)
    dense = gflops_per_image("MaskDiT-XL/2")
    assert r.dense_gflops == dense.gflops == pytest.approx(125.85, abs=0.01) and r.routes == []
    assert r.gflops == pytest.approx(65.50, abs=0.01)  # 28 encoder blocks at 128 of 256 tokens
    # MaskDiT-XL/2 = DiT-XL/2's encoder plus a decoder (8 blocks of width 512 over all 256 tokens)
    assert dense.gflops > gflops_per_image("DiT-XL/2").gflops
    by_config = gflops_per_image(maskdit_config("MaskDiT-XL/2"), gamma_strong=0.5)
    assert (by_config.gflops, by_config.dense_gflops) == (r.gflops, r.dense_gflops)
    with pytest.raises(UserError, match="no routes"):
        gflops_per_image("MaskDiT-XL/2", routes=["2-24"])


def test_cli_flops_maskdit(capsys):
    rc = cli_main(["flops", "--arch", "MaskDiT-XL/2", "--guidance", "sg", "--gamma-strong", "0", "--gamma-weak", "0.5",
                   "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["arch"] == "MaskDiT-XL/2" and out["routes"] == []
    assert out["per_branch"] == pytest.approx([125.851, 65.495], abs=1e-3)
    rc = cli_main(["flops", "--arch", "MaskDiT-XL/2", "--routes", "2-24"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "no routes" in err
