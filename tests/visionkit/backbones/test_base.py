import pytest
import torch
from torch import nn

from visionkit.backbones.base import ParameterCount, count_parameters


def test_count_parameters_splits_trainable_and_frozen():
    module = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    module[0].requires_grad_(False)
    count = count_parameters(module)
    assert count == ParameterCount(trainable=3, frozen=8)
    assert count.total == 11
    assert count.trainable_fraction == pytest.approx(3 / 11)


@pytest.mark.parametrize(
    ("shape", "hint"),
    [
        ((3, 32, 32), "unsqueeze"),
        ((2, 1, 32, 32), "channels"),
        ((2, 4, 32, 32), "channels"),
        ((2, 3, 28, 28), "resize to 32x32"),
    ],
)
def test_check_images_explains_the_fix(backbone, shape, hint):
    with pytest.raises(ValueError, match=hint) as err:
        backbone.check_images(torch.zeros(shape))
    assert str(tuple(shape)) in str(err.value)


def test_check_images_rejects_integer_images(backbone):
    with pytest.raises(TypeError, match="floating-point"):
        backbone.check_images(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
