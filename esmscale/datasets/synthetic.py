"""Reproducible synthetic "perfect-model world" for downscaling experiments.

High-resolution precipitation and temperature fields are drawn from Gaussian random
fields with an isotropic power-law spectrum, correlated in time as AR(1). A coarse,
smoothed and biased "ESM" counterpart is derived from them with :func:`synthetic_esm`.
Kernels (leading underscore) are numpy-only; xarray is used only in public functions.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import xarray as xr
from scipy.ndimage import gaussian_filter

from esmscale.prepare.interp import coarsen_block  # re-exported: esmscale.datasets.coarsen_block

__all__ = ["coarsen_block", "synthetic_esm", "synthetic_precip", "synthetic_temperature"]

_EXPONENT = 1.3  # b in pr = a * (exp(b * (g - thr)) - 1): sets the heaviness of the tail
_WARM_BIAS = 1.5  # K, additive bias of the synthetic ESM temperature
_BLOCK_DAYS = 256  # days generated per FFT block (bounds the float64 working memory)
_PR_UNITS = ("mm day-1", "mm/day", "mm d-1")


def _spectral_filter(ny: int, nx: int, slope: float) -> np.ndarray:
    """Amplitude filter ``k**(-slope/2)`` on the ``rfft2`` grid (cycles per grid cell)."""
    ky = np.fft.fftfreq(ny)[:, None]
    kx = np.fft.rfftfreq(nx)[None, :]
    k = np.hypot(ky, kx)
    k[0, 0] = min(1.0 / ny, 1.0 / nx)  # finite domain-mean mode: wet/dry days domain-wide
    return k ** (-slope / 2.0)  # overall scale is irrelevant: fields are standardised


def _gaussian_fields(
    ny: int, nx: int, ndays: int, slope: float, autocorrelation: float, rng: np.random.Generator
) -> np.ndarray:
    """Standardised AR(1)-in-time power-law Gaussian fields, float32 ``(ndays, ny, nx)``.

    The AR(1) recursion acts on the white noise (unit variance preserved); as filtering is
    linear and time-invariant, the fields inherit the same lag-1 correlation. The fields are
    doubly periodic. The result is standardised to zero mean and unit variance overall.
    """
    if not -1.0 < autocorrelation < 1.0:
        raise ValueError(f"autocorrelation must be in (-1, 1), got {autocorrelation}")
    amp = _spectral_filter(ny, nx, slope)
    innov = math.sqrt(1.0 - autocorrelation**2)
    out = np.empty((ndays, ny, nx), dtype=np.float32)
    state: np.ndarray | None = None
    for t0 in range(0, ndays, _BLOCK_DAYS):
        noise = rng.standard_normal((min(_BLOCK_DAYS, ndays - t0), ny, nx))
        for i in range(noise.shape[0]):
            if state is not None:
                noise[i] = autocorrelation * state + innov * noise[i]
            state = noise[i]
        block = np.fft.irfft2(np.fft.rfft2(noise) * amp, s=(ny, nx))
        out[t0 : t0 + block.shape[0]] = block
    mean = out.mean(dtype=np.float64)
    std = out.std(dtype=np.float64)
    out -= np.float32(mean)
    out /= np.float32(std if std > 0 else 1.0)
    return out


def _gaussian_to_precip(g: np.ndarray, dry_fraction: float, mean_wet: float) -> np.ndarray:
    """Map standard-normal fields to precipitation in place: 0 below the normal quantile.

    Wet cells get ``a * (exp(b * (g - thr)) - 1)`` with ``a`` chosen analytically so that
    the expected mean over wet cells of a standard-normal ``g`` equals ``mean_wet``.
    """
    if not 0.0 < dry_fraction < 1.0:
        raise ValueError(f"dry_fraction must be in (0, 1), got {dry_fraction}")
    nd = NormalDist()
    thr = nd.inv_cdf(dry_fraction)
    b = _EXPONENT
    # E[exp(b (g - thr)) | g > thr] for standard-normal g
    cond = math.exp(b * b / 2.0 - b * thr) * (1.0 - nd.cdf(thr - b)) / (1.0 - nd.cdf(thr))
    a = mean_wet / (cond - 1.0)
    wet = g > thr
    g -= np.float32(thr)
    g *= np.float32(b)
    np.expm1(g, out=g)
    g *= np.float32(a)
    g[~wet] = 0.0
    return g


def _coords(
    ny: int, nx: int, ndays: int, lat0: float, lon0: float, res: float, start: str, calendar: str
) -> dict[str, xr.DataArray]:
    if ny < 4 or nx < 4 or ndays < 1:
        raise ValueError(f"need ny, nx >= 4 and ndays >= 1, got ny={ny}, nx={nx}, ndays={ndays}")
    lat = lat0 + res * (np.arange(ny) + 0.5)
    lon = lon0 + res * (np.arange(nx) + 0.5)
    if calendar.lower() in ("standard", "gregorian"):
        times = pd.date_range(start, periods=ndays, freq="D")
    else:
        times = xr.date_range(start, periods=ndays, freq="D", calendar=calendar, use_cftime=True)
    time = xr.DataArray(times, dims="time", attrs={"standard_name": "time", "axis": "T"})
    time.encoding["calendar"] = calendar
    lat_attrs = {"units": "degrees_north", "standard_name": "latitude", "axis": "Y"}
    lon_attrs = {"units": "degrees_east", "standard_name": "longitude", "axis": "X"}
    return {
        "time": time,
        "lat": xr.DataArray(lat, dims="lat", attrs=lat_attrs),
        "lon": xr.DataArray(lon, dims="lon", attrs=lon_attrs),
    }


def synthetic_precip(
    ny: int = 64,
    nx: int = 64,
    ndays: int = 365,
    *,
    seed: int = 0,
    lat0: float = 35.0,
    lon0: float = -10.0,
    resolution: float = 0.25,
    slope: float = 3.0,
    dry_fraction: float = 0.6,
    autocorrelation: float = 0.7,
    mean_wet: float = 6.0,
    start: str = "2000-01-01",
    calendar: str = "standard",
) -> xr.Dataset:
    """Synthetic daily precipitation with a power-law spectrum and AR(1) persistence.

    A standardised Gaussian random field with isotropic spectrum ``PSD ~ k**-slope``
    (doubly periodic, AR(1) in time with coefficient ``autocorrelation``) is thresholded at
    the standard-normal ``dry_fraction`` quantile; wet cells get the heavy-tailed intensity
    ``a * (exp(1.3 * (g - thr)) - 1)`` with ``a`` set so the wet-cell mean is ~``mean_wet``.

    Parameters
    ----------
    ny, nx, ndays : int
        Grid size (``>= 4``, any parity) and number of days.
    seed : int
        Seed for :func:`numpy.random.default_rng`; output is exactly reproducible.
    lat0, lon0, resolution : float
        South-west grid corner and grid spacing in degrees (cell centres are offset by
        half a cell).
    slope, dry_fraction, autocorrelation, mean_wet : float
        Spectral slope, fraction of dry cells, lag-1 correlation, mean wet intensity (mm/day).
    start, calendar : str
        First day and CF calendar (non-standard calendars give cftime times).

    Returns
    -------
    xarray.Dataset
        Variable ``pr`` (float32, ``("time", "lat", "lon")``, mm day-1).

    Examples
    --------
    >>> ds = synthetic_precip(16, 24, 30, seed=1)
    >>> ds.pr.shape, str(ds.pr.dtype), ds.pr.attrs["units"]
    ((30, 16, 24), 'float32', 'mm day-1')
    >>> bool((ds.pr >= 0).all())
    True
    """
    coords = _coords(ny, nx, ndays, lat0, lon0, resolution, start, calendar)
    g = _gaussian_fields(ny, nx, ndays, slope, autocorrelation, np.random.default_rng(seed))
    pr = _gaussian_to_precip(g, dry_fraction, mean_wet)
    attrs = {
        "units": "mm day-1",
        "standard_name": "lwe_precipitation_rate",
        "long_name": "synthetic daily precipitation",
        "cell_methods": "time: mean",
    }
    ds = xr.Dataset({"pr": (("time", "lat", "lon"), pr, attrs)}, coords=coords)
    ds.attrs = {
        "title": "Synthetic perfect-model precipitation",
        "source": "esmscale.datasets.synthetic_precip",
        "Conventions": "CF-1.8",
        "seed": seed, "ny": ny, "nx": nx, "ndays": ndays, "lat0": lat0, "lon0": lon0,
        "resolution": resolution, "slope": slope, "dry_fraction": dry_fraction,
        "autocorrelation": autocorrelation, "mean_wet": mean_wet, "start": start,
        "calendar": calendar,
    }  # fmt: skip
    return ds


def synthetic_temperature(
    ny: int = 64,
    nx: int = 64,
    ndays: int = 365,
    *,
    seed: int = 0,
    lat0: float = 35.0,
    lon0: float = -10.0,
    resolution: float = 0.25,
    slope: float = 3.0,
    autocorrelation: float = 0.8,
    start: str = "2000-01-01",
    calendar: str = "standard",
) -> xr.Dataset:
    """Synthetic daily near-surface air temperature (K).

    ``tas = 288 - 0.5 * (lat - lat0) - 8 * cos(2 pi (doy - 15) / year_length) + 3 * g`` where
    ``g`` is the standardised correlated Gaussian field of :func:`synthetic_precip` (same
    parameters and seed give the same ``g``). Parameters are as in :func:`synthetic_precip`.

    Returns
    -------
    xarray.Dataset
        Variable ``tas`` (float32, ``("time", "lat", "lon")``, K).

    Examples
    --------
    >>> ds = synthetic_temperature(8, 8, 10, calendar="noleap")
    >>> ds.tas.attrs["units"], ds.tas.shape
    ('K', (10, 8, 8))
    """
    coords = _coords(ny, nx, ndays, lat0, lon0, resolution, start, calendar)
    g = _gaussian_fields(ny, nx, ndays, slope, autocorrelation, np.random.default_rng(seed))
    doy = coords["time"].dt.dayofyear.to_numpy().astype(np.float64)
    year = 360.0 if calendar == "360_day" else 365.25
    season = -8.0 * np.cos(2.0 * np.pi * (doy - 15.0) / year)
    merid = -0.5 * (coords["lat"].to_numpy() - lat0)
    g *= np.float32(3.0)
    g += (288.0 + season[:, None, None] + merid[None, :, None]).astype(np.float32)
    attrs = {"units": "K", "standard_name": "air_temperature",
             "long_name": "synthetic daily near-surface air temperature",
             "cell_methods": "time: mean"}  # fmt: skip
    ds = xr.Dataset({"tas": (("time", "lat", "lon"), g, attrs)}, coords=coords)
    ds.attrs = {
        "title": "Synthetic perfect-model temperature",
        "source": "esmscale.datasets.synthetic_temperature",
        "Conventions": "CF-1.8",
        "seed": seed, "ny": ny, "nx": nx, "ndays": ndays, "lat0": lat0, "lon0": lon0,
        "resolution": resolution, "slope": slope, "autocorrelation": autocorrelation,
        "start": start, "calendar": calendar,
    }  # fmt: skip
    return ds


def synthetic_esm(
    obs: xr.Dataset,
    factor: int = 4,
    *,
    smoothing: float = 0.7,
    intensity_bias: float = 0.8,
    drizzle: float = 0.3,
    variable: str | None = None,
) -> xr.Dataset:
    """Coarse, smoothed and biased "ESM" counterpart of a synthetic observation dataset.

    Steps: NaN-aware block mean by ``factor`` over the last two dims (coordinates are block
    means), Gaussian smoothing with sigma ``smoothing`` coarse cells over the spatial axes
    only (``mode="nearest"``), then a bias depending on units:

    * precipitation (mm day-1): ``intensity_bias * pr + drizzle``, an **intensity bias**
      (heavy events too weak) and a **drizzle bias** (no dry cells, too many drizzle days);
    * temperature (K): ``tas + 1.5``, a uniform **warm bias** of 1.5 K.

    Examples
    --------
    >>> esm = synthetic_esm(synthetic_precip(16, 16, 5), factor=4)
    >>> esm.pr.shape, float(esm.pr.min()) >= 0.3
    ((5, 4, 4), True)
    """
    names = [str(v) for v in obs.data_vars]
    if variable is None and len(names) == 1:
        variable = names[0]
    if variable is None or variable not in names:
        raise ValueError(f"choose `variable` among the data variables {names} (got {variable!r})")
    da = obs[variable]
    ydim, xdim = da.dims[-2:]
    units = str(da.attrs.get("units", ""))
    data = coarsen_block(da.to_numpy(), factor)
    if smoothing > 0:
        sigma = (0.0,) * (data.ndim - 2) + (smoothing, smoothing)
        data = gaussian_filter(data, sigma=sigma, mode="nearest")
    bias: dict[str, float]
    if units in _PR_UNITS:
        data = (intensity_bias * data + drizzle).astype(data.dtype)
        bias = {"intensity_bias": intensity_bias, "drizzle": drizzle}
    elif units == "K":
        data = (data + _WARM_BIAS).astype(data.dtype)
        bias = {"warm_bias": _WARM_BIAS}
    else:
        raise ValueError(f"unsupported units {units!r} for {variable!r}: use mm day-1 or K")
    coords: dict[str, xr.DataArray] = {str(d): obs[d] for d in da.dims[:-2] if d in obs.coords}
    for dim in (ydim, xdim):
        c = obs[dim].to_numpy().astype(np.float64)
        coords[str(dim)] = xr.DataArray(
            c.reshape(-1, factor).mean(axis=1), dims=(dim,), attrs=dict(obs[dim].attrs)
        )
    ds = xr.Dataset({variable: (da.dims, data, dict(da.attrs))}, coords=coords)
    ds.attrs = {"title": f"Synthetic coarse biased ESM ({variable})", "Conventions": "CF-1.8",
                "source": "esmscale.datasets.synthetic_esm", "variable": variable,
                "factor": factor, "smoothing": smoothing, **bias,
                **{f"obs_{k}": v for k, v in obs.attrs.items() if k != "Conventions"}}  # fmt: skip
    if "time" in ds.coords and "calendar" in obs["time"].encoding:
        ds.time.encoding["calendar"] = obs["time"].encoding["calendar"]
    return ds
