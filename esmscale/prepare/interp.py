"""Between grid resolutions by an integer factor (numpy/torch): cell-centred bilinear
upsampling and its counterpart, the NaN-aware block mean (coarsening).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from esmscale.errors import EsmscaleError

__all__ = ["coarsen_block", "upsample_bilinear"]


def upsample_bilinear(x: np.ndarray, factor: int) -> np.ndarray:
    """Bilinear interpolation of ``(..., h, w)`` to ``(..., h*factor, w*factor)``.

    Cell centres are aligned (a coarse cell is the block of ``factor x factor`` fine cells);
    values beyond the outermost centres are held constant. NaN cells propagate.

    Examples
    --------
    >>> upsample_bilinear(np.ones((2, 3, 3)), 4).shape
    (2, 12, 12)
    """
    if factor < 1 or int(factor) != factor:
        raise EsmscaleError(f"factor={factor} must be a positive integer.")
    factor = int(factor)
    a = np.asarray(x, dtype=np.float32)
    if a.ndim < 2:
        raise EsmscaleError(f"upsample_bilinear needs (..., h, w), got shape {a.shape}.")
    lead, (h, w) = a.shape[:-2], a.shape[-2:]
    t = torch.from_numpy(np.ascontiguousarray(a.reshape(-1, 1, h, w)))
    y = F.interpolate(t, scale_factor=factor, mode="bilinear", align_corners=False)
    return y.numpy().reshape(*lead, h * factor, w * factor)


def coarsen_block(field: np.ndarray, factor: int) -> np.ndarray:
    """NaN-aware block mean over the last two axes.

    Each output cell is the mean of the finite values of a ``factor x factor`` block; an
    all-NaN block gives NaN. Floating inputs keep their dtype, others become float64.

    Examples
    --------
    >>> coarsen_block(np.arange(16.0).reshape(4, 4), 2)
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    field = np.asarray(field)
    if factor < 1 or field.ndim < 2:
        raise EsmscaleError(f"need factor >= 1 and ndim >= 2, got factor={factor}, "
                         f"shape={field.shape}")  # fmt: skip
    ny, nx = field.shape[-2:]
    if ny % factor or nx % factor:
        raise EsmscaleError(
            f"spatial shape {(ny, nx)} (array shape {field.shape}) is not divisible by "
            f"factor {factor}; crop or pad the last two dims to a multiple of {factor}"
        )
    dtype = field.dtype if np.issubdtype(field.dtype, np.floating) else np.dtype(np.float64)
    blocks = field.reshape(*field.shape[:-2], ny // factor, factor, nx // factor, factor)
    finite = np.isfinite(blocks)
    total = np.where(finite, blocks, 0).sum(axis=(-3, -1), dtype=np.float64)
    count = finite.sum(axis=(-3, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
    return mean.astype(dtype)
