"""Batched image augmentations in plain torch (no torchvision)."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def random_resized_crops(
    image: torch.Tensor,
    num: int,
    *,
    scale: tuple[float, float] = (0.4, 1.0),
    flip: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``num`` random square crops of ``image`` (``(C, H, W)``) resized back to ``H x W``.

    Each crop covers a fraction of the image area drawn uniformly from ``scale`` at a random
    position; with ``flip`` half of them are mirrored horizontally.

    Examples
    --------
    >>> gen = torch.Generator().manual_seed(0)
    >>> views = random_resized_crops(torch.rand(3, 32, 32), 5, generator=gen)
    >>> tuple(views.shape)
    (5, 3, 32, 32)
    """
    if image.ndim != 3:
        raise ValueError(
            f"random_resized_crops expects one (C, H, W) image, got {tuple(image.shape)}"
        )
    area = torch.empty(num).uniform_(scale[0], scale[1], generator=generator)
    side = area.sqrt()
    cx = (torch.rand(num, generator=generator) * 2 - 1) * (1 - side)
    cy = (torch.rand(num, generator=generator) * 2 - 1) * (1 - side)
    sx = side.clone()
    if flip:
        mirror = torch.rand(num, generator=generator) < 0.5
        sx = torch.where(mirror, -sx, sx)
    theta = torch.zeros(num, 2, 3)
    theta[:, 0, 0] = sx
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = side
    theta[:, 1, 2] = cy
    batch = image.unsqueeze(0).expand(num, -1, -1, -1)
    grid = F.affine_grid(theta.to(image.dtype), list(batch.shape), align_corners=False)
    return F.grid_sample(batch, grid, mode="bilinear", padding_mode="border", align_corners=False)


def crops_around(
    image: torch.Tensor,
    box: tuple[int, int, int, int],
    num: int,
    *,
    margin: tuple[float, float] = (0.1, 0.4),
    flip: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``num`` square crops centred on ``box``, resized to the image size (object zoom-ins).

    Parameters
    ----------
    image : torch.Tensor
        ``(C, H, W)`` image.
    box : tuple of int
        ``(top, bottom, left, right)`` pixel bounds of the object (inclusive).
    num : int
        Number of crops.
    margin : tuple of float
        Range of the margin added around the box, as a fraction of its larger side. The first
        crop uses the lower bound and is never mirrored.
    flip : bool
        Mirror the other crops at random.

    Examples
    --------
    >>> crops_around(torch.rand(3, 32, 32), (8, 20, 10, 18), 3).shape
    torch.Size([3, 3, 32, 32])
    """
    _, h, w = image.shape
    top, bottom, left, right = box
    cy = (top + bottom + 1) / 2
    cx = (left + right + 1) / 2
    side = float(max(bottom - top + 1, right - left + 1))
    frac = torch.empty(num).uniform_(margin[0], margin[1], generator=generator)
    frac[0] = margin[0]
    size = side * (1 + 2 * frac)
    sx = size / w
    if flip:
        mirror = torch.rand(num, generator=generator) < 0.5
        mirror[0] = False
        sx = torch.where(mirror, -sx, sx)
    theta = torch.zeros(num, 2, 3)
    theta[:, 0, 0] = sx
    theta[:, 0, 2] = 2 * cx / w - 1
    theta[:, 1, 1] = size / h
    theta[:, 1, 2] = 2 * cy / h - 1
    batch = image.unsqueeze(0).expand(num, -1, -1, -1)
    grid = F.affine_grid(theta.to(image.dtype), list(batch.shape), align_corners=False)
    return F.grid_sample(batch, grid, mode="bilinear", padding_mode="border", align_corners=False)


def to_grayscale(images: torch.Tensor) -> torch.Tensor:
    """Luminance (ITU-R 601) repeated on three channels; ``(B, 3, H, W)`` in and out.

    Examples
    --------
    >>> g = to_grayscale(torch.rand(2, 3, 4, 4))
    >>> bool((g[:, 0] == g[:, 1]).all())
    True
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"to_grayscale expects (B, 3, H, W) RGB images, got {tuple(images.shape)}")
    weights = images.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True).expand(-1, 3, -1, -1).contiguous()
