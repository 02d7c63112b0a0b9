"""Consistency with the coarse input: correlation after average pooling and after a low-pass
filter.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter

from esmscale.errors import EsmscaleError
from esmscale.metrics.checks import (
    MEMBER,
    as_dataarray,
    common_times,
    latlon_dims,
    spatial_whole,
    time_dim,
)


def _coarse_pair(
    result: xr.DataArray, coarse: xr.DataArray, factor: int | None
) -> tuple[xr.DataArray, xr.DataArray, int, str, str]:
    """Check ``coarse`` against ``result`` (times, calendar, factor); return both aligned."""
    r = as_dataarray(result, "result")
    c = as_dataarray(coarse, "coarse")
    rlat, rlon = latlon_dims(r, "result")
    clat, clon = latlon_dims(c, "coarse")
    if MEMBER in c.dims:
        raise EsmscaleError(f"coarse has a {MEMBER!r} dim; pass the coarse input itself.")
    ny, nx = int(r.sizes[rlat]), int(r.sizes[rlon])
    cy, cx = int(c.sizes[clat]), int(c.sizes[clon])
    f = (ny // cy if cy else 0) if factor is None else int(factor)
    if f < 1 or ny != f * cy or nx != f * cx:
        given = "" if factor is None else f" {factor}"
        raise EsmscaleError(
            f"the result grid {ny}x{nx} is not the coarse grid {cy}x{cx} refined by the "
            f"integer factor{given};",
            python="pass factor= (the downscaling factor) and crop the result to whole coarse "
            "cells (e.g. result.isel(lat=slice(0, f * ny_coarse))).",
            cli="give --factor (the downscaling factor) and crop the result to whole coarse "
            "cells, or leave out --coarse.",
        )
    rt = time_dim(r, rlat, rlon, "result")
    ct = time_dim(c, clat, clon, "coarse")
    r, c = common_times(r, rt, c, ct, "result", "coarse")
    c = c.rename({clat: f"_c_{rlat}", clon: f"_c_{rlon}"})
    dims = [d for d in (rt,) if d is not None]
    c = c.transpose(*dims, f"_c_{rlat}", f"_c_{rlon}")
    return r, c, f, rlat, rlon


def _pearson(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    a, b = xr.broadcast(a, b)
    ok = a.notnull() & b.notnull()
    a, b = a.where(ok), b.where(ok)
    da, db = a - a.mean(), b - b.mean()
    return (da * db).mean() / np.sqrt((da**2).mean() * (db**2).mean())


def pooled_corr(
    result: xr.DataArray, coarse: xr.DataArray, factor: int | None = None
) -> xr.DataArray:
    """Pearson correlation between the result average-pooled by ``factor`` and the input.

    ``factor x factor`` blocks of the result are averaged (NaN-aware) onto the coarse grid;
    the correlation pools all members, common times and coarse cells. 1 means the result keeps
    the input's pattern at the input's resolution.

    Parameters
    ----------
    result
        Fine fields ``(member?, time, lat, lon)``.
    coarse
        The coarse input ``(time, lat, lon)`` (e.g. the ESM, bias-corrected if it was).
    factor
        Downscaling factor (default: the ratio of the two grid sizes).

    Examples
    --------
    >>> from esmscale.datasets import coarsen_block, synthetic_precip
    >>> obs = synthetic_precip(8, 8, 3).pr
    >>> coarse = obs.coarsen(lat=2, lon=2).mean()
    >>> round(float(pooled_corr(obs, coarse)), 6)
    1.0
    """
    r, c, f, lat, lon = _coarse_pair(result, coarse, factor)
    pooled = r.coarsen({lat: f, lon: f}).mean()
    pooled = pooled.rename({lat: f"_c_{lat}", lon: f"_c_{lon}"}).drop_vars(
        [f"_c_{lat}", f"_c_{lon}"], errors="ignore"
    )
    c = c.drop_vars([f"_c_{lat}", f"_c_{lon}"], errors="ignore")
    return _pearson(pooled, c).rename("pooled_corr")


def _gaussian_lowpass(x: np.ndarray, sigma: float) -> np.ndarray:
    """NaN-aware Gaussian filter over the last two axes (normalised convolution)."""
    if sigma <= 0:
        return np.asarray(x, dtype=np.float64)
    xv = np.asarray(x, dtype=np.float64)
    valid = np.isfinite(xv)
    s = (0.0,) * (xv.ndim - 2) + (sigma, sigma)
    num = gaussian_filter(np.where(valid, xv, 0.0), s, mode="nearest")
    den = gaussian_filter(valid.astype(np.float64), s, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[~valid] = np.nan
    return out


def _lowpass(da: xr.DataArray, lat: str, lon: str, sigma: float) -> xr.DataArray:
    return xr.apply_ufunc(
        _gaussian_lowpass,
        spatial_whole(da, lat, lon),
        input_core_dims=[[lat, lon]],
        output_core_dims=[[lat, lon]],
        kwargs={"sigma": float(sigma)},
        dask="parallelized",
        output_dtypes=[np.float64],
    )


def lowpass_corr(
    result: xr.DataArray,
    coarse: xr.DataArray,
    factor: int | None = None,
    sigma: float | None = None,
) -> xr.DataArray:
    """Pearson correlation with the input after a Gaussian low-pass filter of both.

    The coarse input is repeated onto the fine grid (each coarse cell fills its
    ``factor x factor`` block); both it and the result are smoothed with a NaN-aware Gaussian
    of standard deviation ``sigma`` fine cells (default ``factor / 2``, which damps scales
    below the coarse grid's two-cell wavelength), then correlated over all members, times and
    cells.

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(8, 8, 3).pr
    >>> coarse = obs.coarsen(lat=2, lon=2).mean()
    >>> r = lowpass_corr(obs, coarse)
    >>> bool(0.9 < float(r) <= 1.0)
    True
    """
    r, c, f, lat, lon = _coarse_pair(result, coarse, factor)
    sg = f / 2.0 if sigma is None else float(sigma)
    iy = np.repeat(np.arange(c.sizes[f"_c_{lat}"]), f)
    ix = np.repeat(np.arange(c.sizes[f"_c_{lon}"]), f)
    up = c.isel({f"_c_{lat}": iy, f"_c_{lon}": ix}).drop_vars(
        [f"_c_{lat}", f"_c_{lon}"], errors="ignore"
    )
    up = up.rename({f"_c_{lat}": lat, f"_c_{lon}": lon}).assign_coords({lat: r[lat], lon: r[lon]})
    up = up.where(r.notnull().all(MEMBER) if MEMBER in r.dims else r.notnull())
    return _pearson(_lowpass(r, lat, lon, sg), _lowpass(up, lat, lon, sg)).rename("lowpass_corr")
