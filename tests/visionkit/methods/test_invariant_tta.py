import math

import pytest
import torch

from esmscale.errors import EsmscaleError
from tests.visionkit.conftest import CPU_NAMES, HAS_CUDA, state_copy, states_equal
from visionkit.datasets import SHAPES, make_shapes
from visionkit.methods.invariant_tta import (
    InvariantTTA,
    InvariantTTAConfig,
    auxiliary_views,
    invariance_loss,
    kl_to_uniform,
    marginal_entropy,
)

CONFIG = InvariantTTAConfig(steps=3, lr=0.05, num_foreground_views=3)


@pytest.fixture
def data():
    return make_shapes(3, seed=4)


def test_only_the_context_changes(backbone, data):
    tta = InvariantTTA(backbone, SHAPES, CONFIG)
    before = state_copy(backbone)
    init = tta.classifier.context.detach().clone()
    _, tuned = tta.adapt_one(data.images[0], data.masks[0])
    assert not torch.allclose(tuned, init)
    assert states_equal(before, state_copy(backbone))
    trainable = [n for n, p in tta.classifier.named_parameters() if p.requires_grad]
    assert trainable == ["context"]


def test_state_resets_between_samples(backbone, data):
    tta = InvariantTTA(backbone, SHAPES, CONFIG)
    init = tta.classifier.context.detach().clone()
    batch = tta.predict(data.images, data.masks)
    assert torch.equal(tta.classifier.context.detach(), init)
    alone = tta.predict(data.images[2:], data.masks[2:])
    assert torch.allclose(batch[2], alone[0], atol=1e-6)


def test_background_term_is_zero_for_uniform_predictions():
    uniform = torch.zeros(5, 4)
    assert kl_to_uniform(uniform).item() == pytest.approx(0.0, abs=1e-7)
    confident = torch.tensor([[10.0, 0.0, 0.0, 0.0]])
    bg, fg = invariance_loss(confident, uniform, InvariantTTAConfig())
    assert bg.item() == pytest.approx(0.0, abs=1e-7)
    assert fg.item() < 0.01
    assert kl_to_uniform(confident).item() == pytest.approx(math.log(4), abs=0.01)


def test_marginal_entropy_rewards_agreement():
    agree = torch.tensor([[5.0, 0.0], [5.0, 0.0]])
    disagree = torch.tensor([[5.0, 0.0], [0.0, 5.0]])
    assert marginal_entropy(agree) < marginal_entropy(disagree)


def test_crop_views_zoom_in_on_the_object():
    image = torch.zeros(3, 32, 32)
    mask = torch.zeros(32, 32, dtype=torch.bool)
    mask[10:14, 20:24] = True
    image[:, mask] = 1.0
    fg, _ = auxiliary_views(image, mask, InvariantTTAConfig(num_foreground_views=4))
    assert fg.shape == (4, 3, 32, 32)
    assert image.mean() < 0.02
    assert (fg.mean(dim=(1, 2, 3)) > 0.3).all()


def test_auxiliary_views_hide_the_object_or_the_background(data):
    image, mask = data.images[0], data.masks[0]
    config = InvariantTTAConfig(num_foreground_views=2, foreground_mode="mask")
    fg, bg = auxiliary_views(image, mask, config)
    assert fg.shape == (2, 3, 32, 32)
    assert bg.shape == (3, 3, 32, 32)
    assert torch.equal(fg[0][:, mask], image[:, mask])
    assert torch.all(fg[0][:, ~mask] == 0.5)
    # the object's box is one flat colour in the background view: no shape left
    assert torch.unique(bg[0][:, mask], dim=1).shape[1] == 1
    assert torch.all(bg[2] == 0.5)
    with pytest.raises(ValueError, match="must be"):
        auxiliary_views(image, mask[:5], InvariantTTAConfig())
    with pytest.raises(ValueError, match="'crop' or 'mask'"):
        InvariantTTAConfig(foreground_mode="box")


def test_mask_shape_is_checked(backbone, data):
    with pytest.raises(ValueError, match="one foreground mask per image"):
        InvariantTTA(backbone, SHAPES, CONFIG).predict(data.images, data.masks[:2])


# device= and precision= ---------------------------------------------------------------------
@pytest.mark.parametrize("device", CPU_NAMES)
def test_cpu_by_name_is_the_default_bit_for_bit(backbone, data, device):
    default = InvariantTTA(backbone, SHAPES, CONFIG).predict(data.images, data.masks)
    named = InvariantTTA(backbone, SHAPES, CONFIG, device=device, precision="fp32")
    assert torch.equal(default, named.predict(data.images, data.masks))


def test_bf16_on_the_cpu_returns_float32_and_leaves_the_backbone(backbone, data):
    before = state_copy(backbone)
    tta = InvariantTTA(backbone, SHAPES, CONFIG, precision="bf16")
    init = tta.classifier.context.detach().clone()
    logits, tuned = tta.adapt_one(data.images[0], data.masks[0])
    assert logits.dtype == tuned.dtype == torch.float32
    assert torch.isfinite(logits).all() and not torch.allclose(tuned, init)
    batch = tta.predict(data.images, data.masks)
    assert batch.dtype == torch.float32 and batch.device.type == "cpu"
    assert torch.isfinite(batch).all()
    # untuned (AdamW's normalised steps amplify rounding, so compare the zero-shot logits)
    zero = InvariantTTAConfig(steps=0, num_foreground_views=3)
    fp32 = InvariantTTA(backbone, SHAPES, zero).predict(data.images, data.masks)
    bf16 = InvariantTTA(backbone, SHAPES, zero, precision="bf16").predict(data.images, data.masks)
    assert not torch.equal(bf16, fp32)  # autocast did run
    assert torch.allclose(bf16, fp32, atol=0.05 * float(fp32.abs().max()))
    assert states_equal(before, state_copy(backbone))


@pytest.mark.parametrize(
    ("place", "message"),
    [
        ({"precision": "fp64"}, "precision='fp64' is unknown"),
        ({"precision": "fp16"}, "not supported on the CPU"),
        pytest.param(
            {"device": "cuda"},
            r"not present on this machine \(devices present: cpu",
            marks=pytest.mark.skipif(HAS_CUDA, reason="a CUDA device is present"),
        ),
    ],
)
def test_unusable_device_or_precision_is_refused(backbone, place, message):
    with pytest.raises(EsmscaleError, match=message):
        InvariantTTA(backbone, SHAPES, CONFIG, **place)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine (GPU test)")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_gpu_matches_cpu(backbone, data, precision):
    config = InvariantTTAConfig(steps=0)  # AdamW's normalised steps amplify rounding
    cpu = InvariantTTA(backbone, SHAPES, config).predict(data.images, data.masks)
    gpu = InvariantTTA(backbone, SHAPES, CONFIG, device="cuda", precision=precision)
    tuned = gpu.predict(data.images, data.masks)
    assert tuned.device.type == "cpu" and tuned.dtype == torch.float32
    assert torch.isfinite(tuned).all()
    assert next(backbone.parameters()).device.type == "cpu"
    gpu = InvariantTTA(backbone, SHAPES, config, device="cuda", precision=precision)
    out = gpu.predict(data.images, data.masks)
    tol = 1e-3 if precision == "fp32" else 0.05
    assert torch.allclose(out, cpu, atol=tol * float(cpu.abs().max()))
