"""T2I DiT: routing, rotary, masks, parameter count; text encoders (tiny + local HF dir)."""

import pytest
import torch

from sgbench.errors import UserError
from sgbench.models.routing import sample_keep_indices
from sgbench.models.t2i_dit import (
    T2IDiT,
    TextCondition,
    apply_axial_rope,
    axial_positions,
    axial_rope_freqs,
    count_parameters,
    t2i_config,
)
from sgbench.models.text_encoders import TextEncoderSpec, build_text_encoder, hash_tokenize, t2i_denoiser


def _model(**kw):
    torch.manual_seed(0)
    m = T2IDiT(t2i_config("T2I-tiny", **kw)).eval()
    # non-zero output layer and cross-attention so every path influences the output
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return m


def _inputs(B=3, L=5, text_dim=32):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, 4, 8, 8, generator=g)
    t = torch.rand(B, generator=g)
    emb = torch.randn(B, L, text_dim, generator=g)
    mask = torch.ones(B, L, dtype=torch.bool)
    mask[0, 3:] = False
    return x, t, emb, mask


def test_2p5b_parameter_count_on_meta():
    n = count_parameters(t2i_config("TR-DiT-2.5B"))
    assert 2.35e9 < n < 2.6e9, n
    c = t2i_config("TR-DiT-2.5B")
    assert (c.depth, c.hidden_size, c.num_heads, c.train_gamma) == (34, 2048, 16, 0.5)
    assert [(r.start, r.end) for r in c.routes] == [(2, 30)]


def test_gamma_zero_equals_dense_and_no_route_model():
    m = _model()
    x, t, emb, mask = _inputs()
    dense = m(x, t, emb, mask)
    assert torch.equal(m(x, t, emb, mask, gamma=0.0, generator=torch.Generator().manual_seed(3)), dense)
    m2 = _model(routes=())
    m2.load_state_dict(m.state_dict())
    assert torch.equal(m2(x, t, emb, mask), dense)
    with pytest.raises(UserError):
        m2(x, t, emb, mask, gamma=0.5)


def test_routed_forward_depends_on_kept_set_and_batch_order():
    m = _model()
    x, t, emb, mask = _inputs()
    idx = sample_keep_indices(3, 16, 0.5, torch.Generator().manual_seed(4))
    out = m(x, t, emb, mask, gamma=0.5, keep_idx=idx)
    assert not torch.allclose(out, m(x, t, emb, mask))
    perm = torch.tensor([2, 0, 1])
    out_p = m(x[perm], t[perm], emb[perm], mask[perm], gamma=0.5, keep_idx=idx[perm])
    torch.testing.assert_close(out_p, out[perm], rtol=1e-5, atol=1e-6)
    assert torch.equal(m(x, t, emb, mask, gamma=0.5, keep_idx=idx), out)  # no hidden randomness
    assert torch.equal(m(x, t, emb, mask, gamma=0.5, keep_idx=idx.flip(1)), out)  # only the kept set matters
    # a per-sample generator list reproduces sample i's selection whatever the batch
    gens = [torch.Generator().manual_seed(10 + i) for i in range(3)]
    full = m(x, t, emb, mask, gamma=0.5, generator=gens)
    one = m(x[1:2], t[1:2], emb[1:2], mask[1:2], gamma=0.5, generator=[torch.Generator().manual_seed(11)])
    torch.testing.assert_close(one, full[1:2], rtol=1e-5, atol=1e-6)


def test_routed_tokens_keep_their_rotary_positions():
    """Routing a sequence whose kept tokens are all tokens of a smaller problem: a token's
    phase must follow its true 2D position, not its index in the gathered sequence."""
    freqs = axial_rope_freqs(16, 2)
    pos = axial_positions(4)[None]
    q = torch.randn(1, 16, 2, 16)
    full = apply_axial_rope(q, pos, freqs)
    keep = torch.tensor([[1, 5, 10, 15]])
    gathered = apply_axial_rope(q[:, keep[0]], pos[:, keep[0]], freqs)
    torch.testing.assert_close(gathered, full[:, keep[0]])
    # rotation is norm-preserving and relative: <R(p)q, R(p)k> is invariant to a common shift
    k = torch.randn(1, 16, 2, 16)
    shift = torch.tensor([0.3, -0.2])
    a = (apply_axial_rope(q, pos, freqs) * apply_axial_rope(k, pos, freqs)).sum(-1)
    b = (apply_axial_rope(q, pos + shift, freqs) * apply_axial_rope(k, pos + shift, freqs)).sum(-1)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_text_padding_is_ignored():
    m = _model()
    x, t, emb, mask = _inputs()
    out = m(x, t, emb, mask)
    emb2 = emb.clone()
    emb2[0, 3:] = 100.0  # padded positions of sample 0
    torch.testing.assert_close(m(x, t, emb2, mask), out)
    emb3 = emb.clone()
    emb3[0, 1] += 1.0  # a real token changes the output
    assert not torch.allclose(m(x, t, emb3, mask)[0], out[0])


def test_no_biases_and_rmsnorm():
    m = _model()
    assert all(mod.bias is None for mod in m.modules() if isinstance(mod, torch.nn.Linear))
    assert not any(isinstance(mod, torch.nn.LayerNorm) for mod in m.modules())
    assert m.blocks[0].ffn.w1.out_features == int(64 * 8 / 3)


def test_tiny_encoder_is_deterministic_and_denoiser_conditions():
    spec = TextEncoderSpec(kind="tiny", dim=32, max_length=16, seed=7)
    enc_a, enc_b = build_text_encoder(spec), build_text_encoder(spec)
    c = enc_a.encode(["two red circles above a blue square", "a green triangle"])
    assert torch.equal(c.emb, enc_b.encode(["two red circles above a blue square", "a green triangle"]).emb)
    assert c.mask.sum(1).tolist() == [8, 4]  # BOS + words
    assert hash_tokenize("", 4096, 8) == [1]
    den = t2i_denoiser(_model(), enc_a, random_prompts=["a red circle", "a blue square", "a green triangle"])
    null = den.null_condition(c)
    assert null.emb.shape == c.emb.shape and null.mask.sum(1).tolist() == [1, 1]
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    r1 = den.random_condition(c, gens)
    r2 = den.random_condition(c[1:], [torch.Generator().manual_seed(1)])
    assert r1.prompts[1] == r2.prompts[0] and r1.prompts[0] in {"a red circle", "a blue square", "a green triangle"}
    den.random_pool = None
    assert den.random_condition(c, gens).prompts == (c.prompts[1], c.prompts[0])
    x = torch.randn(2, 4, 8, 8)
    v = den(x, 0.5, c, gamma=0.5, generator=gens)
    assert v.shape == x.shape
    both = TextCondition.cat([c, null[:1]])
    assert len(both) == 3 and both.prompts[2] == ""


def test_hf_encoder_from_local_dir(tmp_path):
    transformers = pytest.importorskip("transformers")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "circle", "blue", "square", "describe"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    tok = transformers.BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    cfg = transformers.BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=64, max_position_embeddings=32)
    torch.manual_seed(0)
    model_dir = tmp_path / "bert"
    transformers.BertModel(cfg).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    enc = build_text_encoder({"kind": "hf", "path": str(model_dir), "max_length": 16, "prefix": "describe"})
    assert enc.dim == 32
    c = enc.encode(["a red circle", "a blue square blue square"])
    assert c.emb.shape == (2, 8, 32)  # [CLS] describe ... [SEP]
    assert c.mask.sum(1).tolist() == [6, 8]
    assert torch.all(c.emb[0, 6] == 0)
    ref = transformers.BertModel.from_pretrained(model_dir).eval()
    ids = tok(["describe a red circle"], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(c.emb[:1, :6], ref(**ids).last_hidden_state)
    den = t2i_denoiser(_model(text_dim=32), enc)
    assert den.null_condition(c).mask[0].sum() == 3  # [CLS] describe [SEP]
    with pytest.raises(UserError, match="text_encoder.path"):
        build_text_encoder({"kind": "hf", "path": str(tmp_path / "missing")})


def test_hf_encoder_decoder_and_submodule(tmp_path):
    transformers = pytest.importorskip("transformers")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "circle"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    tok = transformers.BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    cfg = transformers.T5Config(vocab_size=len(words), d_model=16, d_kv=8, d_ff=32, num_layers=1,
                                num_decoder_layers=1, num_heads=2, decoder_start_token_id=0)
    torch.manual_seed(0)
    model_dir = tmp_path / "t5"
    transformers.T5Model(cfg).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    auto = build_text_encoder({"kind": "hf", "path": str(model_dir)})  # encoder-decoder: its encoder
    sub = build_text_encoder({"kind": "hf", "path": str(model_dir), "submodule": "encoder"})
    a, b = auto.encode(["a red circle"]), sub.encode(["a red circle"])
    assert auto.dim == 16 and a.emb.shape == (1, 5, 16)
    torch.testing.assert_close(a.emb, b.emb)
    with pytest.raises(UserError, match="submodule"):
        build_text_encoder({"kind": "hf", "path": str(model_dir), "submodule": "language_model"})
