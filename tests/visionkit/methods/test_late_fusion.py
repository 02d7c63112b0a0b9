import pytest
import torch

from tests.visionkit.conftest import state_copy, states_equal
from visionkit.methods.late_fusion import LateFusion, LateFusionConfig, late_fusion_parameter_count


@pytest.mark.parametrize("hidden", [0, 16])
def test_parameter_count_closed_form(backbone, hidden):
    config = LateFusionConfig(num_classes=3, hidden=hidden)
    model = LateFusion(backbone, config)
    assert model.parameter_count().trainable == late_fusion_parameter_count(config, 32, 32)


def test_features_are_frozen(backbone):
    model = LateFusion(backbone, LateFusionConfig(num_classes=3))
    before = state_copy(backbone)
    images, ids = torch.rand(2, 3, 32, 32), backbone.tokenize(["a", "a red circle"])
    model.loss(images, ids, torch.tensor([0, 2])).backward()
    assert states_equal(before, state_copy(backbone))
    assert model.head.weight.grad is not None
