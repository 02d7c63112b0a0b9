"""Verification metrics for downscaled fields.

Two layers live here:

* **xarray metrics** (:func:`radial_psd`, :func:`psd_error`, :func:`quantile_errors`,
  :func:`histogram_error`, :func:`wet_day_fraction`, :func:`bias_map`, :func:`zonal_mean`,
  :func:`zonal_profile_error`, :func:`pooled_corr`, :func:`lowpass_corr`, :func:`fair_crps`,
  :func:`mean_absolute_error`, :func:`spread_skill_ratio`, :func:`rank_histogram`,
  :func:`rank_flatness`). They take DataArrays with dims ``(member?, time, lat, lon)`` (the
  output of :func:`esmscale.downscale`) and observations ``(time, lat, lon)``, check that both
  are comparable (:func:`align_to_obs`: grid, calendar, overlapping times, units) and return
  DataArrays. With Dask-backed input nothing is computed: call ``.compute()`` (or
  ``dask.compute`` on several metrics at once, so the inputs are read once).
* **numpy helpers** kept for the array API (:func:`crps_ensemble`, :func:`mae`,
  :func:`pooled_correlation`, :func:`quantile_error`, :func:`wet_day_frequency`); each returns a
  float.

Formulas are given in each docstring and in ``docs/evaluation.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter
from scores.probability import crps_for_ensemble

from esmscale.datasets.synthetic import coarsen_block
from esmscale.errors import EsmscaleError
from esmscale.spectra import rapsd, wavenumbers

__all__ = [
    "DEFAULT_QUANTILES",
    "MEMBER",
    "align_to_obs",
    "bias_map",
    "calendar_of",
    "crps_ensemble",
    "fair_crps",
    "histogram",
    "histogram_edges",
    "histogram_error",
    "lowpass_corr",
    "mae",
    "mean_absolute_error",
    "pooled_corr",
    "pooled_correlation",
    "psd_error",
    "quantile_error",
    "quantile_errors",
    "radial_psd",
    "rank_flatness",
    "rank_histogram",
    "spread_skill_ratio",
    "wet_day_fraction",
    "wet_day_frequency",
    "zonal_mean",
    "zonal_profile_error",
]

#: Name of the ensemble dimension (as written by :func:`esmscale.downscale`).
MEMBER = "member"
#: Quantile levels reported by :func:`quantile_errors` and :func:`esmscale.evaluate`.
DEFAULT_QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99, 0.999)

_CALENDAR_ALIASES = {
    "gregorian": "standard",
    "proleptic_gregorian": "standard",
    "standard": "standard",
    "noleap": "noleap",
    "365_day": "noleap",
    "all_leap": "all_leap",
    "366_day": "all_leap",
}


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------


def _as_dataarray(obj: Any, what: str) -> xr.DataArray:
    if isinstance(obj, xr.Dataset):
        from esmscale.prepare.inputs import select_variable

        return select_variable(obj)
    if not isinstance(obj, xr.DataArray):
        raise EsmscaleError(
            f"{what} must be an xarray DataArray (or a Dataset with one gridded variable), "
            f"got {type(obj).__name__}; wrap numpy arrays with xr.DataArray(values, "
            "dims=('time', 'lat', 'lon'), coords=...)."
        )
    return obj


def _latlon(da: xr.DataArray, what: str) -> tuple[str, str]:
    from esmscale.prepare.regrid import find_latlon

    try:
        lat, lon = find_latlon(da)
    except EsmscaleError as err:
        raise EsmscaleError(f"{what}: {err}") from None
    for name in (lat, lon):
        if da[name].dims != (name,):
            raise EsmscaleError(
                f"{what}: coordinate {name!r} lies along {da[name].dims}; metrics need 1-D "
                f"latitude and longitude dimension coordinates (swap_dims or rename first)."
            )
    return lat, lon


def _time_dim(da: xr.DataArray, lat: str, lon: str, what: str) -> str | None:
    others = [str(d) for d in da.dims if d not in (lat, lon, MEMBER)]
    if not others:
        return None
    if len(others) > 1:
        raise EsmscaleError(
            f"{what} has dims {tuple(map(str, da.dims))}; expected ({MEMBER}?, time, lat, lon). "
            f"Select or average the extra dims {others[1:] if 'time' in others else others} first "
            "(e.g. da.isel(level=0))."
        )
    t = others[0]
    if t not in da.coords:
        return t
    kind = np.asarray(da[t].values).dtype.kind
    if kind in "iuf":
        raise EsmscaleError(
            f"{what}: time coordinate {t!r} is numeric ({da[t].dtype}), not dates; its units "
            "attribute probably lacks 'since' (e.g. 'days since 1850-01-01'): fix it and reopen."
        )
    return t


def calendar_of(time: xr.DataArray) -> str:
    """Calendar of a decoded time coordinate, with aliases folded.

    ``gregorian``/``proleptic_gregorian``/numpy datetimes give ``"standard"``, ``365_day``
    gives ``"noleap"`` and ``366_day`` gives ``"all_leap"``.

    Examples
    --------
    >>> import pandas as pd
    >>> calendar_of(xr.DataArray(pd.date_range("2000-01-01", periods=2), dims="time"))
    'standard'
    >>> t = xr.date_range("2000-01-01", periods=2, calendar="365_day", use_cftime=True)
    >>> calendar_of(xr.DataArray(t, dims="time"))
    'noleap'
    """
    if np.issubdtype(time.dtype, np.datetime64):
        return "standard"
    first = np.asarray(time.values).ravel()[:1]
    cal = getattr(first[0], "calendar", None) if first.size else None
    cal = str(cal or time.encoding.get("calendar", "standard")).lower()
    return _CALENDAR_ALIASES.get(cal, cal)


def _time_index(da: xr.DataArray, t: str) -> Any:
    idx = da.indexes[t]
    if isinstance(idx, xr.CFTimeIndex) and calendar_of(da[t]) == "standard":
        return idx.to_datetimeindex(time_unit="ns")
    return idx


def _fmt_times(idx: Any) -> str:
    return f"{idx[0]!s}..{idx[-1]!s} ({len(idx)} steps)" if len(idx) else "(empty)"


def _common_times(
    a: xr.DataArray, ta: str | None, b: xr.DataArray, tb: str | None, what_a: str, what_b: str
) -> tuple[xr.DataArray, xr.DataArray]:
    """Restrict ``a`` and ``b`` to their common times; ``b``'s time dim is renamed to ``ta``."""
    if ta is None and tb is None:
        return a, b
    if ta is None or tb is None:
        has, lacks = (what_a, what_b) if tb is None else (what_b, what_a)
        raise EsmscaleError(
            f"{has} has a time dimension but {lacks} has not; give both the same dims "
            f"({MEMBER}?, time, lat, lon), or select one time from the first (da.isel(time=0))."
        )
    ca = calendar_of(a[ta]) if ta in a.coords else "none"
    cb = calendar_of(b[tb]) if tb in b.coords else "none"
    if "none" not in (ca, cb) and ca != cb:
        raise EsmscaleError(
            f"{what_a} uses the {ca!r} calendar but {what_b} uses {cb!r}; convert one, e.g. "
            f"{what_b}.convert_calendar({ca!r}, align_on='date') (xarray), before comparing."
        )
    if tb != ta:
        b = b.rename({tb: ta})
    dated = (ta in a.coords, ta in b.coords)
    if dated != (True, True):
        if dated == (False, False) and a.sizes[ta] == b.sizes[ta]:
            return a, b  # no dates on either side: compared step by step
        raise EsmscaleError(
            f"{what_a} has {a.sizes[ta]} times {'with' if dated[0] else 'without'} dates and "
            f"{what_b} has {b.sizes[ta]} {'with' if dated[1] else 'without'} dates; give both "
            f"time coordinates (da.assign_coords({ta}=dates)) so that common days can be found."
        )
    ia, ib = _time_index(a, ta), _time_index(b, ta)
    if ia is not a.indexes[ta]:
        a = a.assign_coords({ta: ia})
    if ib is not b.indexes[ta]:
        b = b.assign_coords({ta: ib})
    common = ia.intersection(ib)
    if len(common) == 0:
        raise EsmscaleError(
            f"{what_a} and {what_b} have no time in common: {what_a} covers "
            f"{_fmt_times(ia)}, {what_b} covers {_fmt_times(ib)}. Compare the same period; if "
            "both are daily values stamped at different hours, floor them first: "
            "da['time'] = da.indexes['time'].floor('D')."
        )
    if len(common) < len(ia):
        a = a.sel({ta: common})
    if len(common) < len(ib):
        b = b.sel({ta: common})
    return a, b


def _same_axis(a: np.ndarray, b: np.ndarray, periodic: bool) -> bool:
    if a.shape != b.shape:
        return False
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    step = float(np.abs(np.diff(a)).mean()) if a.size > 1 else 1.0
    d = a - b
    if periodic:
        d = (d + 180.0) % 360.0 - 180.0
    return bool(np.all(np.abs(d) <= 1e-3 * step))


def _describe_grid(da: xr.DataArray, lat: str, lon: str) -> str:
    la, lo = np.asarray(da[lat].values), np.asarray(da[lon].values)
    rng = lambda v: f"{v[0]:.4g}..{v[-1]:.4g}" if v.size else "-"  # noqa: E731
    return f"{la.size}x{lo.size} ({lat} {rng(la)}, {lon} {rng(lo)})"


def _convert_units(result: xr.DataArray, obs: xr.DataArray, what: str) -> xr.DataArray:
    ru, ou = result.attrs.get("units"), obs.attrs.get("units")
    if ru is None or ou is None or " ".join(str(ru).split()) == " ".join(str(ou).split()):
        return result
    from esmscale.units import linear_factors

    scale, offset = linear_factors(ru, str(ou), f"{what} ({result.name})")
    if (scale, offset) == (1.0, 0.0):
        return result
    return (result * scale + offset).assign_attrs({**result.attrs, "units": ou})


def align_to_obs(
    result: xr.DataArray | xr.Dataset,
    obs: xr.DataArray | xr.Dataset,
    *,
    what: str = "result",
) -> tuple[xr.DataArray, xr.DataArray]:
    """Check that a result and observations are comparable, and align them (lazily).

    Checks, each failing with an :class:`~esmscale.errors.EsmscaleError` that says how to fix
    it: both have 1-D lat/lon coordinates on the same grid (longitudes may differ by 360),
    dims are ``(member?, time, lat, lon)``, both time axes use the same calendar and share at
    least one time. Then the result is cut to the common times, given the observations'
    coordinates and dim names, transposed to ``(member?, time, lat, lon)`` and converted to the
    observations' units (when both carry known, different ``units``).

    Parameters
    ----------
    result
        Downscaled field(s), dims ``(member?, time, lat, lon)``.
    obs
        Observations, dims ``(time, lat, lon)``.
    what
        Name used for ``result`` in error messages.

    Returns
    -------
    result, obs
        Aligned DataArrays (no data is loaded).

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(8, 8, 5).pr
    >>> res, o = align_to_obs(obs.isel(time=slice(2, None)).expand_dims(member=2), obs)
    >>> dict(res.sizes), dict(o.sizes)
    ({'member': 2, 'time': 3, 'lat': 8, 'lon': 8}, {'time': 3, 'lat': 8, 'lon': 8})
    """
    r = _as_dataarray(result, what)
    o = _as_dataarray(obs, "obs")
    olat, olon = _latlon(o, "obs")
    rlat, rlon = _latlon(r, what)
    if MEMBER in o.dims:
        raise EsmscaleError(
            f"obs has a {MEMBER!r} dimension {tuple(map(str, o.dims))}; observations must be "
            f"one field per time (select one: obs.isel({MEMBER}=0))."
        )
    ot = _time_dim(o, olat, olon, "obs")
    rt = _time_dim(r, rlat, rlon, what)
    same = _same_axis(r[rlat].values, o[olat].values, periodic=False) and _same_axis(
        r[rlon].values, o[olon].values, periodic=True
    )
    if not same:
        raise EsmscaleError(
            f"{what} and obs are on different grids: {what} {_describe_grid(r, rlat, rlon)}, "
            f"obs {_describe_grid(o, olat, olon)}. Regrid the result onto the observations "
            "first (esmscale.prepare.regrid(result, obs)), or pass observations on the grid "
            "you downscaled to (downscale(..., target=obs)); a reversed latitude axis is fixed "
            "with da.sortby('lat')."
        )
    r = r.rename({k: v for k, v in ((rlat, olat), (rlon, olon)) if k != v})
    r = r.assign_coords({olat: o[olat], olon: o[olon]})
    o, r = _common_times(o, ot, r, rt, "obs", what)
    dims = [d for d in (MEMBER, ot, olat, olon) if d is not None and d in r.dims]
    r = r.transpose(*dims)
    o = o.transpose(*[d for d in (ot, olat, olon) if d is not None])
    r = _convert_units(r, o, what)
    return r, o


def _require_members(result: xr.DataArray, metric: str, minimum: int = 2) -> int:
    if MEMBER not in result.dims:
        raise EsmscaleError(
            f"{metric} is an ensemble metric, but the result has no {MEMBER!r} dimension "
            f"(dims {tuple(map(str, result.dims))}). Downscale with members >= {minimum} "
            f"(esmscale.downscale(..., members=8)), rename the ensemble dim to {MEMBER!r}, or "
            "use mean_absolute_error for a deterministic result."
        )
    m = int(result.sizes[MEMBER])
    if m < minimum:
        raise EsmscaleError(
            f"{metric} needs at least {minimum} members; the result has {m}. Downscale with "
            f"more members (members={max(minimum, 8)})."
        )
    return m


def _spatial_whole(da: xr.DataArray, lat: str, lon: str) -> xr.DataArray:
    """One chunk along lat/lon (a no-op for numpy-backed data)."""
    return da.chunk({lat: -1, lon: -1}) if da.chunks is not None else da


# --------------------------------------------------------------------------------------------
# spectra
# --------------------------------------------------------------------------------------------


def _psd_each(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-field RAPSD: ``(..., H, W)`` -> ``(..., nk)``; NaN for a field with no valid cell."""
    h, w = x.shape[-2:]
    nk = wavenumbers((h, w)).size
    flat = x.reshape(-1, h, w)
    valid = np.broadcast_to(np.asarray(mask, dtype=bool), x.shape).reshape(-1, h, w)
    out = np.full((flat.shape[0], nk), np.nan)
    for i in range(flat.shape[0]):
        if (valid[i] & np.isfinite(flat[i])).any():
            out[i] = rapsd(flat[i], mask=valid[i])[1]
    return out.reshape(*x.shape[:-2], nk)


def radial_psd(da: xr.DataArray, mask: xr.DataArray | np.ndarray | None = None) -> xr.DataArray:
    """Radially averaged power spectral density, averaged over all non-spatial dims.

    Each field's spectrum is :func:`esmscale.spectra.rapsd` (shell mean of ``|FFT|^2 / N`` of
    the anomaly from the field mean, ``N`` = valid cells; masked and NaN cells set to zero);
    spectra are then averaged over members and times. White noise of variance ``s^2`` has a
    flat spectrum ``s^2``.

    Parameters
    ----------
    da
        Field(s) with latitude/longitude dims (any others are averaged over).
    mask
        Optional boolean ``(lat, lon)`` array, True on valid cells (e.g. land). Use the
        observations' mask for every field that is compared with them.

    Returns
    -------
    xarray.DataArray
        Dim ``wavenumber`` (cycles per grid cell, ``0 < k <= 0.5``); lazy for Dask input.

    Examples
    --------
    >>> j = np.arange(8)
    >>> wave = xr.DataArray(np.cos(2 * np.pi * 2 * j / 8)[None, :].repeat(8, 0),
    ...                     dims=("lat", "lon"), coords={"lat": np.arange(8.0),
    ...                     "lon": np.arange(8.0)})
    >>> radial_psd(wave).round(4).values.tolist()
    [0.0, 2.6667, 0.0, 0.0]
    """
    da = _as_dataarray(da, "radial_psd input")
    lat, lon = _latlon(da, "radial_psd input")
    shape = (int(da.sizes[lat]), int(da.sizes[lon]))
    if min(shape) < 4:
        raise EsmscaleError(f"radial_psd: grid {shape[0]}x{shape[1]} is too small (need 4x4).")
    k = wavenumbers(shape)
    if mask is None:
        m = xr.DataArray(np.ones(shape, dtype=bool), dims=(lat, lon))
    elif isinstance(mask, xr.DataArray):
        if set(mask.dims) != {lat, lon}:
            raise EsmscaleError(
                f"radial_psd: mask dims {tuple(map(str, mask.dims))} must be ({lat!r}, {lon!r})."
            )
        m = mask.drop_vars([c for c in mask.coords if c not in mask.dims]).astype(bool)
        m = m.assign_coords({lat: da[lat], lon: da[lon]}).transpose(lat, lon)
    else:
        arr = np.asarray(mask, dtype=bool)
        if arr.shape != shape:
            raise EsmscaleError(f"radial_psd: mask shape {arr.shape} must be the grid {shape}.")
        m = xr.DataArray(arr, dims=(lat, lon))
    x = _spatial_whole(da.astype(np.float64), lat, lon)
    per_field = xr.apply_ufunc(
        _psd_each,
        x,
        _spatial_whole(m, lat, lon) if m.chunks is not None else m,
        input_core_dims=[[lat, lon], [lat, lon]],
        output_core_dims=[["wavenumber"]],
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"wavenumber": k.size}},
    )
    others = [d for d in per_field.dims if d != "wavenumber"]
    out = per_field.mean(others) if others else per_field
    return out.assign_coords(
        wavenumber=("wavenumber", k, {"units": "cycles per grid cell", "long_name": "wavenumber"})
    ).rename("psd")


def psd_error(
    psd: xr.DataArray, psd_ref: xr.DataArray, k_min: float = 0.0, k_max: float | None = None
) -> xr.DataArray:
    """Mean ``|log10(psd / psd_ref)|`` over wavenumbers ``k_min <= k <= k_max``.

    0 means identical spectra in the band; 1 means an error of a factor 10 on average.

    Examples
    --------
    >>> k = {"wavenumber": [0.1, 0.2, 0.3]}
    >>> p = xr.DataArray([1.0, 10.0, 100.0], dims="wavenumber", coords=k)
    >>> ref = xr.DataArray([1.0, 1.0, 1.0], dims="wavenumber", coords=k)
    >>> float(psd_error(p, ref, k_min=0.15))
    1.5
    >>> float(psd_error(p, ref, k_min=0.15, k_max=0.25))
    1.0
    """
    for name, p in (("psd", psd), ("psd_ref", psd_ref)):
        if "wavenumber" not in p.dims:
            raise EsmscaleError(f"psd_error: {name} has no 'wavenumber' dim; use radial_psd.")
    ka, kb = psd["wavenumber"].values, psd_ref["wavenumber"].values
    if ka.shape != kb.shape or not np.allclose(ka, kb):
        raise EsmscaleError(
            f"psd_error: the spectra have different wavenumbers ({ka.size} vs {kb.size} bins); "
            "compute both on the same grid (regrid the result onto the observations)."
        )
    hi = np.inf if k_max is None else k_max
    band = (ka >= k_min) & (ka <= hi)
    if not band.any():
        raise EsmscaleError(
            f"psd_error: no wavenumber in [{k_min}, {hi}]; the grid resolves "
            f"{ka.min():.4g}..{ka.max():.4g} cycles per cell."
        )
    ratio = psd.isel(wavenumber=band) / psd_ref.isel(wavenumber=band).assign_coords(
        wavenumber=psd["wavenumber"][band]
    )
    err = abs(xr.ufuncs.log10(ratio))
    return err.mean("wavenumber").rename("psd_error")


# --------------------------------------------------------------------------------------------
# distributions
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# means and profiles
# --------------------------------------------------------------------------------------------


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
    lat, _ = _latlon(da, "zonal_mean input")
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


# --------------------------------------------------------------------------------------------
# consistency with the coarse input
# --------------------------------------------------------------------------------------------


def _coarse_pair(
    result: xr.DataArray, coarse: xr.DataArray, factor: int | None
) -> tuple[xr.DataArray, xr.DataArray, int, str, str]:
    """Check ``coarse`` against ``result`` (times, calendar, factor); return both aligned."""
    r = _as_dataarray(result, "result")
    c = _as_dataarray(coarse, "coarse")
    rlat, rlon = _latlon(r, "result")
    clat, clon = _latlon(c, "coarse")
    if MEMBER in c.dims:
        raise EsmscaleError(f"coarse has a {MEMBER!r} dim; pass the coarse input itself.")
    ny, nx = int(r.sizes[rlat]), int(r.sizes[rlon])
    cy, cx = int(c.sizes[clat]), int(c.sizes[clon])
    f = (ny // cy if cy else 0) if factor is None else int(factor)
    if f < 1 or ny != f * cy or nx != f * cx:
        given = "" if factor is None else f" {factor}"
        raise EsmscaleError(
            f"the result grid {ny}x{nx} is not the coarse grid {cy}x{cx} refined by the "
            f"integer factor{given}; pass factor= (the downscaling factor) and crop the result "
            "to whole coarse cells (e.g. result.isel(lat=slice(0, f * ny_coarse)))."
        )
    rt = _time_dim(r, rlat, rlon, "result")
    ct = _time_dim(c, clat, clon, "coarse")
    r, c = _common_times(r, rt, c, ct, "result", "coarse")
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
        _spatial_whole(da, lat, lon),
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


# --------------------------------------------------------------------------------------------
# ensemble metrics
# --------------------------------------------------------------------------------------------


def fair_crps(result: xr.DataArray, obs: xr.DataArray) -> xr.DataArray:
    """Mean fair CRPS of the ensemble (``scores.probability.crps_for_ensemble``, "fair").

    ``CRPS = mean_i |x_i - y| - sum_ij |x_i - x_j| / (2 M (M - 1))`` per cell, averaged over
    the cells and times where the observation is finite. Needs a ``member`` dim with ``M >= 2``.

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(8, 8, 2).pr
    >>> ens = xr.concat([obs * 0, obs * 0 + 1, obs * 0 + 2], dim="member")
    >>> round(float(fair_crps(ens, obs * 0 + 2)), 6)
    0.333333
    """
    r, o = align_to_obs(result, obs)
    _require_members(r, "fair CRPS")
    if r.chunks is not None:
        r = r.chunk({MEMBER: -1})
    crps = crps_for_ensemble(r, o, MEMBER, method="fair", preserve_dims="all")
    return crps.where(o.notnull()).mean().rename("crps")


def mean_absolute_error(result: xr.DataArray, obs: xr.DataArray) -> xr.DataArray:
    """``mean |result - obs|`` over members, times and cells (finite pairs only).

    For a deterministic result (no ``member`` dim) this is the MAE, which equals the CRPS of
    a one-member ensemble, so it sits in the CRPS column of the report.

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(8, 8, 2).pr
    >>> round(float(mean_absolute_error(obs - 0.25, obs)), 6)
    0.25
    """
    r, o = align_to_obs(result, obs)
    return abs(r - o).mean().rename("mae")


def _ensemble_valid(r: xr.DataArray, o: xr.DataArray) -> xr.DataArray:
    return o.notnull() & r.notnull().all(MEMBER)


def spread_skill_ratio(
    result: xr.DataArray, obs: xr.DataArray, dim: str | Sequence[str] | None = None
) -> xr.DataArray:
    """Spread-skill ratio with the finite-ensemble correction.

    ``SSR = sqrt((M + 1) / M) * sqrt(mean s^2) / sqrt(mean (xbar - y)^2)`` with ``s^2`` the
    unbiased ensemble variance (``ddof=1``) and ``xbar`` the ensemble mean, averaged over
    ``dim`` (default: times and cells). A calibrated ensemble has ``SSR ~ 1``; below 1 it is
    under-dispersive.

    Examples
    --------
    >>> coords = {"lat": [0.0, 1.0, 2.0, 3.0], "lon": [0.0]}
    >>> ens = xr.DataArray([[[[0.0], [1.0], [0.0], [1.0]]], [[[2.0], [1.0], [2.0], [1.0]]]],
    ...                    dims=("member", "time", "lat", "lon"), coords=coords)
    >>> obs = xr.DataArray([[[0.0], [2.0], [0.0], [2.0]]], dims=("time", "lat", "lon"),
    ...                    coords=coords)
    >>> round(float(spread_skill_ratio(ens, obs)), 6)
    1.224745
    """
    r, o = align_to_obs(result, obs)
    m = _require_members(r, "spread-skill ratio")
    ok = _ensemble_valid(r, o)
    var = r.var(MEMBER, ddof=1).where(ok)
    sq = ((r.mean(MEMBER) - o) ** 2).where(ok)
    red = dim if dim is not None else list(o.dims)
    ssr = np.sqrt((m + 1.0) / m) * np.sqrt(var.mean(red)) / np.sqrt(sq.mean(red))
    return ssr.rename("spread_skill_ratio")


def _rank_shares(ens: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """``ens (..., M)``, ``obs (...)`` -> ``(..., M + 1)`` share of each rank per case.

    Ties share the case equally among the tied ranks; cases with a NaN count zero.
    """
    m = ens.shape[-1]
    ok = np.isfinite(obs) & np.isfinite(ens).all(axis=-1)
    o = obs[..., None]
    below = (ens < o).sum(axis=-1)
    ties = (ens == o).sum(axis=-1)
    r = np.arange(m + 1)
    inside = (r >= below[..., None]) & (r <= (below + ties)[..., None])
    share = inside / (ties[..., None] + 1.0)
    share[~ok] = 0.0
    return share


def rank_histogram(result: xr.DataArray, obs: xr.DataArray) -> xr.DataArray:
    """Rank histogram (Talagrand diagram): counts of the observation's rank in the ensemble.

    Rank ``r`` (1..M+1) is one plus the number of members below the observation; when the
    observation ties with members (e.g. dry cells in precipitation), the case is shared
    equally among the tied ranks, as in ``scores.probability.rank_histogram`` (whose
    normalised output this matches). Cases with a NaN are left out.

    Returns
    -------
    xarray.DataArray
        Dim ``rank`` (coordinate 1..M+1): (fractional) counts; divide by ``.sum()`` for
        frequencies.

    Examples
    --------
    >>> coords = {"lat": [0.0, 1.0, 2.0, 3.0], "lon": [0.0]}
    >>> ens = xr.DataArray([[[[1.0], [1.0], [1.0], [1.0]]], [[[2.0], [2.0], [2.0], [2.0]]]],
    ...                    dims=("member", "time", "lat", "lon"), coords=coords)
    >>> obs = xr.DataArray([[[0.0], [1.5], [3.0], [1.0]]], dims=("time", "lat", "lon"),
    ...                    coords=coords)
    >>> rank_histogram(ens, obs).values.tolist()
    [1.5, 1.5, 1.0]
    """
    r, o = align_to_obs(result, obs)
    m = _require_members(r, "rank histogram")
    shares = xr.apply_ufunc(
        _rank_shares,
        r.chunk({MEMBER: -1}) if r.chunks is not None else r,
        o,
        input_core_dims=[[MEMBER], []],
        output_core_dims=[["rank"]],
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"rank": m + 1}},
    )
    counts = shares.sum([d for d in shares.dims if d != "rank"])
    return counts.assign_coords(rank=np.arange(1, m + 2)).rename("rank_histogram")


def rank_flatness(hist: xr.DataArray) -> xr.DataArray:
    """Flatness of a rank histogram: ``delta = sum_k (s_k - N/(M+1))^2 / (N M / (M+1))``.

    ``s_k`` are the counts of :func:`rank_histogram`, ``N = sum_k s_k`` and ``M + 1`` the
    number of ranks (Candille & Talagrand 2005); ``delta = chi^2 / M``. It is about 1 for a
    calibrated ensemble with independent cases and grows with any departure from flatness
    (spatially correlated cells inflate it, so compare methods on the same data).

    Examples
    --------
    >>> float(rank_flatness(xr.DataArray([6.0, 0.0, 0.0], dims="rank")))
    6.0
    >>> float(rank_flatness(xr.DataArray([2.0, 2.0, 2.0], dims="rank")))
    0.0
    """
    if "rank" not in hist.dims:
        raise EsmscaleError("rank_flatness: the input has no 'rank' dim; use rank_histogram.")
    k = int(hist.sizes["rank"])
    n = hist.sum("rank")
    expected = n / k
    return (((hist - expected) ** 2).sum("rank") / (n * (k - 1) / k)).rename("rank_flatness")


# --------------------------------------------------------------------------------------------
# numpy helpers (array API, unchanged)
# --------------------------------------------------------------------------------------------


def crps_ensemble(ensemble: np.ndarray, truth: np.ndarray) -> float:
    """Mean fair CRPS of an ensemble ``(members, ...)`` against ``truth`` ``(...)``; NaN ignored.

    Examples
    --------
    >>> float(round(crps_ensemble(np.zeros((2, 3)), np.ones(3)), 6))
    1.0
    """
    ens = np.asarray(ensemble, dtype=np.float64)
    obs = np.asarray(truth, dtype=np.float64)
    if ens.ndim != obs.ndim + 1 or ens.shape[1:] != obs.shape:
        raise EsmscaleError(
            f"crps_ensemble: ensemble shape {ens.shape} must be (members, *{obs.shape})."
        )
    if ens.shape[0] < 2:
        raise EsmscaleError("crps_ensemble: the fair CRPS needs at least 2 members.")
    valid = np.isfinite(obs) & np.isfinite(ens).all(axis=0)
    e = xr.DataArray(ens[:, valid], dims=("member", "cell"))
    o = xr.DataArray(obs[valid], dims=("cell",))
    res = crps_for_ensemble(e, o, ensemble_member_dim="member", method="fair")
    return float(res)


def mae(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error over finite cells."""
    d = np.abs(np.asarray(pred, dtype=np.float64) - np.asarray(truth, dtype=np.float64))
    return float(np.nanmean(d))


def pooled_correlation(fine: np.ndarray, coarse: np.ndarray, factor: int) -> float:
    """Pearson correlation between ``fine`` average-pooled by ``factor`` and ``coarse``.

    ``fine`` is ``(..., H, W)``; ``coarse`` is broadcastable to the pooled shape. Cells that are
    NaN in either are left out.
    """
    pooled = coarsen_block(np.asarray(fine, dtype=np.float64), factor)
    ref = np.broadcast_to(np.asarray(coarse, dtype=np.float64), pooled.shape)
    ok = np.isfinite(pooled) & np.isfinite(ref)
    return float(np.corrcoef(pooled[ok], ref[ok])[0, 1])


def quantile_error(pred: np.ndarray, truth: np.ndarray, q: float) -> float:
    """Relative error of the ``q`` quantile: ``Q_pred / Q_truth - 1`` (finite cells)."""
    qp = np.nanquantile(np.asarray(pred, dtype=np.float64), q)
    qt = np.nanquantile(np.asarray(truth, dtype=np.float64), q)
    return float(qp / qt - 1.0)


def wet_day_frequency(x: np.ndarray, threshold: float = 1.0) -> float:
    """Fraction of finite cells with ``x >= threshold`` (mm day-1)."""
    a = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(a)
    return float((a[ok] >= threshold).mean())
