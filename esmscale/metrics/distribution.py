"""Distributions, means and profiles: quantile and histogram errors, wet days, bias maps,
zonal means.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from esmscale.errors import EsmscaleError
from esmscale.metrics.checks import (
    DEFAULT_QUANTILES,
    align_to_obs,
    latlon_dims,
)


def quantile_errors(
    result: xr.DataArray,
    obs: xr.DataArray,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    *,
    relative: bool = False,
) -> xr.DataArray:
    """Errors of the quantiles of all values (members, times and cells pooled).

    ``Q_result(q) - Q_obs(q)`` (units of the data), or ``Q_result(q) / Q_obs(q) - 1`` with
    ``relative=True`` (NaN where ``Q_obs(q) = 0``). NaN cells are left out. Quantiles are
    exact (linear interpolation).

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(8, 8, 4).pr
    >>> err = quantile_errors(2 * obs, obs, [0.9, 0.99], relative=True)
    >>> err.round(5).values.tolist()
    [1.0, 1.0]
    """
    r, o = align_to_obs(result, obs)
    q = [float(v) for v in quantiles]
    if not q or min(q) < 0 or max(q) > 1:
        raise EsmscaleError(f"quantiles must lie in [0, 1], got {list(quantiles)}.")
    qr = r.quantile(q, skipna=True)
    qo = o.quantile(q, skipna=True)
    err = qr / qo.where(qo != 0) - 1.0 if relative else qr - qo
    return err.rename("relative_quantile_error" if relative else "quantile_error")


def histogram_edges(*arrays: xr.DataArray, bins: int = 500) -> xr.DataArray:
    """``bins + 1`` equal-width edges spanning the finite values of all ``arrays`` (lazy).

    Examples
    --------
    >>> a = xr.DataArray([0.0, 1.0, np.nan])
    >>> histogram_edges(a, xr.DataArray([3.0]), bins=3).values.tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    if bins < 1:
        raise EsmscaleError(f"bins must be >= 1, got {bins}.")
    lo = xr.concat([a.min() for a in arrays], dim="a").min()
    hi = xr.concat([a.max() for a in arrays], dim="a").max()
    frac = xr.DataArray(np.linspace(0.0, 1.0, bins + 1), dims="edge")
    width = xr.where(hi > lo, hi - lo, 1.0)
    return (lo + frac * width).rename("edges")


def histogram(da: xr.DataArray, edges: xr.DataArray | np.ndarray) -> xr.DataArray:
    """Relative frequency of the finite values of ``da`` in each bin of ``edges``.

    Frequencies are divided by the number of finite values (values outside the edges count in
    the total but in no bin). The last bin includes its right edge.

    Examples
    --------
    >>> histogram(xr.DataArray([0.0, 0.2, 0.9, 1.0]), np.array([0.0, 0.5, 1.0])).values.tolist()
    [0.5, 0.5]
    """
    import dask.array as dsa

    e = edges.data if isinstance(edges, xr.DataArray) else np.asarray(edges, dtype=np.float64)
    x = da.data.ravel() if da.chunks is not None else np.asarray(da.values).ravel()
    lazy = isinstance(x, dsa.Array) or isinstance(e, dsa.Array)
    if lazy:
        x = dsa.asarray(x)
        finite = dsa.isfinite(x)
        e_arr = dsa.asarray(e)
        counts, _ = dsa.histogram(x[finite], bins=e_arr)
        total = finite.sum()
        centres = (e_arr[1:] + e_arr[:-1]) / 2
    else:
        e = np.asarray(e, dtype=np.float64)
        xv = np.asarray(x, dtype=np.float64)
        finite = np.isfinite(xv)
        counts, _ = np.histogram(xv[finite], bins=e)
        total = finite.sum()
        centres = (e[1:] + e[:-1]) / 2
    freq = counts / np.maximum(total, 1)
    return xr.DataArray(freq, dims="bin", coords={"bin_centre": ("bin", centres)}, name="freq")


def histogram_error(result: xr.DataArray, obs: xr.DataArray, bins: int = 500) -> xr.DataArray:
    """``sum_b |p_result(b) - p_obs(b)|`` over ``bins`` equal-width bins spanning both.

    ``p`` are relative frequencies (:func:`histogram`), so the error lies in ``[0, 2]`` (twice
    the total-variation distance between the two binned distributions).

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(8, 8, 4).pr
    >>> float(histogram_error(obs, obs))
    0.0
    """
    r, o = align_to_obs(result, obs)
    edges = histogram_edges(r, o, bins=bins)
    d = abs(histogram(r, edges) - histogram(o, edges)).sum("bin")
    return d.rename("histogram_error")


def wet_day_fraction(
    da: xr.DataArray, threshold: float = 1.0, dim: str | Sequence[str] | None = None
) -> xr.DataArray:
    """Fraction of finite values ``>= threshold`` (1 mm day-1: a wet day), over ``dim``.

    ``dim=None`` pools all dims (one number); ``dim=("member", "time")`` gives a map.

    Examples
    --------
    >>> float(wet_day_fraction(xr.DataArray([0.0, 0.5, 1.0, 3.0, np.nan])))
    0.5
    """
    finite = da.notnull()
    wet = (da >= threshold) & finite
    return (wet.sum(dim) / finite.sum(dim)).rename("wet_day_fraction")


def bias_map(result: xr.DataArray, obs: xr.DataArray) -> xr.DataArray:
    """Mean-bias map: mean of ``result`` over members and times minus the obs time mean.

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(8, 8, 3).pr
    >>> ens = xr.concat([obs + 1, obs + 3], dim="member")
    >>> float(bias_map(ens, obs).mean())
    2.0
    """
    r, o = align_to_obs(result, obs)
    lat, lon = o.dims[-2:]
    rd = [d for d in r.dims if d not in (lat, lon)]
    od = [d for d in o.dims if d not in (lat, lon)]
    return (r.mean(rd) - o.mean(od)).rename("bias")


def zonal_mean(da: xr.DataArray) -> xr.DataArray:
    """Mean over every dim but latitude (longitudes, times, members): a profile ``(lat,)``.

    Examples
    --------
    >>> da = xr.DataArray([[1.0, 3.0], [5.0, np.nan]], dims=("lat", "lon"),
    ...                   coords={"lat": [10.0, 20.0], "lon": [0.0, 1.0]})
    >>> zonal_mean(da).values.tolist()
    [2.0, 5.0]
    """
    lat, _ = latlon_dims(da, "zonal_mean input")
    return da.mean([d for d in da.dims if d != lat]).rename("zonal_mean")


def zonal_profile_error(result: xr.DataArray, obs: xr.DataArray) -> xr.DataArray:
    """Mean over latitudes of ``|zonal_mean(result) - zonal_mean(obs)|``.

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(8, 8, 3).pr
    >>> round(float(zonal_profile_error(obs + 0.5, obs)), 6)
    0.5
    """
    r, o = align_to_obs(result, obs)
    return abs(zonal_mean(r) - zonal_mean(o)).mean().rename("zonal_profile_error")
