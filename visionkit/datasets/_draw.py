"""Vectorised rasterisation helpers (pure numpy) shared by the synthetic datasets."""

from __future__ import annotations

import numpy as np

FloatArray = np.ndarray


def grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates broadcastable against ``(N, 1, 1)`` parameters.

    Examples
    --------
    >>> yy, xx = grid(2, 3)
    >>> yy.shape, xx.shape
    ((1, 2, 1), (1, 1, 3))
    """
    yy = np.arange(height, dtype=np.float32)[None, :, None] + 0.5
    xx = np.arange(width, dtype=np.float32)[None, None, :] + 0.5
    return yy, xx


def col(values: np.ndarray) -> np.ndarray:
    """Reshape a per-image vector to ``(N, 1, 1)`` for broadcasting."""
    return np.asarray(values, dtype=np.float32).reshape(-1, 1, 1)


def rect(
    yy: np.ndarray, xx: np.ndarray, y0: np.ndarray, y1: np.ndarray, x0: np.ndarray, x1: np.ndarray
) -> np.ndarray:
    """Boolean masks of axis-aligned rectangles ``[y0, y1) x [x0, x1)`` per image."""
    return (yy >= col(y0)) & (yy < col(y1)) & (xx >= col(x0)) & (xx < col(x1))


def disc(
    yy: np.ndarray, xx: np.ndarray, cy: np.ndarray, cx: np.ndarray, r: np.ndarray
) -> np.ndarray:
    """Boolean masks of discs per image."""
    return (yy - col(cy)) ** 2 + (xx - col(cx)) ** 2 <= col(r) ** 2


def paint(images: np.ndarray, mask: np.ndarray, rgb: np.ndarray) -> None:
    """Paint ``rgb`` ``(N, 3)`` into ``images`` ``(N, 3, H, W)`` where ``mask`` is true."""
    rgb = np.asarray(rgb, dtype=np.float32)
    for c in range(3):
        images[:, c] = np.where(mask, rgb[:, c, None, None], images[:, c])
