"""MaskDiT backbone: Anima-Lab/MaskDiT layout, one-hot labels, masking at inference."""

import pytest
import torch

from sgbench.errors import UserError
from sgbench.models import MASKDIT_PRESETS, MaskDiT, maskdit_config, sample_keep_indices


def tiny(mask_token=True):
    cfg = maskdit_config(
        "MaskDiT-S/2", input_size=8, hidden_size=32, depth=3, num_heads=2, num_classes=5,
        decoder_hidden_size=16, decoder_depth=2, decoder_num_heads=2, mask_token=mask_token,
    )
    model = MaskDiT(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model


def inputs(b=3):
    return torch.randn(b, 4, 8, 8), torch.rand(b), torch.arange(b) % 6


def test_layout_matches_maskdit(monkeypatch):
    monkeypatch.setattr(MaskDiT, "initialize_weights", lambda self: None)
    with torch.device("meta"):  # shapes only: no memory, no init cost
        m = MaskDiT(maskdit_config("MaskDiT-XL/2", input_size=8))
    sd = m.state_dict()
    expect = {
        "y_embedder.embedding_table.weight": (1152, 1000),  # bias-free Linear over one-hot labels
        "pos_embed": (1, 16, 1152),
        "blocks.27.adaLN_modulation.1.weight": (6 * 1152, 1152),
        "decoder_layer.linear.weight": (512, 1152),
        "decoder_layer.adaLN_modulation.1.weight": (2 * 1152, 1152),
        "decoder_pos_embed": (1, 16, 512),
        "decoder_blocks.7.attn.qkv.weight": (3 * 512, 512),
        "decoder_blocks.7.adaLN_modulation.1.weight": (6 * 512, 1152),  # conditioned on the encoder-width c
        "mask_token": (1, 1, 512),
        "final_layer.linear.weight": (2 * 2 * 4, 512),  # learn_sigma False
        "final_layer.adaLN_modulation.1.weight": (2 * 512, 1152),
    }
    for k, shape in expect.items():
        assert tuple(sd[k].shape) == shape, k
    assert "decoder_blocks.8.attn.qkv.weight" not in sd and "y_embedder.embedding_table.bias" not in sd
    assert "MaskDiT-H/2" in MASKDIT_PRESETS and maskdit_config("DiT-B/2").depth == 12  # MaskDiT's own names
    with pytest.raises(UserError, match="unknown MaskDiT"):
        maskdit_config("SiT-B/2")


def test_labels_are_one_hot_with_zero_null():
    m = tiny()
    y = torch.tensor([0, 3, 5])  # 5 = null
    onehot = m.y_embedder.one_hot(y)
    assert torch.equal(onehot, torch.tensor([[1.0, 0, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 0]]))
    assert torch.equal(m.y_embedder(y)[2], torch.zeros(32))
    x, t, _ = inputs()
    assert torch.equal(m(x, t, y), m(x, t, onehot))


def test_gamma_zero_is_the_dense_forward():
    m = tiny()
    x, t, y = inputs()
    dense = m(x, t, y)
    assert torch.equal(m(x, t, y, gamma=0.0, generator=torch.Generator().manual_seed(0)), dense)
    # MaskDiT's own count int(16 * (1 - 0.05)) = 15 drops a token where TREAD's 16 - int(0.8) drops none
    assert not torch.equal(m(x, t, y, gamma=0.05, generator=torch.Generator().manual_seed(0)), dense)
    assert not torch.allclose(m(x, t, y, gamma=0.5, generator=torch.Generator().manual_seed(0)), dense)


@pytest.mark.parametrize("mask_token", [True, False])
def test_encoder_sees_kept_tokens_and_decoder_gets_mask_tokens(mask_token):
    m = tiny(mask_token)
    x, t, y = inputs()
    keep = sample_keep_indices(3, 16, 0.5, torch.Generator().manual_seed(1))
    seen = {}
    m.blocks[0].register_forward_pre_hook(lambda mod, args: seen.__setitem__("enc", args[0].clone()))
    m.decoder_blocks[0].register_forward_pre_hook(lambda mod, args: seen.__setitem__("dec", args[0].clone()))
    m(x, t, y, gamma=0.5, keep_idx=keep)
    assert seen["enc"].shape == (3, 8, 32)
    dropped = torch.ones(3, 16, dtype=torch.bool)
    dropped[torch.arange(3)[:, None], keep] = False
    fill = m.mask_token[0, 0] if mask_token else torch.zeros(16)
    expected = (fill + m.decoder_pos_embed[0]).expand(3, 16, 16)[dropped]
    assert torch.equal(seen["dec"][dropped], expected)


def test_masked_forward_depends_only_on_kept_set_and_per_sample_generators():
    m = tiny()
    x, t, y = inputs(3)
    keep = sample_keep_indices(3, 16, 0.5, torch.Generator().manual_seed(2))
    shuffled = torch.stack([row[torch.randperm(len(row))] for row in keep])
    out = m(x, t, y, gamma=0.5, keep_idx=keep)
    assert torch.equal(out, m(x, t, y, gamma=0.5, keep_idx=shuffled))
    # kept patches' encoder features ignore dropped patches; the decoder sees mask tokens there
    x2 = x.clone()
    d = (~torch.isin(torch.arange(16), keep[0])).nonzero()[0, 0].item()
    x2[0, :, (d // 4) * 2:(d // 4) * 2 + 2, (d % 4) * 2:(d % 4) * 2 + 2] += 3.0
    assert torch.equal(m(x2, t, y, gamma=0.5, keep_idx=keep), out)
    perm = torch.tensor([2, 0, 1])
    assert torch.allclose(m(x[perm], t[perm], y[perm], gamma=0.5, keep_idx=keep[perm]), out[perm], rtol=0, atol=1e-6)
    gens = lambda seeds: [torch.Generator().manual_seed(s) for s in seeds]  # noqa: E731
    full = m(x, t, y, gamma=0.5, generator=gens([7, 8, 9]))
    assert torch.allclose(m(x[2:], t[2:], y[2:], gamma=0.5, generator=gens([9])), full[2:], rtol=1e-5, atol=1e-5)


def _tokens_seen(module, model, *args, **kwargs) -> int:
    seen = []
    handle = module.register_forward_pre_hook(lambda mod, a: seen.append(a[0].shape[1]))
    with torch.no_grad():
        model(*args, **kwargs)
    handle.remove()
    return seen[0]


def test_each_family_keeps_its_own_token_count_in_the_forward_and_in_the_flop_count():
    """N = 256, gamma = 0.9: MaskDiT keeps int(N (1 - gamma)) = 25 (Anima-Lab get_mask), a TREAD-routed
    DiT N - int(N gamma) = 26; the FLOP models count the same tokens (checked against full traces)."""
    from sgbench.models import DiT, config_for, forward_flops, get_backbone_family, trace_model_flops

    assert get_backbone_family("maskdit").kept_tokens(256, 0.9) == 25
    assert get_backbone_family("dit").kept_tokens(256, 0.9) == 26
    assert get_backbone_family("t2i").kept_tokens(256, 0.9) == 26
    small = dict(input_size=32, hidden_size=8, depth=2, num_heads=2, num_classes=3)
    mask = MaskDiT(maskdit_config("MaskDiT-S/2", **small, decoder_hidden_size=8, decoder_depth=1,
                                  decoder_num_heads=2)).eval()
    dit = DiT(config_for("DiT-S/2", routes=["0-1"], **small)).eval()
    x, t, y = torch.randn(1, 4, 32, 32), torch.rand(1), torch.tensor([1])
    g = torch.Generator().manual_seed(0)
    assert _tokens_seen(mask.blocks[0], mask, x, t, y, gamma=0.9, generator=g) == 25
    assert _tokens_seen(mask.decoder_layer, mask, x, t, y, gamma=0.9, generator=g) == 25
    assert _tokens_seen(mask.decoder_blocks[0], mask, x, t, y, gamma=0.9, generator=g) == 256  # mask tokens in
    assert _tokens_seen(dit.blocks[1], dit, x, t, y, gamma=0.9, generator=g) == 26
    for model, k, width in ((mask, 25, 8), (dit, 26, 8)):
        count = forward_flops(model.config, 0.9)
        assert count == trace_model_flops(model, 0.9)  # the composed count equals the full trace
        encoder = 2 * 2 * k * k * width  # attention scores of the 2 encoder / routed blocks
        decoder = 2 * 256 * 256 * 8 if model is mask else 0
        assert count.attention == encoder + decoder
