"""Keep what the input had right: the network's output, member by member, restored to the
input's large scales.

The consistency model adds fine-scale structure, but on real data it also shifts what the
(bias-corrected) input already had right at large scales: the climatology map, the size of
intense days and with them the change signal (docs/benchmarks.md, issue 11). The member-wise
restore puts each member's large scales back on the input's:

``out' = out * (G(in) + eps) / (G(out) + eps)`` for precipitation-like (log-transformed)
fields, ``out' = out + G(in) - G(out)`` otherwise,

with ``G`` a NaN-aware Gaussian low-pass of standard deviation ``sigma`` target cells. Scales
much larger than ``sigma`` come from the input, scales below it from the network. Each member
then has the input's large scales, so the ensemble's spread at those scales, where the input
itself is uncertain, would vanish: :func:`smooth_perturbation` gives each member an
independent, smooth, mean-one multiplicative field (``exp(a Z - a^2 / 2)`` with ``Z`` a
unit-variance Gaussian random field of correlation length ``length`` cells) that puts that
uncertainty back, its amplitude ``a`` calibrated on held-out pairs.

Pure numpy/scipy: fields in, fields out; the tile kernel
(:func:`esmscale.downscaling.kernel.run_block`) applies both over a region widened by
:func:`reach`, so results do not depend on chunking.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from esmscale.errors import EsmscaleError

__all__ = ["lowpass", "reach", "restore_large_scales", "smooth_perturbation"]

#: Gaussian filters are cut at this many standard deviations.
TRUNCATE = 4.0


def reach(sigma: float) -> int:
    """Cells on each side that a Gaussian of SD ``sigma`` cells reads (its radius).

    Examples
    --------
    >>> reach(2.0), reach(0.5)  # TRUNCATE (4) standard deviations, rounded
    (8, 2)
    """
    return int(TRUNCATE * float(sigma) + 0.5)


def lowpass(x: np.ndarray, sigma: float, *, wrap_x: bool = False) -> np.ndarray:
    """NaN-aware Gaussian low-pass over the last two axes; NaN cells stay NaN.

    Each value is the Gaussian-weighted mean of the finite cells around it (weights
    renormalised), so sea cells and the grid's edges do not pull it towards zero. ``wrap_x``:
    the last axis is periodic (a global grid).

    Examples
    --------
    >>> x = np.ones((1, 5, 5)); x[0, 2, 2] = np.nan
    >>> y = lowpass(x, 1.0)
    >>> bool(np.isnan(y[0, 2, 2])), float(np.nanmax(np.abs(y - 1.0)))
    (True, 0.0)
    """
    x = np.asarray(x, dtype=np.float64)
    valid = np.isfinite(x)
    s = (0.0,) * (x.ndim - 2) + (float(sigma), float(sigma))
    modes = ["constant"] * (x.ndim - 1) + ["wrap" if wrap_x else "constant"]
    kw = {"sigma": s, "mode": modes, "cval": 0.0, "truncate": TRUNCATE}
    num = ndimage.gaussian_filter(np.where(valid, x, 0.0), **kw)
    den = ndimage.gaussian_filter(valid.astype(np.float64), **kw)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[~valid] = np.nan
    return out


def restore_large_scales(
    out: np.ndarray,
    ref: np.ndarray,
    sigma: float,
    *,
    multiplicative: bool = True,
    eps: float = 0.1,
    wrap_x: bool = False,
) -> np.ndarray:
    """``out`` with the large scales (Gaussian SD ``sigma`` cells) of ``ref``.

    Parameters
    ----------
    out, ref
        Fields of the same shape (``(..., ny, nx)``), NaN where undefined.
    sigma
        Standard deviation of the low-pass, in cells.
    multiplicative
        Ratio of the low-passed fields (precipitation: keeps zeros zero and values >= 0) or,
        if False, their difference (temperature).
    eps
        Added to both low-passed fields of the ratio (in the fields' units; keeps dry regions
        from amplifying a drizzle of the network).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = np.full((1, 40, 40), 4.0)
    >>> out = rng.gamma(2.0, size=(1, 40, 40))  # mean 2: half the reference's
    >>> r = restore_large_scales(out, ref, 6.0)
    >>> corr = np.corrcoef(r.ravel(), out.ravel())[0, 1]  # the fine scales are kept
    >>> round(float(r.mean() / ref.mean()), 1), bool(corr > 0.9)
    (1.0, True)
    """
    if out.shape != ref.shape:
        raise EsmscaleError(
            f"restore_large_scales: output of shape {out.shape} and reference of shape "
            f"{ref.shape}; give fields on the same grid."
        )
    if not sigma > 0:
        raise EsmscaleError(f"restore sigma={sigma} must be > 0 (cells).")
    lo_out, lo_ref = lowpass(out, sigma, wrap_x=wrap_x), lowpass(ref, sigma, wrap_x=wrap_x)
    res = out * ((lo_ref + eps) / (lo_out + eps)) if multiplicative else out + (lo_ref - lo_out)
    return np.asarray(res, dtype=np.float32)


def smooth_perturbation(shape: tuple[int, int], length: float, seed: tuple[int, ...]) -> np.ndarray:
    """A unit-variance, zero-mean Gaussian random field on a ``shape`` grid.

    White noise drawn from ``seed`` on the grid widened by the filter's reach, smoothed by a
    Gaussian of SD ``length`` cells, cropped and scaled by the filter's exact gain, so the
    field's variance is 1 at every cell (edges included). The same seed gives the same
    field: the kernel draws it over the whole grid, so it does not depend on chunking.

    Examples
    --------
    >>> z = smooth_perturbation((200, 200), 3.0, (0, 1, 2))
    >>> abs(float(z.mean())) < 0.1, round(float(z.std()), 1)
    (True, 1.0)
    """
    if not length > 0:
        raise EsmscaleError(f"perturbation length={length} must be > 0 (cells).")
    r = reach(length)
    ny, nx = shape
    white = np.random.default_rng(list(seed)).standard_normal((ny + 2 * r, nx + 2 * r))
    sm = ndimage.gaussian_filter(white, float(length), mode="constant", truncate=TRUNCATE)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / float(length)) ** 2)
    k /= k.sum()
    gain = math.sqrt(float((k**2).sum()) ** 2)  # SD of the 2-D filtered unit white noise
    return np.asarray(sm[r : r + ny, r : r + nx] / gain, dtype=np.float32)
