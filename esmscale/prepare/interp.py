"""Cell-centred bilinear upsampling of regular grids by an integer factor (numpy/torch)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from esmscale.errors import EsmscaleError

__all__ = ["upsample_bilinear"]


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
