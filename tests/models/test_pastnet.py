import pytest
import torch

from esmscale.errors import EsmscaleError
from esmscale.models.pastnet import PastNet, PastNetConfig, VectorQuantizerEMA
from tests.forecast._helpers import TINY_PASTNET
from tests.models._mixin import ModelTestMixin


def tiny(**changes) -> PastNet:
    torch.manual_seed(0)
    return PastNet(TINY_PASTNET.replace(code_dim=4, **changes)).eval()


class TestPastNet(ModelTestMixin):
    model_class = PastNet

    def make_model(self):
        return tiny(t_in=3, t_out=2)

    def make_inputs(self):
        return (torch.randn(2, 3, 1, 8, 12, generator=torch.Generator().manual_seed(1)),)


@pytest.mark.parametrize(
    ("t_in", "t_out", "channels", "h", "w"),
    [(3, 2, 1, 8, 12), (1, 4, 2, 16, 8), (5, 5, 3, 12, 20), (2, 1, 1, 4, 4)],
)
@pytest.mark.parametrize("branches", ["both", "fourier", "discrete", "no_memory"])
def test_shapes(t_in, t_out, channels, h, w, branches):
    flags = {
        "both": {},
        "fourier": {"use_discrete": False},
        "discrete": {"use_fourier": False},
        "no_memory": {"use_memory": False},
    }[branches]
    net = tiny(t_in=t_in, t_out=t_out, in_channels=channels, **flags)
    y, stats = net.forward_train(torch.randn(2, t_in, channels, h, w))
    assert y.shape == (2, t_out, channels, h, w)
    assert torch.isfinite(y).all()
    assert ("perplexity" in stats) == (branches in ("both", "discrete"))


def test_straight_through_gradient_reaches_encoder():
    net = tiny(t_in=2, t_out=1, use_fourier=False).train()
    y, stats = net.forward_train(torch.randn(2, 2, 1, 8, 8))
    y.pow(2).mean().backward()  # the reconstruction loss alone, not the commitment term
    grad = net.discrete.encoder.net[0].weight.grad
    assert grad is not None
    assert grad.abs().sum() > 0
    assert "aux_loss" in stats


def test_ema_update_moves_codes_towards_assigned_latents():
    torch.manual_seed(0)
    vq = VectorQuantizerEMA(num_codes=4, dim=2, decay=0.5, dead_threshold=0.0)
    vq.initialised.fill_(True)
    vq.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]]))
    vq.ema_sum.copy_(vq.codebook)
    latents = torch.tensor([[1.0, 1.0], [2.0, 0.0], [9.0, 1.0]])  # codes 0, 0, 1
    before = vq.codebook.clone()
    vq.train()(latents.reshape(1, 3, 1, 2).permute(0, 3, 1, 2))
    for code, target in ((0, latents[:2].mean(0)), (1, latents[2])):
        assert (vq.codebook[code] - target).norm() < (before[code] - target).norm()
    assert torch.allclose(vq.codebook[3], before[3], atol=1e-3)  # unused code stays (nearly)


def test_perplexity_and_dead_codes_logged():
    vq = VectorQuantizerEMA(num_codes=8, dim=3, decay=0.5, dead_threshold=0.3).train()
    z = torch.randn(4, 3, 4, 4)
    for _ in range(4):
        _, stats = vq(z)
    assert 1.0 <= float(stats["perplexity"]) <= 8.0
    assert float(stats["dead_codes"]) >= 0


def test_errors_are_helpful():
    net = tiny(t_in=3, t_out=2)
    with pytest.raises(EsmscaleError, match="not divisible by 4"):
        net(torch.randn(1, 3, 1, 10, 12))
    with pytest.raises(EsmscaleError, match="1 channel"):
        net(torch.randn(1, 3, 2, 8, 12))
    with pytest.raises(EsmscaleError, match="unknown keys"):
        PastNetConfig.from_dict({"t_in": 3, "bogus": 1})
    with pytest.raises(EsmscaleError, match="integer code_dim"):
        PastNet(PastNetConfig())
    with pytest.raises(EsmscaleError, match="use_fourier or use_discrete"):
        PastNetConfig(use_fourier=False, use_discrete=False)
