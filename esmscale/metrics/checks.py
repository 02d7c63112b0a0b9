"""Input checks shared by the xarray metrics (and the evaluation report): grids, calendars,
overlapping times, units, members.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from esmscale.errors import EsmscaleError

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


def as_dataarray(obj: Any, what: str) -> xr.DataArray:
    """``obj`` as a DataArray (the one gridded variable of a Dataset); an error otherwise."""
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


#: Units of a projected (x, y) axis and their length in kilometres.
_KM = {"m": 1e-3, "meter": 1e-3, "meters": 1e-3, "metre": 1e-3, "metres": 1e-3, "km": 1.0}
_NATIVE_Y = ("projection_y_coordinate", "grid_latitude")
_NATIVE_X = ("projection_x_coordinate", "grid_longitude")


def native_dims(da: xr.DataArray | xr.Dataset) -> tuple[str, str] | None:
    """The native ``(y, x)`` dims of a projected or rotated-pole grid, else None.

    An axis is recognised by its CF ``standard_name`` (``projection_y_coordinate``,
    ``grid_latitude``, ...) or, for a grid that also carries 2-D latitude/longitude (as
    :func:`esmscale.downscale` writes them), as one of the two 1-D dims those lie along.

    Examples
    --------
    >>> da = xr.DataArray(np.zeros((2, 3)), dims=("northing", "easting"),
    ...                   coords={"northing": ("northing", [5e3, 0.0], {"units": "m"}),
    ...                           "easting": ("easting", [0.0, 5e3, 1e4], {"units": "m"}),
    ...                           "lat": (("northing", "easting"), np.zeros((2, 3)))})
    >>> native_dims(da)
    ('northing', 'easting')
    """
    found: dict[str, str] = {}
    for name in da.dims:
        c = da.coords.get(name)
        std = c.attrs.get("standard_name") if c is not None else None
        if std in _NATIVE_Y:
            found.setdefault("y", str(name))
        elif std in _NATIVE_X:
            found.setdefault("x", str(name))
    if len(found) == 2:
        return found["y"], found["x"]
    for lat in ("lat", "latitude"):
        if lat in da.coords and da[lat].ndim == 2:
            y, x = (str(d) for d in da[lat].dims)
            return y, x
    dims = [str(d) for d in da.dims if da.coords.get(d) is not None]
    units = [str(da[d].attrs.get("units", "")) for d in dims]
    proj = [d for d, u in zip(dims, units, strict=True) if u in _KM]
    return (proj[-2], proj[-1]) if len(proj) >= 2 else None


def axis_scale(da: xr.DataArray | xr.Dataset, name: str) -> float:
    """Factor that turns coordinate ``name``'s values into degrees or kilometres."""
    return _KM.get(str(da[name].attrs.get("units", "")), 1.0)


def latlon_dims(da: xr.DataArray, what: str) -> tuple[str, str]:
    """Names of the grid's ``(y, x)`` dims of ``da`` (an error naming ``what`` if none).

    1-D latitude and longitude dims for a rectilinear grid; the native ``(y, x)`` dims of a
    projected or rotated-pole grid (:func:`native_dims`), so that every metric works in the
    grid's own cells.
    """
    from esmscale.prepare.coords import find_latlon

    try:
        lat, lon = find_latlon(da)
    except EsmscaleError as err:
        native = native_dims(da)
        if native is not None:
            return native
        raise EsmscaleError(f"{what}: {err}") from None
    if da[lat].dims != (lat,) or da[lon].dims != (lon,):
        native = native_dims(da)
        if native is not None:
            return native
    for name in (lat, lon):
        if da[name].dims != (name,):
            raise EsmscaleError(
                f"{what}: coordinate {name!r} lies along {da[name].dims}; metrics need 1-D "
                f"latitude and longitude dimension coordinates (swap_dims or rename first)."
            )
    return lat, lon


def time_dim(da: xr.DataArray, lat: str, lon: str, what: str) -> str | None:
    """The one non-grid, non-member dim of ``da`` (None for a single field)."""
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


def time_index(da: xr.DataArray, t: str) -> Any:
    """The time index of ``da``, as pandas datetimes where the calendar allows."""
    idx = da.indexes[t]
    if isinstance(idx, xr.CFTimeIndex) and calendar_of(da[t]) == "standard":
        return idx.to_datetimeindex(time_unit="ns")
    return idx


def _fmt_times(idx: Any) -> str:
    return f"{idx[0]!s}..{idx[-1]!s} ({len(idx)} steps)" if len(idx) else "(empty)"


def common_times(
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
    ia, ib = time_index(a, ta), time_index(b, ta)
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
    from esmscale.prepare.units import linear_factors

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
    r = as_dataarray(result, what)
    o = as_dataarray(obs, "obs")
    olat, olon = latlon_dims(o, "obs")
    rlat, rlon = latlon_dims(r, what)
    if MEMBER in o.dims:
        raise EsmscaleError(
            f"obs has a {MEMBER!r} dimension {tuple(map(str, o.dims))}; observations must be "
            f"one field per time (select one: obs.isel({MEMBER}=0))."
        )
    ot = time_dim(o, olat, olon, "obs")
    rt = time_dim(r, rlat, rlon, what)
    same = _same_axis(r[rlat].values, o[olat].values, periodic=False) and _same_axis(
        r[rlon].values, o[olon].values, periodic=True
    )
    if not same:
        raise EsmscaleError(
            f"{what} and obs are on different grids: {what} {_describe_grid(r, rlat, rlon)}, "
            f"obs {_describe_grid(o, olat, olon)}.",
            python="Regrid the result onto the observations first "
            "(esmscale.prepare.regrid(result, obs)), or pass observations on the grid you "
            "downscaled to (downscale(..., target=obs)); a reversed latitude axis is fixed with "
            "da.sortby('lat').",
            cli="Downscale onto the observations' grid (esmscale downscale ... --target OBS) or "
            "give observations on the grid you downscaled to; a reversed latitude axis must be "
            "sorted (increasing latitude) in the file.",
        )
    r = r.rename({k: v for k, v in ((rlat, olat), (rlon, olon)) if k != v})
    r = r.assign_coords({olat: o[olat], olon: o[olon]})
    o, r = common_times(o, ot, r, rt, "obs", what)
    dims = [d for d in (MEMBER, ot, olat, olon) if d is not None and d in r.dims]
    r = r.transpose(*dims)
    o = o.transpose(*[d for d in (ot, olat, olon) if d is not None])
    r = _convert_units(r, o, what)
    return r, o


def require_members(result: xr.DataArray, metric: str, minimum: int = 2) -> int:
    """Number of members of ``result``; an error naming ``metric`` if it has too few."""
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


def spatial_whole(da: xr.DataArray, lat: str, lon: str) -> xr.DataArray:
    """One chunk along lat/lon (a no-op for numpy-backed data)."""
    return da.chunk({lat: -1, lon: -1}) if da.chunks is not None else da
