"""Pure pieces of training: flow-matching interpolation, the masked (eq. A4) loss, warm-up,
data sharding, and the task registry."""

import numpy as np
import pytest
import torch

from sgbench.errors import UserError
from sgbench.train import flow
from sgbench.train.loop import batch_indices, lr_at
from sgbench.train.tasks import TASKS, TrainTask, get_task, register_task


def test_interpolate_endpoints_and_target():
    x, z = torch.full((2, 1, 2, 2), 3.0), torch.full((2, 1, 2, 2), -1.0)
    xt, v = flow.interpolate(x, z, torch.tensor([0.0, 1.0]))
    assert torch.equal(xt[0], z[0]) and torch.equal(xt[1], x[1])  # t = 0 noise, t = 1 data
    assert torch.equal(v, x - z)
    xt, _ = flow.interpolate(x, z, torch.tensor([0.25, 0.25]))
    assert torch.allclose(xt, torch.full_like(x, 0.0))


def test_time_sampling_ranges():
    g = torch.Generator().manual_seed(0)
    u = flow.sample_t(4000, "uniform", generator=g)
    ln = flow.sample_t(4000, "logit_normal", generator=g)
    assert 0 <= u.min() and u.max() < 1 and abs(float(u.mean()) - 0.5) < 0.02
    assert 0 < ln.min() and ln.max() < 1 and abs(float(ln.median()) - 0.5) < 0.03
    assert float(((ln > 0.25) & (ln < 0.75)).float().mean()) > float(((u > 0.25) & (u < 0.75)).float().mean())


def test_token_mask_to_pixels():
    keep = torch.tensor([[0, 3]])
    m = flow.token_mask(keep, 4)
    assert m.tolist() == [[0.0, 1.0, 1.0, 0.0]]
    pm = flow.patch_mask_to_pixels(m, side=2, patch=2)
    assert pm.shape == (1, 1, 4, 4)
    assert pm[0, 0, :2, 2:].eq(1).all() and pm[0, 0, :2, :2].eq(0).all() and pm[0, 0, 2:, 2:].eq(0).all()


def test_masked_loss_matches_eq_a4():
    # 1 sample, 1 channel, 2x1 "tokens" of one pixel each: token 0 visible, token 1 masked.
    pred = torch.tensor([[[[1.0, 4.0]]]])
    target = torch.tensor([[[[0.0, 1.0]]]])
    mask = torch.tensor([[[[0.0, 1.0]]]])
    t = torch.tensor([0.5])
    total, fm, mae = flow.masked_flow_matching_loss(pred, target, t, mask, mae_lambda=2.0)
    assert fm.item() == 1.0  # (1 - 0)^2 on the visible token
    assert mae.item() == pytest.approx(0.25 * 9.0)  # (1 - t)^2 (4 - 1)^2 on the masked token
    assert total.item() == pytest.approx(1.0 + 2.0 * 2.25)


def test_lr_warmup():
    assert lr_at(0, 1e-3, 4) == pytest.approx(2.5e-4)
    assert lr_at(3, 1e-3, 4) == pytest.approx(1e-3)
    assert lr_at(100, 1e-3, 4) == 1e-3 and lr_at(0, 1e-3, 0) == 1e-3


def test_batch_indices_shard_an_epoch_without_overlap():
    n, b, world = 40, 5, 2
    per_epoch = (n // world) // b
    seen = np.concatenate([batch_indices(s, n, b, r, world, 7) for r in range(world) for s in range(per_epoch)])
    assert sorted(seen.tolist()) == list(range(n))  # every item exactly once per epoch
    assert not np.array_equal(batch_indices(0, n, b, 0, 2, 7), batch_indices(per_epoch, n, b, 0, 2, 7))
    assert np.array_equal(batch_indices(3, n, b, 1, 2, 7), batch_indices(3, n, b, 1, 2, 7))


def test_task_registry_lazy_builtin_and_plugins():
    assert get_task("class_image").name == "class_image"
    assert get_task("classifier").name == "classifier"
    with pytest.raises(UserError, match="unknown task 'nope'"):
        get_task("nope")

    @register_task
    class Dummy(TrainTask):
        name = "dummy_test_task"

    try:
        assert get_task("dummy_test_task") is Dummy
    finally:
        TASKS.pop("dummy_test_task")
