import pytest
import torch

from visionkit.augment import random_resized_crops, to_grayscale


def test_full_crop_without_flip_is_identity():
    image = torch.rand(3, 16, 16)
    views = random_resized_crops(image, 2, scale=(1.0, 1.0), flip=False)
    assert torch.allclose(views, image.expand(2, -1, -1, -1), atol=1e-5)


def test_crops_are_seeded():
    image = torch.rand(3, 16, 16)
    a = random_resized_crops(image, 4, generator=torch.Generator().manual_seed(3))
    b = random_resized_crops(image, 4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="one"):
        random_resized_crops(image[None], 2)


def test_grayscale():
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1.0
    grey = to_grayscale(red)
    assert torch.allclose(grey, torch.full_like(grey, 0.299))
    with pytest.raises(ValueError, match="RGB"):
        to_grayscale(torch.zeros(1, 1, 2, 2))
