import pytest
import torch

from esmscale.errors import EsmscaleError
from esmscale.models.simvp import SimVP, SimVPConfig
from tests.models._mixin import ModelTestMixin


class TestSimVP(ModelTestMixin):
    model_class = SimVP

    def make_model(self):
        torch.manual_seed(0)
        return SimVP(SimVPConfig(t_in=3, t_out=2, hidden=8, translator_hidden=16)).eval()

    def make_inputs(self):
        return (torch.randn(2, 3, 1, 8, 12, generator=torch.Generator().manual_seed(1)),)


def test_shapes_and_residual():
    torch.manual_seed(0)
    cfg = SimVPConfig(in_channels=2, t_in=3, t_out=4, hidden=8, translator_hidden=16)
    net = SimVP(cfg).eval()
    x = torch.randn(2, 3, 2, 8, 12)
    y, stats = net.forward_train(x)
    assert y.shape == (2, 4, 2, 8, 12)
    assert stats == {}
    res = SimVP(cfg.replace(residual=True)).eval()
    res.load_state_dict(net.state_dict())
    with torch.inference_mode():
        assert torch.allclose(res(x), net(x) + x[:, -1:])


def test_errors_are_helpful():
    with pytest.raises(EsmscaleError, match="must be even"):
        SimVPConfig(hidden=7)
    net = SimVP(SimVPConfig(t_in=3, t_out=2, hidden=8, translator_hidden=16))
    with pytest.raises(EsmscaleError, match="not divisible by 4"):
        net(torch.zeros(1, 3, 1, 10, 12))
    with pytest.raises(EsmscaleError, match="unknown keys"):
        SimVPConfig.from_dict({"hidden": 8, "bogus": 1})
