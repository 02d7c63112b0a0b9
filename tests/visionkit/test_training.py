import math

import pytest
import torch

from esmscale.errors import EsmscaleError
from tests.visionkit.conftest import CPU_NAMES, HAS_CUDA, TINY, state_copy, states_equal
from visionkit.backbones import ClipBackbone
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


# device= and precision= ---------------------------------------------------------------------
def _quadratic(device="cpu", precision="fp32"):
    w = torch.nn.Parameter(torch.zeros(3))
    target = torch.tensor([1.0, -2.0, 0.5])
    history = fit(
        [w],
        lambda idx: ((w - target) ** 2 * (1 + idx.float().mean())).sum(),
        8,
        TrainConfig(steps=5, batch_size=3, lr=0.1),
        device=device,
        precision=precision,
    )
    return history, w


@pytest.mark.parametrize("device", CPU_NAMES)
def test_fit_on_the_cpu_by_name_is_the_default_bit_for_bit(device):
    history, w = _quadratic()
    h2, w2 = _quadratic(device=device)
    assert history == h2
    assert torch.equal(w, w2)


@pytest.mark.parametrize("device", CPU_NAMES)
def test_pretraining_on_the_cpu_by_name_is_the_default_bit_for_bit(device):
    def run(**place):
        bb = ClipBackbone.from_config(TINY, seed=0)
        images = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        ids = bb.tokenize(["a red circle", "a black cross"] * 4)
        cfg = TrainConfig(steps=2, batch_size=4)
        return pretrain_contrastive(bb, images, ids, cfg, groups=torch.arange(8) % 3, **place), bb

    history, bb = run()
    h2, bb2 = run(device=device, precision="fp32")
    assert history == h2
    assert states_equal(state_copy(bb), state_copy(bb2))


def test_bf16_pretraining_on_the_cpu_keeps_float32_weights(backbone):
    before = state_copy(backbone)
    images = torch.rand(8, 3, 32, 32)
    ids = backbone.tokenize(["a red circle", "a black cross"] * 4)
    history = pretrain_contrastive(
        backbone, images, ids, TrainConfig(steps=2, batch_size=4), precision="bf16"
    )
    assert len(history) == 2 and all(math.isfinite(h) for h in history)
    after = state_copy(backbone)
    assert not states_equal(before, after)
    assert {v.dtype for v in after.values() if v.is_floating_point()} == {torch.float32}
    assert {v.device.type for v in after.values()} == {"cpu"}
    assert backbone.parameter_count().trainable == 0


def test_bf16_fit_autocasts_the_loss_only():
    seen = []
    w = torch.nn.Parameter(torch.ones(4, 4))

    def loss(idx):
        y = torch.ones(2, 4) @ w
        seen.append(y.dtype)
        return y.float().pow(2).mean()

    history = fit([w], loss, 4, TrainConfig(steps=2, lr=0.1), precision="bf16")
    assert seen == [torch.bfloat16, torch.bfloat16]
    assert w.dtype == torch.float32 and all(math.isfinite(h) for h in history)


@pytest.mark.parametrize(
    ("place", "message"),
    [
        ({"precision": "fp64"}, r"precision='fp64' is unknown; give one of fp32, bf16, fp16"),
        ({"precision": "fp16"}, r"precision='fp16' is not supported on the CPU"),
        ({"device": "tpu7"}, r"not a device name.*devices present here"),
    ],
)
def test_unusable_device_or_precision_is_refused_before_training(backbone, place, message):
    before = state_copy(backbone)
    ids = backbone.tokenize(["a red circle", "a black cross"])
    with pytest.raises(EsmscaleError, match=message):
        pretrain_contrastive(backbone, torch.rand(2, 3, 32, 32), ids, TrainConfig(), **place)
    with pytest.raises(EsmscaleError, match=message):
        _quadratic(**place)
    assert states_equal(before, state_copy(backbone))
    assert backbone.parameter_count().trainable == 0


def test_fit_refuses_parameters_left_on_another_device():
    w = torch.nn.Parameter(torch.zeros(2, device="meta"))
    with pytest.raises(
        ValueError, match=r"parameters are on meta but device='cpu'; move the model"
    ):
        fit([w], lambda idx: w.sum(), 2, TrainConfig(steps=1))


@pytest.mark.skipif(HAS_CUDA, reason="a CUDA device is present")
def test_absent_cuda_names_the_devices_present(backbone):
    ids = backbone.tokenize(["a red circle", "a black cross"])
    with pytest.raises(EsmscaleError, match=r"not present on this machine \(devices present: cpu"):
        pretrain_contrastive(backbone, torch.rand(2, 3, 32, 32), ids, TrainConfig(), device="cuda")
    with pytest.raises(EsmscaleError, match="devices present: cpu"):
        _quadratic(device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine (GPU test)")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_gpu_pretraining_returns_the_backbone_on_the_cpu(precision):
    def run(**place):
        bb = ClipBackbone.from_config(TINY, seed=0)
        images = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        ids = bb.tokenize(["a red circle", "a black cross"] * 4)
        cfg = TrainConfig(steps=3, batch_size=4)
        return pretrain_contrastive(bb, images, ids, cfg, groups=torch.arange(8) % 3, **place), bb

    cpu, _ = run()
    gpu, bb = run(device="cuda", precision=precision)
    assert all(math.isfinite(h) for h in gpu)
    state = state_copy(bb)
    assert {v.device.type for v in state.values()} == {"cpu"}
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float32}
    tol = 1e-3 if precision == "fp32" else 0.05
    assert abs(cpu[0] - gpu[0]) < tol * max(1.0, abs(cpu[0]))
