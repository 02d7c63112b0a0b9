import pytest
import torch

from esmscale.errors import EsmscaleError
from esmscale.models.fno import FNO2d, FNOConfig
from tests.models._mixin import ModelTestMixin


class TestFNO(ModelTestMixin):
    model_class = FNO2d

    def make_model(self):
        torch.manual_seed(0)
        return FNO2d(FNOConfig(t_in=3, t_out=2, width=8, modes=3, layers=2)).eval()

    def make_inputs(self):
        return (torch.randn(2, 3, 1, 10, 14, generator=torch.Generator().manual_seed(1)),)


def test_any_grid_size_and_modes_capped_by_grid():
    torch.manual_seed(0)
    net = FNO2d(FNOConfig(t_in=2, t_out=3, width=8, modes=6, layers=2)).eval()
    for h, w in ((5, 7), (3, 3), (16, 9)):
        y = net(torch.randn(1, 2, 1, h, w))
        assert y.shape == (1, 3, 1, h, w)
        assert torch.isfinite(y).all()


def test_errors_are_helpful():
    net = FNO2d(FNOConfig(t_in=3, t_out=2, width=8, modes=3, layers=2))
    with pytest.raises(EsmscaleError, match="3 input frames"):
        net(torch.zeros(1, 2, 1, 8, 8))
    with pytest.raises(EsmscaleError, match="unknown keys"):
        FNOConfig.from_dict({"modes": 4, "bogus": 1})
