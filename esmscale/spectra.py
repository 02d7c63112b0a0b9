"""Radially averaged power spectral density (RAPSD) of 2-D fields, mask-aware.

Convention: the spectrum is the shell mean of ``|FFT|^2 / N`` where ``N`` is the number of valid
(unmasked) cells, after removing the mean of the valid cells and setting masked cells to zero.
White noise of variance ``s^2`` then has a flat spectrum equal to ``s^2``, whatever the grid shape
or mask. Wavenumbers are in cycles per grid cell (0 < k <= 0.5). Non-square grids are binned by
``|k| = sqrt(kx^2 + ky^2)`` with bin width ``1 / max(H, W)``.
"""

from __future__ import annotations

import numpy as np

from esmscale.errors import EsmscaleError

__all__ = ["log_spectral_error", "rapsd", "wavenumbers"]


def wavenumbers(shape: tuple[int, int]) -> np.ndarray:
    """Bin centres (cycles per cell) of :func:`rapsd` for a grid ``shape``.

    Examples
    --------
    >>> wavenumbers((8, 8))
    array([0.125, 0.25 , 0.375, 0.5  ])
    """
    n = max(shape)
    return np.arange(1, n // 2 + 1) / n


def rapsd(field: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged PSD of a field or a stack of fields, averaged over leading axes.

    Parameters
    ----------
    field
        ``(..., H, W)`` array; NaN cells are treated as masked.
    mask
        Optional boolean ``(H, W)`` or ``(..., H, W)`` array, True where cells are valid.

    Returns
    -------
    k, psd
        Wavenumbers (cycles per cell) and the spectrum averaged over all leading axes.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> k, p = rapsd(rng.normal(scale=2.0, size=(50, 64, 64)))
    >>> bool(abs(p.mean() - 4.0) < 0.1)
    True
    """
    x = np.asarray(field, dtype=np.float64)
    if x.ndim < 2:
        raise EsmscaleError(f"rapsd needs at least 2-D input (..., H, W), got shape {x.shape}.")
    h, w = x.shape[-2:]
    if min(h, w) < 4:
        raise EsmscaleError(f"rapsd: grid {h}x{w} is too small; need at least 4x4 cells.")
    valid = np.isfinite(x)
    if mask is not None:
        valid = valid & np.broadcast_to(np.asarray(mask, dtype=bool), x.shape)
    x = x.reshape(-1, h, w)
    valid = valid.reshape(-1, h, w)
    nvalid = valid.sum(axis=(-2, -1))
    if (nvalid == 0).any():
        raise EsmscaleError("rapsd: a field has no valid cell (all masked or NaN).")
    means = np.where(valid, x, 0.0).sum(axis=(-2, -1)) / nvalid
    anom = np.where(valid, x - means[:, None, None], 0.0)
    power = (np.abs(np.fft.fft2(anom)) ** 2 / nvalid[:, None, None]).mean(axis=0)
    n = max(h, w)
    ky = np.fft.fftfreq(h)[:, None]
    kx = np.fft.fftfreq(w)[None, :]
    kr = np.sqrt(kx**2 + ky**2)
    idx = np.rint(kr * n).astype(int)
    nb = n // 2
    sel = (idx >= 1) & (idx <= nb)
    sums = np.bincount(idx[sel], weights=power[sel], minlength=nb + 1)[1:]
    counts = np.bincount(idx[sel], minlength=nb + 1)[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        psd = sums / counts
    k = wavenumbers((h, w))
    keep = counts > 0
    return k[keep], psd[keep]


def log_spectral_error(
    psd: np.ndarray, psd_ref: np.ndarray, k: np.ndarray, k_min: float = 0.0
) -> float:
    """Mean ``|log10(psd / psd_ref)|`` over wavenumbers ``k >= k_min``.

    Examples
    --------
    >>> k = np.array([0.1, 0.2, 0.3])
    >>> log_spectral_error(np.array([1.0, 10.0, 100.0]), np.ones(3), k, k_min=0.15)
    1.5
    """
    sel = k >= k_min
    if not sel.any():
        raise EsmscaleError(f"log_spectral_error: no wavenumber >= {k_min}.")
    return float(np.mean(np.abs(np.log10(psd[sel] / psd_ref[sel]))))
