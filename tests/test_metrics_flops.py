"""FLOPs: hand count of a tiny DiT, fast composed path == full fvcore traces, the averaging over a
sampler's evaluations, one method -> branches mapping for sampling and FLOPs, the paper's Table 2, CLI."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sgbench.cli import main as cli_main
from sgbench.errors import UserError
from sgbench.guidance import GuidanceConfig, build_rule
from sgbench.metrics.flops import average_flops
from sgbench.models import forward_flops, trace_model_flops
from sgbench.models.dit import DiT, DiTConfig
from sgbench.run.flops import gflops_per_image, guided_flops

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
    assert trace_model_flops(model).fvcore == expected == 8008
    assert forward_flops(DiTConfig(**TINY)).fvcore == expected
    # Attention scores: 2 * n^2 * D per block, carried beside fvcore's count.
    assert forward_flops(DiTConfig(**TINY)).attention == 2 * (2 * n * n * D)
    assert forward_flops(DiTConfig(**TINY)).with_attention == expected + 2 * (2 * n * n * D)


@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 0.75, 0.9])
def test_fast_path_equals_full_trace_of_routed_model(gamma):
    cfg = DiTConfig(input_size=8, patch_size=2, in_channels=2, hidden_size=16, depth=5, num_heads=2,
                    num_classes=5, routes=["1-2", "4-4"])
    model = DiT(cfg)
    assert forward_flops(cfg, gamma) == trace_model_flops(model, gamma)


def _explicit_attention(q, k, v, **_):
    return torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-1) @ v


def test_analytic_attention_equals_fvcore_on_explicit_matmuls(monkeypatch):
    # The original DiT wrote attention as two matmuls, which fvcore counts: our analytic term must agree.
    cfg = DiTConfig(input_size=8, patch_size=2, in_channels=2, hidden_size=16, depth=3, num_heads=4,
                    num_classes=5, routes=["1-1"])
    model = DiT(cfg)
    with_sdpa = trace_model_flops(model, 0.5).with_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention", _explicit_attention)
    assert trace_model_flops(model, 0.5).fvcore == with_sdpa


def test_dit_xl2_matches_published_gflops():
    # gflops: fvcore's count (the SG paper's convention); gflops_attn: with the attention scores, as the
    # DiT paper's Table 4 (DiT-XL/2 118.64 GFLOPs).
    r = gflops_per_image("DiT-XL/2")
    assert r.gflops == pytest.approx(114.46, abs=0.01) and r.gflops_attn == pytest.approx(118.64, abs=0.1)


@pytest.mark.parametrize("options, paper", [
    ([], 114.42),  # unguided
    (["--guidance", "cfg", "--omega", "1.5"], 228.84),  # CFG
    (["--preset", "sg_flops"], 97.67),  # SG_FLOPS: sg, gamma 0.5 / 0.9
    (["--guidance", "sg", "--omega", "2.5", "--gamma-strong", "0.5", "--gamma-weak", "0.9"], 97.67),
    (["--preset", "sg_fid"], 173.16),  # SG_FID: ag+sg, strong cosine:0.0:0.6, weak cosine:0.6:0.0
])
def test_sgbench_flops_gives_the_papers_table_2_by_default(capsys, options, paper):
    # SiT-XL/2 + route r_{2->24}, Euler 40 steps; the weak network of SG_FID is an earlier checkpoint of
    # the same architecture. The composed path is cached per architecture: the five cost one trace set.
    rc = cli_main(["flops", "--arch", "SiT-XL/2", "--routes", "2-24", "--steps", "40", *options, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["gflops"] == pytest.approx(paper, rel=0.005)
    assert out["gflops_attn"] > out["gflops"] * 1.02  # the attention scores as a second, named field


def test_average_flops_over_ragged_evaluations():
    # evaluation 0 runs one pass, evaluation 1 two (a guidance interval); costs are (fvcore, attention)
    r = average_flops([[(10, 2)], [(10, 2), (4, 1)]], dense=(10, 2), steps=2, guidance="sg")
    assert (r.gflops, r.gflops_attn) == (12 / 1e9, 14.5 / 1e9)
    assert r.per_branch == [10 / 1e9, 2 / 1e9] and r.per_branch_attn == [12 / 1e9, 2.5 / 1e9]
    assert r.relative_to_unguided == 1.2 and r.evaluations == 2 and r.dense_gflops_attn == 12 / 1e9
    with pytest.raises(UserError):
        average_flops([[(1, 0)], []], dense=(1, 0))


def test_flops_follow_the_rules_branches():
    # the mapping the sampler runs: cfg at gamma_strong (both branches), omega = 1 skips the weak
    # branch, an interval guides only there, Heun evaluates twice per step
    cfg = DiTConfig(**{**TINY, "depth": 3, "routes": ["1-1"]})
    dense, half = forward_flops(cfg, 0.0).fvcore, forward_flops(cfg, 0.5).fvcore
    assert gflops_per_image(cfg, guidance=GuidanceConfig("cfg", 2.0, 0.5), steps=4).gflops * 1e9 == 2 * half
    assert gflops_per_image(cfg, guidance=GuidanceConfig("sg", 1.0, 0.0, 0.5), steps=4).gflops * 1e9 == dense
    ivl = gflops_per_image(cfg, guidance=GuidanceConfig("cfg", 2.0, interval=(0.5, 1.0)), steps=4)
    assert ivl.gflops * 1e9 == pytest.approx(1.5 * dense)  # t = 0, 1/4 unguided; t = 1/2, 3/4 guided
    heun = gflops_per_image(cfg, guidance=GuidanceConfig("cfg", 2.0, interval=(0.5, 1.0)), steps=4, solver="heun")
    assert heun.evaluations == 8 and heun.gflops * 1e9 == pytest.approx(1.625 * dense)  # 3 of 8 ... 5 of 8 guided
    rule = build_rule(GuidanceConfig("cfg", 2.0, interval=(0.5, 1.0)))
    from sgbench.sampling.solvers import evaluation_schedule

    guided = sum(len(b) - 1 for b in evaluation_schedule(rule, 4, "heun"))
    assert heun.gflops * 1e9 == pytest.approx(dense * (8 + guided) / 8)


def test_ag_counts_the_weak_networks_own_architecture():
    main = DiTConfig(**{**TINY, "depth": 3, "routes": ["1-1"]})
    weak = DiTConfig(**{**TINY, "depth": 1})
    rule = build_rule(GuidanceConfig("ag", omega=2.0))
    r = guided_flops({"main": main, "weak": weak}, rule, steps=3)
    assert r.gflops * 1e9 == forward_flops(main).fvcore + forward_flops(weak).fvcore


def test_guided_gflops_compose_per_step():
    cfg = DiTConfig(**{**TINY, "depth": 3, "routes": ["1-1"]})
    r = gflops_per_image(cfg, guidance=GuidanceConfig("sg", 2.0, "linear:0:0.5", 0.75), steps=3)
    strong = [forward_flops(cfg, g).fvcore for g in (0.0, 0.25, 0.5)]
    weak = forward_flops(cfg, 0.75).fvcore
    assert r.gflops * 1e9 == pytest.approx(np.mean(strong) + weak)
    assert r.per_branch[1] * 1e9 == pytest.approx(weak)
    assert r.relative_to_unguided == pytest.approx((np.mean(strong) + weak) / forward_flops(cfg, 0.0).fvcore)
    assert r.gflops_attn * 1e9 == pytest.approx(np.mean([forward_flops(cfg, g).with_attention for g in (0, .25, .5)])
                                                + forward_flops(cfg, 0.75).with_attention)
    cfg_r = gflops_per_image(cfg, guidance=GuidanceConfig("cfg", 1.5), steps=3)
    assert cfg_r.relative_to_unguided == pytest.approx(2.0)


def test_gamma_without_routes_is_user_error():
    with pytest.raises(UserError, match="no routes"):
        gflops_per_image(DiTConfig(**TINY), guidance=GuidanceConfig(gamma_strong=0.5))


def test_cli_flops_json(capsys):
    rc = cli_main(["flops", "--arch", "SiT-XL/2", "--routes", "2-24", "--guidance", "sg", "--omega", "2.5",
                   "--gamma-strong", "0.5", "--gamma-weak", "0.9", "--steps", "40", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and set(out) >= {"gflops", "gflops_attn", "per_branch", "relative_to_unguided", "dense_gflops"}
    assert out["gflops"] == pytest.approx(sum(out["per_branch"]))
    assert out["gflops_attn"] == pytest.approx(sum(out["per_branch_attn"]))
    assert 0.8 < out["relative_to_unguided"] < 0.9  # 23 of 28 blocks at 50% and 10% of the tokens
    # the guidance options are `sgbench sample`'s, validated by the same code
    for bad, message in ((["--guidance", "sg", "--omega", "2", "--gamma-strong", "0.5"], "--gamma-weak: required"),
                         (["--guidance", "cfg", "--omega", "50"], "--omega: must be <= 20"),
                         (["--guidance", "cfg"], "--omega: required"),
                         (["--guidance", "cfg", "--omega", "2", "--interval", "0.9,0.1"], "--interval:"),
                         (["--solver", "rk4"], "argument --solver: invalid choice: 'rk4'"),
                         (["--steps", "0"], "--steps: must be >= 1")):
        rc = cli_main(["flops", "--arch", "DiT-S/8", *bad])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and message in err, (bad, err)
    # cfg runs both branches at gamma_strong (the old CLI refused --gamma-strong for cfg)
    rc = cli_main(["flops", "--arch", "DiT-S/8", "--routes", "0-11", "--guidance", "cfg", "--omega", "2",
                   "--gamma-strong", "0.5", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["per_branch"][0] == out["per_branch"][1] < out["dense_gflops"]


# ---- MaskDiT ------------------------------------------------------------------------------------
TINY_MASK = dict(input_size=8, patch_size=2, in_channels=2, hidden_size=16, depth=3, num_heads=2, num_classes=5,
                 decoder_hidden_size=8, decoder_depth=2, decoder_num_heads=2)


@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 0.75, 0.9])
def test_fast_path_equals_full_trace_of_masked_maskdit(gamma):
    from sgbench.models.maskdit import MaskDiT, MaskDiTConfig

    for extra in ({}, {"mask_token": False, "learn_sigma": True, "mlp_ratio": 2.0}):
        cfg = MaskDiTConfig(**TINY_MASK, **extra)
        model = MaskDiT(cfg)
        assert forward_flops(cfg, gamma) == trace_model_flops(model, gamma)


def test_maskdit_attention_terms_and_masking_saves_encoder_flops(monkeypatch):
    from sgbench.models.maskdit import MaskDiT, MaskDiTConfig

    cfg = MaskDiTConfig(**{**TINY_MASK, "num_heads": 4})
    model = MaskDiT(cfg)
    # analytic attention (encoder: kept tokens at width 16, decoder: all 16 tokens at width 8) == explicit matmuls
    with_sdpa = trace_model_flops(model, 0.5).with_attention
    n, k = cfg.num_tokens, int(cfg.num_tokens * (1 - 0.5))
    assert trace_model_flops(model, 0.5).attention == 3 * 2 * k * k * 16 + 2 * 2 * n * n * 8
    monkeypatch.setattr(F, "scaled_dot_product_attention", _explicit_attention)
    assert trace_model_flops(model, 0.5).fvcore == with_sdpa
    # only the encoder blocks and decoder_layer shrink with gamma: dense - masked is affine in the dropped count
    drop = [forward_flops(cfg, g).fvcore for g in (0.0, 0.25, 0.5)]
    assert drop[0] - drop[1] == drop[1] - drop[2] > 0


def test_maskdit_presets_by_name_and_config():
    from sgbench.models.maskdit import maskdit_config

    r = gflops_per_image("MaskDiT-XL/2", guidance=GuidanceConfig(gamma_strong=0.5))
    dense = gflops_per_image("MaskDiT-XL/2")
    assert r.dense_gflops == dense.gflops == pytest.approx(121.09, abs=0.01) and r.routes == []
    assert r.dense_gflops_attn == pytest.approx(125.85, abs=0.01)
    assert (r.gflops, r.gflops_attn) == pytest.approx((63.90, 65.50), abs=0.01)  # 28 encoder blocks, 128 tokens
    # MaskDiT-XL/2 = DiT-XL/2's encoder plus a decoder (8 blocks of width 512 over all 256 tokens)
    assert dense.gflops > gflops_per_image("DiT-XL/2").gflops
    by_config = gflops_per_image(maskdit_config("MaskDiT-XL/2"), guidance=GuidanceConfig(gamma_strong=0.5))
    assert (by_config.gflops, by_config.dense_gflops) == (r.gflops, r.dense_gflops)
    with pytest.raises(UserError, match="no routes"):
        gflops_per_image("MaskDiT-XL/2", routes=["2-24"])


def test_cli_flops_maskdit(capsys):
    rc = cli_main(["flops", "--arch", "MaskDiT-XL/2", "--guidance", "sg", "--omega", "2", "--gamma-strong", "0",
                   "--gamma-weak", "0.5", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["arch"] == "MaskDiT-XL/2" and out["routes"] == []
    assert out["per_branch"] == pytest.approx([121.086, 63.901], abs=1e-3)
    assert out["per_branch_attn"] == pytest.approx([125.851, 65.495], abs=1e-3)
    rc = cli_main(["flops", "--arch", "MaskDiT-XL/2", "--routes", "2-24"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "no routes" in err


# ---- text-to-image DiT ------------------------------------------------------------------------------
def _t2i_configs():
    from sgbench.models.t2i_dit import t2i_config

    # T2I-shapes: 64 tokens, width 128, depth 6, route 1-4; T2I-tiny: 16 tokens, width 64, two routes
    # touching the first and the last block.
    return [t2i_config("T2I-shapes"), t2i_config("T2I-tiny", routes=("0-0", "2-3"))]


def _t2i_expected_attention(cfg, gamma, text_len):
    """Attention scores counted by hand: routed blocks see N - int(N * gamma) image tokens."""
    n, D, L = cfg.num_tokens, cfg.hidden_size, text_len
    k = n - int(n * gamma)
    routed = {i for r in cfg.routes for i in range(r.start, r.end + 1)}
    tokens = [k if i in routed else n for i in range(cfg.depth)]
    self_attn = sum(2 * m * m * D for m in tokens)  # QK^T and AV over the block's image tokens
    cross_attn = sum(2 * m * L * D for m in tokens)  # image queries x L text keys/values
    adapter = cfg.adapter_layers * 2 * L * L * D  # text-adapter self-attention over L tokens
    return self_attn + cross_attn + adapter


@pytest.mark.parametrize("text_len", [5, 12])
def test_t2i_fast_path_equals_full_trace_of_routed_model(text_len):
    from sgbench.models.t2i_dit import T2IDiT

    for cfg in _t2i_configs():
        model = T2IDiT(cfg)
        for gamma in (0.0, 0.5, 0.75):
            full = trace_model_flops(model, gamma, text_len=text_len)
            assert forward_flops(cfg, gamma, text_len=text_len) == full
            assert full.attention == _t2i_expected_attention(cfg, gamma, text_len)


def test_t2i_attention_terms_equal_fvcore_on_explicit_matmuls(monkeypatch):
    from sgbench.models.t2i_dit import T2IDiT

    cfg = _t2i_configs()[0]
    model = T2IDiT(cfg)
    fast = forward_flops(cfg, 0.5, text_len=7).with_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention", _explicit_attention)  # the mask is all-True
    assert trace_model_flops(model, 0.5, text_len=7).fvcore == fast


def test_t2i_hand_count_of_token_and_text_terms():
    # Per image token a block costs qkv 3D^2 + proj D^2 + cross q D^2 + cross proj D^2 + SwiGLU 3 D F
    # (RMSNorm and rotary are free in fvcore); per text token each block projects K/V (2 D^2) and the
    # adapter costs its input projection text_dim * D plus per layer 4 D^2 + 3 D F.
    cfg = _t2i_configs()[0]
    D, F_, n, k = cfg.hidden_size, cfg.ffn_hidden, cfg.num_tokens, cfg.num_tokens // 2
    routed = cfg.routes[0].end - cfg.routes[0].start + 1
    per_token = 6 * D * D + 3 * D * F_
    dense, half = (forward_flops(cfg, g, text_len=8).fvcore for g in (0.0, 0.5))
    assert dense - half == routed * (n - k) * per_token
    per_text_token = cfg.depth * 2 * D * D + cfg.text_dim * D + cfg.adapter_layers * (4 * D * D + 3 * D * F_)
    longer = forward_flops(cfg, 0.0, text_len=11).fvcore
    assert longer - dense == 3 * per_text_token


def test_t2i_text_len_required_and_checked():
    from sgbench.models.t2i_dit import t2i_config

    with pytest.raises(UserError, match="needs text_len"):
        gflops_per_image("T2I-shapes")
    with pytest.raises(UserError, match="needs text_len"):
        forward_flops(t2i_config("T2I-shapes"))
    with pytest.raises(UserError, match="integer >= 1"):
        gflops_per_image("T2I-shapes", text_len=0)
    with pytest.raises(UserError, match="text_len applies to t2i architectures only"):
        gflops_per_image("SiT-XL/2", text_len=77)
    with pytest.raises(UserError, match="num_classes"):
        gflops_per_image("T2I-shapes", text_len=8, num_classes=10)


def test_t2i_presets_routes_and_configs():
    from sgbench.models.t2i_dit import t2i_config

    cfg = _t2i_configs()[0]
    sg = GuidanceConfig("cfg+sg", 2.0, 0.2, 0.7)
    by_name = gflops_per_image("T2I-shapes", guidance=sg, steps=4, text_len=9)
    assert by_name.routes == ["1-4"] and by_name.text_len == 9 and by_name.arch == "T2I-shapes"
    expected = forward_flops(cfg, 0.2, text_len=9).fvcore + forward_flops(cfg, 0.7, text_len=9).fvcore
    assert by_name.gflops * 1e9 == pytest.approx(expected)
    assert by_name.relative_to_unguided == pytest.approx(expected / forward_flops(cfg, 0.0, text_len=9).fvcore)
    by_config = gflops_per_image(cfg, guidance=sg, steps=4, text_len=9)
    assert by_config.gflops == by_name.gflops
    # routes override the preset's, like DiT; an empty sequence removes them
    half = GuidanceConfig(gamma_strong=0.5)
    other = gflops_per_image("T2I-shapes", routes=["0-4"], guidance=half, text_len=9)
    assert other.routes == ["0-4"]
    assert other.gflops * 1e9 == forward_flops(t2i_config("T2I-shapes", routes=("0-4",)), 0.5, text_len=9).fvcore
    with pytest.raises(UserError, match="no routes"):
        gflops_per_image("T2I-shapes", routes=[], guidance=half, text_len=9)


def test_tr_dit_2_5b_gflops():
    # 1024 image tokens, width 2048, 34 blocks (routes 2-30), 128 text tokens. Hand estimate without
    # attention: 34 blocks * 1024 tokens * (6 D^2 + 3 D F) + the text terms ~ 2.13 TFLOPs.
    dense = gflops_per_image("TR-DiT-2.5B", text_len=128)
    assert dense.gflops == pytest.approx(2131.072, abs=1e-3) and dense.gflops_attn == pytest.approx(2295.489, abs=1e-3)
    D, n, L = 2048, 1024, 128
    attention = 34 * (2 * n * n * D + 2 * n * L * D) + 2 * 2 * L * L * D
    assert (dense.gflops_attn - dense.gflops) * 1e9 == pytest.approx(attention)
    sg = gflops_per_image("TR-DiT-2.5B", guidance=GuidanceConfig("cfg+sg", 2.0, 0.2, 0.7), steps=50, text_len=128)
    assert sg.relative_to_unguided == pytest.approx(1.2517, abs=1e-4)
    assert sg.gflops_attn / sg.dense_gflops_attn == pytest.approx(1.2304, abs=1e-4)


def test_cli_flops_t2i(capsys):
    rc = cli_main(["flops", "--arch", "T2I-shapes", "--guidance", "cfg+sg", "--omega", "2", "--gamma-strong", "0.2",
                   "--gamma-weak", "0.7", "--steps", "10", "--text-len", "16", "--json"])
    out = json.loads(capsys.readouterr().out)
    cfg = _t2i_configs()[0]
    assert rc == 0 and out["arch"] == "T2I-shapes" and out["routes"] == ["1-4"] and out["text_len"] == 16
    assert out["per_branch"] == pytest.approx([forward_flops(cfg, g, text_len=16).fvcore / 1e9 for g in (0.2, 0.7)])
    assert out["dense_gflops"] == pytest.approx(forward_flops(cfg, 0.0, text_len=16).fvcore / 1e9)
    rc = cli_main(["flops", "--arch", "T2I-shapes", "--routes", "0-4", "--gamma-strong", "0.5", "--text-len", "16",
                   "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["routes"] == ["0-4"]
    rc = cli_main(["flops", "--arch", "T2I-shapes", "--guidance", "cfg", "--omega", "2"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--text-len" in err
    rc = cli_main(["flops", "--arch", "SiT-XL/2", "--text-len", "16"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "text_len applies to t2i" in err
