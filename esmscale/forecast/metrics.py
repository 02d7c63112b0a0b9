"""Forecast verification on float fields (NaN cells ignored): RMSE, MAE, SSIM, PSNR, CSI, FSS.

MAE is :func:`esmscale.metrics.kernels.mae`, shared with the downscaling metrics.

All functions take ``forecast`` and ``truth`` arrays of the same shape ``(..., y, x)``; NaN in
either is excluded. PSNR and SSIM use float data with an explicit ``data_range`` (uint8 PSNR
wraps around and inflates scores). Pure numpy/scipy.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, uniform_filter

from esmscale.metrics.kernels import mae  # the same kernel as the downscaling metrics

__all__ = ["csi", "fss", "mae", "psnr", "relative_l2", "rmse", "ssim"]


def _valid(f: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f, t = np.asarray(f, np.float64), np.asarray(t, np.float64)
    ok = np.isfinite(f) & np.isfinite(t)
    return f[ok], t[ok]


def rmse(forecast: np.ndarray, truth: np.ndarray) -> float:
    """Root-mean-square error.

    Examples
    --------
    >>> rmse(np.array([1.0, 3.0, np.nan]), np.array([0.0, 0.0, 5.0]))
    2.23606797749979
    """
    f, t = _valid(forecast, truth)
    return float(np.sqrt(np.mean((f - t) ** 2)))


def relative_l2(forecast: np.ndarray, truth: np.ndarray) -> float:
    """Mean over leading samples of ``||f - t|| / ||t||`` over the last two axes (FNO metric).

    Examples
    --------
    >>> truth = np.ones((2, 4, 4))
    >>> round(relative_l2(1.1 * truth, truth), 6)
    0.1
    """
    f = np.nan_to_num(np.asarray(forecast, np.float64)).reshape(-1, *forecast.shape[-2:])
    t = np.nan_to_num(np.asarray(truth, np.float64)).reshape(f.shape)
    num = np.sqrt(((f - t) ** 2).sum(axis=(1, 2)))
    den = np.sqrt((t**2).sum(axis=(1, 2)))
    return float(np.mean(num / np.maximum(den, 1e-12)))


def psnr(forecast: np.ndarray, truth: np.ndarray, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB on float data: ``20 log10(range / RMSE)``.

    Examples
    --------
    >>> truth = np.zeros((4, 4))
    >>> round(psnr(truth + 0.1, truth, data_range=1.0), 6)  # RMSE 0.1: 20 dB
    20.0
    """
    return float(20.0 * np.log10(data_range / max(rmse(forecast, truth), 1e-12)))


def ssim(forecast: np.ndarray, truth: np.ndarray, data_range: float, sigma: float = 1.5) -> float:
    """Mean structural similarity with a Gaussian window over the last two axes.

    NaN cells are filled with the truth's mean and excluded from the average.

    Examples
    --------
    >>> x = np.random.default_rng(0).random((16, 16))
    >>> ssim(x, x, data_range=1.0)
    1.0
    """
    f = np.asarray(forecast, np.float64).reshape(-1, *forecast.shape[-2:])
    t = np.asarray(truth, np.float64).reshape(f.shape)
    ok = np.isfinite(f) & np.isfinite(t)
    fill = float(np.mean(t[ok])) if ok.any() else 0.0
    f, t = np.where(ok, f, fill), np.where(ok, t, fill)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    sig = (0.0, sigma, sigma)
    mf, mt = gaussian_filter(f, sig), gaussian_filter(t, sig)
    vf = gaussian_filter(f * f, sig) - mf**2
    vt = gaussian_filter(t * t, sig) - mt**2
    cov = gaussian_filter(f * t, sig) - mf * mt
    s = ((2 * mf * mt + c1) * (2 * cov + c2)) / ((mf**2 + mt**2 + c1) * (vf + vt + c2))
    return float(np.mean(s[ok]))


def csi(forecast: np.ndarray, truth: np.ndarray, threshold: float) -> float:
    """Critical success index ``hits / (hits + misses + false alarms)`` at ``>= threshold``.

    Examples
    --------
    >>> truth = np.array([[0.0, 2.0], [2.0, 2.0]])
    >>> forecast = np.array([[2.0, 2.0], [0.0, 2.0]])  # 2 hits, 1 miss, 1 false alarm
    >>> csi(forecast, truth, threshold=1.0)
    0.5
    """
    f, t = _valid(forecast, truth)
    fy, ty = f >= threshold, t >= threshold
    hits = np.sum(fy & ty)
    total = hits + np.sum(~fy & ty) + np.sum(fy & ~ty)
    return float(hits / total) if total else float("nan")


def fss(forecast: np.ndarray, truth: np.ndarray, threshold: float, window: int = 5) -> float:
    """Fractions skill score at ``>= threshold`` over ``window x window`` neighbourhoods.

    Examples
    --------
    >>> truth = np.zeros((8, 8))
    >>> truth[3, 3] = 5.0
    >>> fss(truth, truth, threshold=1.0)  # a perfect forecast
    1.0
    >>> shifted = np.roll(truth, 1, axis=1)  # one cell off: partly right at 5x5 scale
    >>> 0 < fss(shifted, truth, threshold=1.0, window=5) < 1
    True
    """
    f = np.asarray(forecast, np.float64).reshape(-1, *forecast.shape[-2:])
    t = np.asarray(truth, np.float64).reshape(f.shape)
    ok = (np.isfinite(f) & np.isfinite(t)).astype(np.float64)
    size = (1, window, window)
    n = np.maximum(uniform_filter(ok, size, mode="constant"), 1e-12)
    pf = (
        uniform_filter(
            np.where(ok > 0, f >= threshold, 0).astype(np.float64), size, mode="constant"
        )
        / n
    )
    pt = (
        uniform_filter(
            np.where(ok > 0, t >= threshold, 0).astype(np.float64), size, mode="constant"
        )
        / n
    )
    m = ok > 0
    mse = np.mean((pf[m] - pt[m]) ** 2)
    ref = np.mean(pf[m] ** 2) + np.mean(pt[m] ** 2)
    return float(1.0 - mse / ref) if ref > 0 else float("nan")
