"""DiT/SiT with TREAD routes: presets, route semantics, kept-index reproducibility."""

import pytest
import torch

from sgbench.errors import UserError
from sgbench.models import DIT_PRESETS, DiT, DiTConfig, Route, dit_config, num_kept, sample_keep_indices
from sgbench.models.routing import check_keep_indices


def tiny(routes=("1-2",), **kw):
    cfg = dit_config("DiT-S/2", input_size=8, hidden_size=32, depth=4, num_heads=2, num_classes=5, routes=routes, **kw)
    model = DiT(cfg).eval()
    with torch.no_grad():  # DiT's adaLN-zero init makes every output 0; randomise everything
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model


def inputs(b=3):
    return torch.randn(b, 4, 8, 8), torch.rand(b), torch.arange(b) % 6


def test_presets_match_dit_sizes():
    assert len(DIT_PRESETS) == 24
    c = dit_config("SiT-XL/2")
    assert (c.depth, c.hidden_size, c.num_heads, c.patch_size, c.num_tokens) == (28, 1152, 16, 2, 256)
    c = dit_config("DiT-B/4", routes=["2-8"])
    assert (c.depth, c.hidden_size, c.num_heads, c.patch_size, c.num_tokens) == (12, 768, 12, 4, 64)
    assert c.routes == (Route(2, 8),)
    with pytest.raises(UserError, match="unknown architecture"):
        dit_config("DiT-Q/2")


def test_state_dict_layout_is_dits():
    m = DiT(dit_config("DiT-S/8", input_size=32, num_classes=10))
    sd = m.state_dict()
    expect = {
        "x_embedder.proj.weight": (384, 4, 8, 8),
        "t_embedder.mlp.0.weight": (384, 256),
        "t_embedder.mlp.2.weight": (384, 384),
        "y_embedder.embedding_table.weight": (11, 384),  # null class at index num_classes
        "pos_embed": (1, 16, 384),
        "blocks.11.attn.qkv.weight": (1152, 384),
        "blocks.11.attn.proj.weight": (384, 384),
        "blocks.11.mlp.fc1.weight": (1536, 384),
        "blocks.11.mlp.fc2.weight": (384, 1536),
        "blocks.11.adaLN_modulation.1.weight": (2304, 384),
        "final_layer.linear.weight": (8 * 8 * 8, 384),  # learn_sigma: 2 x C x p^2
        "final_layer.adaLN_modulation.1.weight": (768, 384),
    }
    for k, shape in expect.items():
        assert tuple(sd[k].shape) == shape, k
    assert len(sd) == 8 + 12 * 10 + 4  # embedders + 12 blocks x 10 tensors + final layer


def test_route_parsing_and_validation():
    assert Route.parse("2-24") == Route(2, 24) == Route.parse((2, 24))
    assert Route.parse({"selection_ratio": 0.5, "start_layer_idx": 2, "end_layer_idx": 8}) == Route(2, 8)
    assert str(Route(2, 8)) == "2-8"
    with pytest.raises(UserError, match="START-END"):
        Route.parse("2to8")
    with pytest.raises(UserError, match="depth"):
        dit_config("DiT-S/2", routes=["2-12"])
    with pytest.raises(UserError, match="overlap"):
        dit_config("DiT-S/2", routes=["2-5", "5-8"])
    with pytest.raises(UserError, match="divisible"):
        DiTConfig(input_size=9, patch_size=2)
    assert DiTConfig(**dit_config("DiT-S/2", routes=["1-2", "4-6"]).to_dict()).routes == (Route(1, 2), Route(4, 6))


def test_gamma_zero_is_dense_and_needs_no_routes():
    m = tiny()
    x, t, y = inputs()
    dense = tiny(routes=())
    dense.load_state_dict(m.state_dict())
    out = m(x, t, y, gamma=0.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, dense(x, t, y))
    assert torch.equal(m(x, t, y, gamma=0.05), out)  # int(16 * 0.05) = 0 tokens dropped
    assert not torch.equal(m(x, t, y, gamma=0.5, generator=torch.Generator().manual_seed(0)), out)
    with pytest.raises(UserError, match="no routes"):
        dense(x, t, y, gamma=0.5)
    with pytest.raises(UserError, match=r"\[0, 1\)"):
        m(x, t, y, gamma=1.0)


def test_tokens_dropped_like_tread():
    assert num_kept(256, 0.5) == 128 and num_kept(256, 0.9) == 26 and num_kept(10, 0.25) == 8
    idx = sample_keep_indices(4, 256, 0.9, torch.Generator().manual_seed(0))
    assert idx.shape == (4, 26) and torch.equal(idx, idx.sort(dim=1).values)
    assert all(len(set(row.tolist())) == 26 for row in idx)


def test_routed_forward_depends_only_on_kept_set():
    m = tiny()
    x, t, y = inputs()
    keep = sample_keep_indices(3, 16, 0.5, torch.Generator().manual_seed(1))
    shuffled = torch.stack([row[torch.randperm(len(row))] for row in keep])
    out = m(x, t, y, gamma=0.5, keep_idx=keep)
    assert torch.equal(out, m(x, t, y, gamma=0.5, keep_idx=shuffled))
    other = sample_keep_indices(3, 16, 0.5, torch.Generator().manual_seed(2))
    assert not torch.allclose(out, m(x, t, y, gamma=0.5, keep_idx=other))


def test_dropped_tokens_bypass_the_route_unchanged():
    m = tiny(routes=("1-2",))
    x, t, y = inputs()
    keep = sample_keep_indices(3, 16, 0.5, torch.Generator().manual_seed(3))
    seen = {}

    def record(name):
        def hook(mod, args, output=None):
            seen[name] = (args[0] if output is None else output).clone()

        return hook

    m.blocks[0].register_forward_hook(record("before"))  # full sequence entering the route
    m.blocks[2].register_forward_pre_hook(record("inside"))
    m.blocks[3].register_forward_pre_hook(record("after"))
    m(x, t, y, gamma=0.5, keep_idx=keep)
    assert seen["inside"].shape == (3, 8, 32)  # blocks 1..2 see only the 8 kept tokens
    dropped = torch.ones(3, 16, dtype=torch.bool)
    dropped[torch.arange(3)[:, None], keep] = False
    assert torch.equal(seen["after"][dropped], seen["before"][dropped])
    assert not torch.allclose(seen["after"][~dropped], seen["before"][~dropped])


def test_kept_outputs_ignore_dropped_inputs_when_route_spans_all_blocks():
    m = tiny(routes=("0-3",))
    x, t, y = inputs(1)
    keep = torch.tensor([[0, 1, 2, 3, 8, 9, 10, 11]])  # token index = row * 4 + col (4x4 patches)
    x2 = x.clone()
    x2[:, :, 6:8, 6:8] += 5.0  # patch (3, 3) = token 15, dropped
    a, b = m(x, t, y, gamma=0.5, keep_idx=keep), m(x2, t, y, gamma=0.5, keep_idx=keep)
    assert torch.equal(a[:, :, :2, :], b[:, :, :2, :])  # tokens 0-3 (patch row 0)
    assert not torch.allclose(a[:, :, 6:8, 6:8], b[:, :, 6:8, 6:8])


def test_explicit_kept_indices_independent_of_batch_order():
    m = tiny()
    x, t, y = inputs(4)
    keep = sample_keep_indices(4, 16, 0.5, torch.Generator().manual_seed(4))
    perm = torch.tensor([2, 0, 3, 1])
    out = m(x, t, y, gamma=0.5, keep_idx=keep)
    out_p = m(x[perm], t[perm], y[perm], gamma=0.5, keep_idx=keep[perm])
    assert torch.allclose(out_p, out[perm], rtol=0, atol=1e-6)


def test_per_sample_generators_make_samples_independent_of_batch():
    m = tiny(routes=("0-1", "2-3"))
    x, t, y = inputs(3)
    gens = lambda seeds: [torch.Generator().manual_seed(s) for s in seeds]  # noqa: E731
    full = m(x, t, y, gamma=0.5, generator=gens([10, 11, 12]))
    alone = m(x[1:2], t[1:2], y[1:2], gamma=0.5, generator=gens([11]))
    # same kept tokens; only BLAS blocking differs between batch sizes (a different selection
    # would change outputs by O(1))
    assert torch.allclose(alone, full[1:2], rtol=1e-5, atol=1e-5)
    again = m(x, t, y, gamma=0.5, generator=gens([10, 11, 12]))
    assert torch.equal(full, again)
    with pytest.raises(ValueError, match="generators"):
        m(x, t, y, gamma=0.5, generator=gens([1, 2]))


def test_keep_idx_per_route_and_validation():
    m = tiny(routes=("0-1", "2-3"))
    x, t, y = inputs(2)
    k1 = sample_keep_indices(2, 16, 0.5, torch.Generator().manual_seed(5))
    k2 = sample_keep_indices(2, 16, 0.5, torch.Generator().manual_seed(6))
    same = m(x, t, y, gamma=0.5, keep_idx=k1)
    assert torch.equal(same, m(x, t, y, gamma=0.5, keep_idx=[k1, k1]))
    assert not torch.allclose(same, m(x, t, y, gamma=0.5, keep_idx=[k1, k2]))
    with pytest.raises(UserError, match="2 sparse sections"):
        m(x, t, y, gamma=0.5, keep_idx=[k1])
    with pytest.raises(UserError, match="shape"):
        m(x, t, y, gamma=0.25, keep_idx=k1)  # gamma 0.25 keeps 12, not 8
    with pytest.raises(UserError, match="repeat"):
        check_keep_indices(torch.zeros(2, 8, dtype=torch.long), 2, 16, 8)
    with pytest.raises(UserError, match="lie in"):
        check_keep_indices(torch.full((2, 8), 16), 2, 16, 8)
