import pytest
import torch

from esmscale.errors import EsmscaleError
from tests.visionkit.conftest import CPU_NAMES, state_copy, states_equal
from visionkit.methods.tpt import TPT, TPTConfig


def test_tpt_tunes_only_the_context_and_resets(backbone):
    tpt = TPT(backbone, ["circle", "square", "cross"], TPTConfig(num_views=8, lr=0.05, steps=2))
    init = tpt.classifier.context.detach().clone()
    before = state_copy(backbone)
    images = torch.rand(2, 3, 32, 32)
    _, tuned = tpt.adapt_one(images[0])
    assert not torch.allclose(tuned, init)
    assert states_equal(before, state_copy(backbone))
    batch = tpt.predict(images)
    assert torch.equal(tpt.classifier.context.detach(), init)
    assert torch.allclose(batch[1], tpt.predict(images[1:])[0], atol=1e-6)


def test_zero_steps_is_zero_shot(backbone):
    tpt = TPT(backbone, ["circle", "square"], TPTConfig(num_views=4, steps=0))
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(tpt.predict(images), tpt.classifier(images), atol=1e-6)


@pytest.mark.parametrize("device", CPU_NAMES)
def test_cpu_by_name_is_the_default_bit_for_bit(backbone, device):
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    config = TPTConfig(num_views=4, lr=0.05, steps=2)
    default = TPT(backbone, ["circle", "square"], config).predict(images)
    named = TPT(backbone, ["circle", "square"], config, device=device, precision="fp32")
    assert torch.equal(default, named.predict(images))


def test_bf16_on_the_cpu_returns_float32(backbone):
    tpt = TPT(backbone, ["circle", "square"], TPTConfig(num_views=4, steps=2), precision="bf16")
    out = tpt.predict(torch.rand(2, 3, 32, 32))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert tpt.classifier.context.dtype == torch.float32
    with pytest.raises(EsmscaleError, match="not supported on the CPU"):
        TPT(backbone, ["circle", "square"], precision="fp16")
