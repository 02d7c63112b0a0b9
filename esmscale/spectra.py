"""Radially averaged power spectral density (RAPSD) of 2-D fields, mask-aware.

Convention (the one definition used by every spectrum in esmscale): a field sampled with
spacing ``(dy, dx)`` has the periodogram ``P(kx, ky) = |FFT|^2 * dy * dx / N`` where ``N`` is
the number of valid (unmasked) cells, after removing the mean of the valid cells and setting
masked cells to zero; ``P`` is power per unit area of wavenumber space, i.e. ``|FT|^2`` divided
by the valid area. Wavenumbers are physical, ``k = sqrt(kx^2 + ky^2)`` in cycles per unit of
the spacing, binned in shells of width ``1 / max(H * dy, W * dx)`` up to the smaller Nyquist
wavenumber ``min(1 / (2 dy), 1 / (2 dx))``; the spectrum is the shell mean of ``P``.

Consequences: white noise of variance ``s^2`` has a flat spectrum ``s^2 * dy * dx``; summing
``P`` over all wavenumbers times the wavenumber cell ``1 / (H dy W dx)`` gives the variance; and
a field and its block average by a factor ``f`` (spacing ``f * d``, the same domain) share the
large-scale shells and have equal power there (the block mean's transfer function is ~1 well
below the coarse Nyquist wavenumber). With the default spacing ``(1, 1)`` wavenumbers are in
cycles per grid cell and white noise is flat at ``s^2``; that is the space of the calibration's
spectral rule (``t* = sqrt(PSD)`` is a noise standard deviation per cell). Gridded data go
through :func:`esmscale.metrics.radial_psd`, which takes the spacing in degrees from the
latitude/longitude coordinates (cycles per degree).
"""

from __future__ import annotations

import numpy as np

from esmscale.errors import EsmscaleError

__all__ = ["log_spectral_error", "rapsd", "wavenumbers"]


def _check_spacing(spacing: tuple[float, float]) -> tuple[float, float]:
    dy, dx = (float(s) for s in spacing)
    if not (np.isfinite(dy) and np.isfinite(dx) and dy > 0 and dx > 0):
        raise EsmscaleError(
            f"spacing must be two positive grid steps (dy, dx), got {spacing!r}; use the "
            "latitude and longitude steps in degrees, or (1, 1) for cycles per grid cell."
        )
    return dy, dx


def _shells(shape: tuple[int, int], spacing: tuple[float, float]) -> tuple[float, int]:
    """Domain length ``L`` (the longer side; shells are ``1 / L`` wide) and the shell count."""
    (h, w), (dy, dx) = shape, spacing
    length = max(h * dy, w * dx)
    nyquist = min(0.5 / dy, 0.5 / dx)
    return length, int(np.floor(nyquist * length + 1e-9))


def wavenumbers(shape: tuple[int, int], spacing: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Shell centres of :func:`rapsd` for a grid ``shape`` with grid steps ``spacing``.

    Examples
    --------
    >>> wavenumbers((8, 8))
    array([0.125, 0.25 , 0.375, 0.5  ])
    >>> wavenumbers((8, 8), spacing=(0.25, 0.25))  # cycles per degree on a 0.25 deg grid
    array([0.5, 1. , 1.5, 2. ])
    """
    length, nb = _shells(shape, _check_spacing(spacing))
    return np.arange(1, nb + 1) / length


def rapsd(
    field: np.ndarray, mask: np.ndarray | None = None, *, spacing: tuple[float, float] = (1.0, 1.0)
) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged PSD of a field or a stack of fields, averaged over leading axes.

    Parameters
    ----------
    field
        ``(..., H, W)`` array; NaN cells are treated as masked.
    mask
        Optional boolean ``(H, W)`` or ``(..., H, W)`` array, True where cells are valid.
    spacing
        Grid steps ``(dy, dx)`` (e.g. degrees); default one grid cell.

    Returns
    -------
    k, psd
        Wavenumbers (cycles per unit of ``spacing``) and the spectrum (field units squared
        times ``spacing`` units squared) averaged over all leading axes.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> k, p = rapsd(rng.normal(scale=2.0, size=(50, 64, 64)))
    >>> bool(abs(p.mean() - 4.0) < 0.1)
    True
    >>> k2, p2 = rapsd(rng.normal(scale=2.0, size=(50, 64, 64)), spacing=(0.5, 0.5))
    >>> float(k2.max()), bool(abs(p2.mean() - 1.0) < 0.03)  # 4 * 0.5 * 0.5
    (1.0, True)
    """
    dy, dx = _check_spacing(spacing)
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
    power = (np.abs(np.fft.fft2(anom)) ** 2 * (dy * dx) / nvalid[:, None, None]).mean(axis=0)
    length, nb = _shells((h, w), (dy, dx))
    ky = np.fft.fftfreq(h, d=dy)[:, None]
    kx = np.fft.fftfreq(w, d=dx)[None, :]
    idx = np.rint(np.sqrt(kx**2 + ky**2) * length).astype(int)
    sel = (idx >= 1) & (idx <= nb)
    sums = np.bincount(idx[sel], weights=power[sel], minlength=nb + 1)[1:]
    counts = np.bincount(idx[sel], minlength=nb + 1)[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        psd = sums / counts
    k = np.arange(1, nb + 1) / length
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
