import pytest
import torch

from tests.visionkit.conftest import state_copy, states_equal
from visionkit.training import TrainConfig, batches, contrastive_loss, fit, pretrain_contrastive


def test_batches_cover_each_epoch_once():
    seen = torch.cat(list(batches(10, TrainConfig(steps=5, batch_size=2, seed=1))))
    assert sorted(seen.tolist()) == list(range(10))


def test_fit_reduces_a_simple_loss():
    w = torch.nn.Parameter(torch.zeros(3))
    target = torch.tensor([1.0, -2.0, 0.5])
    history = fit([w], lambda idx: ((w - target) ** 2).sum(), 8, TrainConfig(steps=50, lr=0.1))
    assert history[-1] < 0.05 * history[0]
    with pytest.raises(ValueError, match="nothing to train"):
        fit(
            [torch.nn.Parameter(torch.zeros(1), requires_grad=False)],
            lambda i: w.sum(),
            1,
            TrainConfig(),
        )


def test_non_finite_loss_is_reported():
    w = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(FloatingPointError, match="lower lr"):
        fit([w], lambda idx: w.sum() * float("nan"), 2, TrainConfig(steps=2))


def test_contrastive_loss_prefers_matched_pairs():
    e = torch.eye(4)
    assert contrastive_loss(e, e, torch.tensor(10.0)) < contrastive_loss(
        e, e.flip(0), torch.tensor(10.0)
    )


def test_pretraining_trains_then_freezes(backbone):
    before = state_copy(backbone)
    images = torch.rand(8, 3, 32, 32)
    ids = backbone.tokenize(["a red circle", "a black cross"] * 4)
    history = pretrain_contrastive(
        backbone, images, ids, TrainConfig(steps=3, batch_size=4), groups=torch.arange(8) % 3
    )
    assert len(history) == 3
    assert not states_equal(before, state_copy(backbone))
    assert backbone.parameter_count().trainable == 0
    with pytest.raises(ValueError, match="8 images but 2 captions"):
        pretrain_contrastive(backbone, images, ids[:2], TrainConfig(steps=1))
