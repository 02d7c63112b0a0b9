"""Interpolate coarse lat/lon fields onto a fine target grid (lazy, chunk-independent).

The interpolation itself is done by `xarray-regrid <https://github.com/xarray-contrib/xarray-regrid>`_
(``.regrid.linear`` / ``.regrid.conservative``); this module prepares its input so that the result
is well defined for ESM data: longitudes are moved into the target's convention, global grids are
wrapped across the seam, the domain is padded by one edge cell so that the outer half cells are
filled, coverage is checked, latitude order and coordinate names follow the target, and cells
that are NaN in the target at every time step (e.g. sea in E-OBS) are masked.

Internally the spatial dims get private names, so xarray-regrid's own longitude shifting and
pole padding (triggered by the names ``lat``/``lon``) do not run on top of the preparation done
here.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import xarray as xr
import xarray_regrid  # noqa: F401 - registers the ``.regrid`` accessor
from dask.base import tokenize as dask_tokenize

from esmscale.errors import EsmscaleError
from esmscale.prepare.coords import find_latlon

__all__ = ["METHODS", "find_latlon", "refine_grid", "regrid", "target_mask", "to_regular"]

#: Interpolation methods accepted by :func:`regrid`.
METHODS = ("bilinear", "conservative")

# Private dim names used while calling xarray-regrid (see the module docstring).
_ILAT = "_esmscale_lat"
_ILON = "_esmscale_lon"
# Relative tolerance on grid spacing for "regular" grids (float32 coordinates, Gaussian grids).
_REGULAR_RTOL = 1e-3
# Passed as latitude_coord to xarray-regrid so that it applies no spherical correction.
_NO_LATITUDE = "_esmscale_no_latitude"
# Minimum interpolation weight on valid (non-NaN) input cells for a valid target cell.
_VALID_FRACTION = 1e-6


def _fmt(x: float) -> str:
    return f"{float(x):.6g}"


def _range(v: np.ndarray) -> str:
    return f"{_fmt(np.min(v))}..{_fmt(np.max(v))}"


def _latlon_as_dims(obj: Any, lat: str, lon: str) -> Any:
    """Make the 1-D ``lat``/``lon`` coordinates dimension coordinates of ``obj``."""
    for name in (lat, lon):
        dim = obj[name].dims[0]
        if dim != name:
            obj = obj.swap_dims({dim: name})
    return obj


def _coord_values(obj: xr.DataArray | xr.Dataset, name: str) -> np.ndarray:
    values = np.asarray(obj[name].values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise EsmscaleError(f"coordinate {name!r} has non-finite values; fix or drop them.")
    if np.unique(values).size != values.size:
        raise EsmscaleError(
            f"coordinate {name!r} has duplicate values; drop them first "
            f"(e.g. obj.drop_duplicates({name!r}))."
        )
    return values


def to_regular(da: xr.DataArray) -> xr.DataArray:
    """Put ``da`` in the canonical layout ``(..., lat, lon)`` with ascending coordinates.

    The latitude and longitude coordinates (found by :func:`find_latlon`) become dimensions
    named ``lat`` and ``lon``, both sorted ascending (descending latitude is common in files),
    and are moved to the last two positions. Longitude values are unchanged (a 0..360 grid stays
    0..360). Other dims, coordinates, attributes and the name are kept.

    Parameters
    ----------
    da : xarray.DataArray
        Field on a regular (rectilinear) lat/lon grid.

    Returns
    -------
    xarray.DataArray
        The same data, reordered and renamed; lazy if ``da`` is dask-backed.

    Raises
    ------
    EsmscaleError
        If lat/lon cannot be found (see :func:`find_latlon`), are not dimensions of ``da``,
        have duplicate or non-finite values, or the names ``lat``/``lon`` are taken.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.arange(6.0).reshape(2, 3), dims=("latitude", "longitude"),
    ...                   coords={"latitude": [50.0, 40.0], "longitude": [0.0, 1.0, 2.0]})
    >>> out = to_regular(da)
    >>> out.dims, out["lat"].values.tolist()
    (('lat', 'lon'), [40.0, 50.0])
    >>> out.values[0].tolist()
    [3.0, 4.0, 5.0]
    """
    lat, lon = find_latlon(da)
    da = _latlon_as_dims(da, lat, lon)
    for name, key in ((lat, "latitude"), (lon, "longitude")):
        if name not in da.dims:
            raise EsmscaleError(
                f"{key} coordinate {name!r} is not a dimension of {da.name!r} (dims "
                f"{tuple(map(str, da.dims))}); the data must be gridded along lat and lon."
            )
    rename: dict[Hashable, str] = {}
    for name, new in ((lat, "lat"), (lon, "lon")):
        if name != new:
            if new in da.coords or new in da.dims:
                raise EsmscaleError(
                    f"cannot rename {name!r} to {new!r}: {da.name!r} already has a "
                    f"{new!r} variable or dimension; drop or rename it first."
                )
            rename[name] = new
    if rename:
        da = da.rename(rename)
    for name in ("lat", "lon"):
        values = _coord_values(da, name)
        if values.size > 1 and not np.all(np.diff(values) > 0):
            da = da.isel({name: np.argsort(values, kind="stable")})
    other = [d for d in da.dims if d not in ("lat", "lon")]
    return da.transpose(*other, "lat", "lon")


def _regular_spacing(values: np.ndarray, name: str) -> float:
    """Signed spacing of regularly spaced ``values``; error if irregular."""
    if values.size < 2:
        raise EsmscaleError(
            f"coordinate {name!r} has {values.size} value(s); at least 2 are needed to "
            "infer the grid spacing."
        )
    d = (values[-1] - values[0]) / (values.size - 1)
    diffs = np.diff(values)
    if d == 0 or np.max(np.abs(diffs - d)) > _REGULAR_RTOL * abs(d):
        raise EsmscaleError(
            f"coordinate {name!r} is not regularly spaced (steps {_fmt(diffs.min())} to "
            f"{_fmt(diffs.max())}); refine_grid needs a regular grid. Regrid to a regular "
            "grid first or build the target grid explicitly."
        )
    return float(d)


def refine_grid(da: xr.DataArray | xr.Dataset, factor: int) -> xr.Dataset:
    """Target grid ``factor`` times finer than the lat/lon grid of ``da``, cell-centre consistent.

    Each coarse cell of centre ``c`` and width ``d`` is split into ``factor`` cells of width
    ``d / factor`` with centres ``c - d/2 + (i + 0.5) d / factor``, ``i = 0..factor-1``, so every
    fine cell lies inside exactly one coarse cell. The order of the input is kept (a descending
    latitude gives a descending fine latitude). Fine latitudes beyond +-90 (grids with points at
    the poles) are dropped.

    Parameters
    ----------
    da : xarray.DataArray or xarray.Dataset
        Object on a regular lat/lon grid.
    factor : int
        Refinement factor, >= 1.

    Returns
    -------
    xarray.Dataset
        Coordinates ``lat`` and ``lon`` only, with CF attributes, no data variables.

    Raises
    ------
    EsmscaleError
        If ``factor`` is not a positive integer or the grid is not regularly spaced.

    Examples
    --------
    >>> import xarray as xr
    >>> grid = refine_grid(xr.Dataset(coords={"lat": [0.5, 1.5], "lon": [10.0, 12.0]}), 2)
    >>> grid["lat"].values.tolist(), grid["lon"].values.tolist()
    ([0.25, 0.75, 1.25, 1.75], [9.5, 10.5, 11.5, 12.5])
    """
    if isinstance(factor, bool) or not isinstance(factor, int | np.integer) or factor < 1:
        raise EsmscaleError(f"factor={factor!r} must be a positive integer (e.g. 4).")
    lat, lon = find_latlon(da)
    offsets = (np.arange(int(factor)) + 0.5) / int(factor)
    fine = {}
    for name in (lat, lon):
        values = _coord_values(da, name)
        d = _regular_spacing(values, name)
        fine[name] = (values[:, None] - d / 2 + offsets[None, :] * d).ravel()
    lat_fine = fine[lat][np.abs(fine[lat]) <= 90.0]
    lat_attrs = {"standard_name": "latitude", "long_name": "latitude"}
    lon_attrs = {"standard_name": "longitude", "long_name": "longitude"}
    return xr.Dataset(
        coords={
            "lat": ("lat", lat_fine, {**lat_attrs, "units": "degrees_north", "axis": "Y"}),
            "lon": ("lon", fine[lon], {**lon_attrs, "units": "degrees_east", "axis": "X"}),
        }
    )


def _mask_source(target: xr.Dataset | xr.DataArray, lat: str, lon: str) -> xr.DataArray | None:
    candidates = [target] if isinstance(target, xr.DataArray) else list(target.data_vars.values())
    for var in candidates:
        if set(var[lat].dims) <= set(var.dims) and set(var[lon].dims) <= set(var.dims):
            return var
    return None


def target_mask(target: xr.Dataset | xr.DataArray) -> xr.DataArray | None:
    """Valid cells of the target grid: False where its data is NaN at every time step.

    Uses ``target`` itself if it is a DataArray, else its first data variable that has the
    lat/lon dims (e.g. E-OBS precipitation, NaN over sea). The mask is computed eagerly (this
    reads that variable once).

    Parameters
    ----------
    target : xarray.Dataset or xarray.DataArray
        Target grid, possibly with data.

    Returns
    -------
    xarray.DataArray or None
        Boolean ``(lat, lon)`` array (target names and order; True = valid), or None when the
        target has no gridded data variable or no cell is NaN throughout.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> obs = xr.DataArray([[[1.0, np.nan]], [[2.0, np.nan]]], dims=("time", "lat", "lon"),
    ...                    coords={"lat": [40.0], "lon": [0.0, 0.5]})
    >>> target_mask(obs).values.tolist()
    [[True, False]]
    >>> target_mask(obs.to_dataset(name="pr")[["lat", "lon"]]) is None
    True
    """
    lat, lon = find_latlon(target)
    var = _mask_source(target, lat, lon)
    if var is None:
        return None
    var = _latlon_as_dims(var, lat, lon)
    other = [d for d in var.dims if d not in (lat, lon)]
    valid = var.notnull()
    if other:
        valid = valid.any(dim=other)
    valid = valid.transpose(lat, lon).compute()
    if bool(valid.all()):
        return None
    return valid.rename("mask")


def _to_window(lon: np.ndarray, start: float) -> np.ndarray:
    """Shift longitudes by multiples of 360 into ``[start, start + 360)`` (exact if inside)."""
    shift = 360.0 * np.floor((lon - start) / 360.0)
    return lon - shift


def _band_area(lat: np.ndarray) -> np.ndarray:
    """Relative area of latitude bands centred on ascending ``lat`` (bounds at midpoints)."""
    mid = (lat[:-1] + lat[1:]) / 2
    lo = np.concatenate([[2 * lat[0] - mid[0]], mid])
    hi = np.concatenate([mid, [2 * lat[-1] - mid[-1]]])
    rad = np.radians(np.clip(np.stack([lo, hi]), -90.0, 90.0))
    return np.asarray(np.sin(rad[1]) - np.sin(rad[0]))


def _check_covered(key: str, target: np.ndarray, source: np.ndarray, lo: float, hi: float) -> None:
    tol = 1e-6 * max(1.0, float(np.max(np.abs(source))))
    if np.min(target) < lo - tol or np.max(target) > hi + tol:
        raise EsmscaleError(
            f"target {key} {_range(target)} is not covered by input {key} {_range(source)} "
            f"(interpolation reaches half a cell beyond the outermost input centres: "
            f"{_fmt(lo)}..{_fmt(hi)}); crop the target to the input domain or give input on "
            "a larger domain."
        )


def _pad(
    da: xr.DataArray, dim: str, values: np.ndarray, before: float | None, after: float | None
) -> tuple[xr.DataArray, np.ndarray]:
    """Pad one cell on each side of ``dim`` with edge values at coordinates before/after."""
    if before is not None:
        da = xr.concat([da.isel({dim: [0]}), da], dim=dim, coords="minimal", join="exact")
        values = np.concatenate([[before], values])
    if after is not None:
        da = xr.concat([da, da.isel({dim: [-1]})], dim=dim, coords="minimal", join="exact")
        values = np.concatenate([values, [after]])
    return da, values


def _prepare_source(src: xr.DataArray, tlat: np.ndarray, tlon: np.ndarray) -> xr.DataArray:
    """Longitude window, wrap/edge padding and coverage checks on a :func:`to_regular` array."""
    slat = np.asarray(src["lat"].values, dtype=np.float64)
    slon = np.asarray(src["lon"].values, dtype=np.float64)
    for name, v in (("latitude", slat), ("longitude", slon)):
        if v.size < 2:
            raise EsmscaleError(
                f"input {src.name!r} has {v.size} {name} point(s); interpolation needs at "
                "least 2 along each of lat and lon."
            )
    if np.ptp(tlon) >= 360.0:
        raise EsmscaleError(
            f"target longitude {_range(tlon)} spans 360 degrees or more; give each longitude once."
        )

    # Longitudes: move the source into the 360-degree window centred on the target.
    start = (float(np.min(tlon)) + float(np.max(tlon))) / 2 - 180.0
    lon_w = _to_window(slon, start)
    order = np.argsort(lon_w, kind="stable")
    lon_w = lon_w[order]
    keep = np.concatenate([[True], np.diff(lon_w) > 1e-9])  # 0 and 360 both present
    src = src.isel(lon=order[keep]).assign_coords(lon=("lon", lon_w[keep], src["lon"].attrs))
    lon_w = lon_w[keep]
    steps = np.diff(lon_w)
    step = float(np.median(steps))
    is_global = lon_w[-1] - lon_w[0] + step >= 360.0 - 0.5 * step

    # Latitude: one edge cell on each side (clipped at the poles).
    d_lo, d_hi = slat[1] - slat[0], slat[-1] - slat[-2]
    _check_covered("latitude", tlat, slat, slat[0] - d_lo / 2, slat[-1] + d_hi / 2)
    src, slat = _pad(
        src,
        "lat",
        slat,
        max(slat[0] - d_lo, -90.0) if slat[0] > -90.0 else None,
        min(slat[-1] + d_hi, 90.0) if slat[-1] < 90.0 else None,
    )

    if is_global:
        # Wrapped columns on both sides: the seam interpolates like any other point.
        src = xr.concat(
            [src.isel(lon=[-1]), src, src.isel(lon=[0])],
            dim="lon",
            coords="minimal",
            join="exact",
        )
        lon_w = np.concatenate([[lon_w[-1] - 360.0], lon_w, [lon_w[0] + 360.0]])
    else:
        d_lo, d_hi = lon_w[1] - lon_w[0], lon_w[-1] - lon_w[-2]
        _check_covered("longitude", tlon, lon_w, lon_w[0] - d_lo / 2, lon_w[-1] + d_hi / 2)
        gaps = np.flatnonzero(steps > 2.0 * step)
        for i in gaps:
            inside = (tlon > lon_w[i]) & (tlon < lon_w[i + 1])
            if inside.any():
                raise EsmscaleError(
                    f"target longitudes {_range(tlon[inside])} fall in a gap of the input "
                    f"longitudes ({_fmt(lon_w[i])}..{_fmt(lon_w[i + 1])}, after moving them "
                    f"to the target's window {_fmt(start)}..{_fmt(start + 360)}); give input "
                    "that covers the target contiguously."
                )
        src, lon_w = _pad(src, "lon", lon_w, lon_w[0] - d_lo, lon_w[-1] + d_hi)
    return src.assign_coords(lat=("lat", slat), lon=("lon", lon_w))


def regrid(
    da: xr.DataArray,
    target: xr.Dataset | xr.DataArray,
    *,
    method: str = "bilinear",
    mask: bool = True,
) -> xr.DataArray:
    """Interpolate ``da`` onto the lat/lon grid of ``target`` with xarray-regrid.

    ``"bilinear"`` interpolates between input cell centres; ``"conservative"`` averages the
    input cells overlapping each target cell, weighted by overlap fraction times the input
    cell's area on the sphere. Before interpolating, the input's longitudes are moved into the
    target's convention (0..360 or -180..180, or any window around the target), a global input
    is wrapped with one column on each side of the seam, and the input is padded with one cell
    of edge values at its other borders, so target points up to half an input cell beyond the
    outermost input centres get the nearest value instead of NaN.

    NaN in the input (e.g. masked sea in an ESM) gets zero weight and does not spread: a target
    value is the weighted mean of the valid input cells among its interpolation neighbours
    (away from NaN, the plain bilinear or conservative value), and NaN only where all of them
    are NaN or have zero weight (bilinear: e.g. a target point exactly on a NaN centre).

    The result is lazy for dask-backed input (the spatial dims are first merged into one chunk;
    time chunks are kept) and does not depend on the chunking: each time step is interpolated
    independently with the same arithmetic.

    Parameters
    ----------
    da : xarray.DataArray
        Field with dims ``(..., lat, lon)`` on a regular lat/lon grid (any coordinate names
        recognised by :func:`find_latlon`, either latitude order).
    target : xarray.Dataset or xarray.DataArray
        Target grid; only its lat/lon coordinates are used, plus, with ``mask=True``, its
        data (see :func:`target_mask`).
    method : {"bilinear", "conservative"}
        Interpolation method.
    mask : bool
        Set to NaN the target cells that are NaN in the target's data at every time step.

    Returns
    -------
    xarray.DataArray
        ``da`` on the target grid: target lat/lon names, values, order and attributes; the
        input's other dims, coordinates, name and attributes; float32 if ``da`` is float32.

    Raises
    ------
    EsmscaleError
        For an unknown method, missing or curvilinear coordinates, or a target not covered by
        the input.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(
    ...     np.arange(12.0).reshape(1, 3, 4), dims=("time", "lat", "lon"), name="tas",
    ...     coords={"lat": [40.0, 41.0, 42.0], "lon": [350.0, 351.0, 352.0, 353.0]},
    ...     attrs={"units": "K"})
    >>> target = xr.Dataset(coords={"lat": [41.5, 40.5], "lon": [-9.5, -8.5]})
    >>> out = regrid(da, target)
    >>> out.dims, out.attrs["units"], out["lat"].values.tolist()
    (('time', 'lat', 'lon'), 'K', [41.5, 40.5])
    >>> out.values[0].tolist()
    [[6.5, 7.5], [2.5, 3.5]]
    """
    if method not in METHODS:
        raise EsmscaleError(f"method={method!r} is not supported; use one of {list(METHODS)}.")
    if not isinstance(da, xr.DataArray):
        raise EsmscaleError(
            f"regrid needs an xarray.DataArray, got {type(da).__name__}; select a variable "
            "first (e.g. ds['pr'])."
        )
    tlat_name, tlon_name = find_latlon(target)
    tlat = _coord_values(target, tlat_name)
    tlon = _coord_values(target, tlon_name)
    if da.chunks is not None and _blockwise_ok(da, target, (tlat_name, tlon_name)):
        keep = target_mask(target) if mask else None
        return _regrid_blocks(da, _grid_only(target, (tlat_name, tlon_name)), method, keep)
    src, in_chunks = _regrid_source(da, tlat, tlon)
    out = _interpolate(src, tlat, tlon, method)
    if np.issubdtype(da.dtype, np.floating) and out.dtype != da.dtype:
        out = out.astype(da.dtype)
    out = _target_layout(out, da, target, (tlat_name, tlon_name), (tlat, tlon))
    if mask:
        keep = target_mask(target)
        if keep is not None:
            out = out.where(xr.DataArray(keep.values, dims=(tlat_name, tlon_name)))
    if out.chunks is not None:
        out = out.chunk(
            {
                **{k: v for k, v in in_chunks.items() if k in out.dims},
                tlat_name: -1,
                tlon_name: -1,
            }
        )
    out.attrs = dict(da.attrs)
    out.encoding = {}
    return out.rename(da.name)


def _grid_only(target: xr.Dataset | xr.DataArray, names: tuple[str, str]) -> xr.Dataset:
    """The target's lat/lon coordinates (with their attributes), without its data."""
    return xr.Dataset(coords={n: target[n].variable for n in names})


def _blockwise_ok(da: xr.DataArray, target: Any, names: tuple[str, str]) -> bool:
    """True if ``da``'s lat/lon are its dims and the target's are 1-D dim coordinates."""
    lat, lon = find_latlon(da)
    return (
        lat in da.dims
        and lon in da.dims
        and all(target[n].dims == (n,) for n in names)
        and not any(set(v.dims) & {lat, lon} for k, v in da.coords.items() if k not in (lat, lon))
    )


def _regrid_blocks(
    da: xr.DataArray, grid: xr.Dataset, method: str, keep: xr.DataArray | None
) -> xr.DataArray:
    """Lazy :func:`regrid` of dask-backed ``da``: one task per chunk of its other dims.

    Each chunk (all of lat/lon, one chunk of every other dim) is regridded eagerly by
    :func:`regrid` itself, so the result is bitwise that of the numpy path; the many small
    tasks of the same steps done with dask arrays (padding, filling, two interpolations,
    masking) cost more in scheduling than in work on a distributed cluster.
    """
    lat, lon = find_latlon(da)
    spatial = {lat: da[lat].variable, lon: da[lon].variable}
    src = da.chunk({lat: -1, lon: -1})
    names = tuple(map(str, src.dims))
    keep_values = None if keep is None else keep.values
    keep_dims = None if keep is None else keep.dims
    name, attrs = da.name, dict(da.attrs)  # not ``da``: each task would carry its graph

    def one(block: np.ndarray) -> np.ndarray:
        part = xr.DataArray(block, dims=names, coords=spatial, name=name, attrs=attrs)
        out = regrid(part, grid, method=method, mask=False)
        if keep_values is not None:
            out = out.where(xr.DataArray(keep_values, dims=keep_dims))
        return np.asarray(out.values)

    probe = xr.DataArray(
        np.zeros([1 if d not in spatial else da.sizes[d] for d in names], dtype=da.dtype),
        dims=names,
        coords=spatial,
        name=da.name,
    )
    tmpl = regrid(probe, grid, method=method, mask=False)
    tnames = dict(zip(names, map(str, tmpl.dims), strict=True))
    new_chunks = tuple(
        (tmpl.sizes[tnames[d]],) if d in spatial else c
        for d, c in zip(names, src.data.chunks, strict=True)
    )
    data = src.data.map_blocks(
        one,
        chunks=new_chunks,
        dtype=tmpl.dtype,
        meta=np.empty((0,) * len(names), dtype=tmpl.dtype),
        name="esmscale-regrid-" + dask_tokenize(src.data.name, grid, method, keep_values),
    )
    coords = {k: v.variable for k, v in da.coords.items() if not set(v.dims) & set(spatial)}
    coords.update({k: tmpl[k].variable for k in tnames.values() if k in tmpl.coords})
    out = xr.DataArray(data, dims=tmpl.dims, coords=coords, name=da.name, attrs=dict(da.attrs))
    out.encoding = {}
    return out


def _regrid_source(
    da: xr.DataArray, tlat: np.ndarray, tlon: np.ndarray
) -> tuple[xr.DataArray, Any]:
    """The input ready for xarray-regrid (private dim names, float64) and its chunk sizes."""
    src = to_regular(da)
    # Auxiliary coordinates on the grid (other than lat/lon) cannot be carried over.
    aux = [
        k for k, v in src.coords.items() if k not in ("lat", "lon") and {"lat", "lon"} & set(v.dims)
    ]
    src = src.drop_vars(aux)
    if src.chunks is not None:
        src = src.chunk({"lat": -1, "lon": -1})
    in_chunks = src.chunksizes
    src = _prepare_source(src, tlat, tlon)
    if src.chunks is not None:
        src = src.chunk({"lat": -1, "lon": -1})
    # Work in float64 so that numpy and dask input give identical results (interp returns
    # float64 in one case and the input dtype in the other); cast back at the end.
    return src.rename({"lat": _ILAT, "lon": _ILON}).astype(np.float64), in_chunks


def _interpolate(
    src: xr.DataArray, tlat: np.ndarray, tlon: np.ndarray, method: str
) -> xr.DataArray:
    """NaN-aware interpolation of ``src`` onto ``tlat x tlon`` (in the target's order)."""
    lat_order = np.argsort(tlat, kind="stable")
    lon_order = np.argsort(tlon, kind="stable")
    grid = xr.Dataset(coords={_ILAT: tlat[lat_order], _ILON: tlon[lon_order]})
    # NaN-aware weights (like xarray-regrid's skipna=True for conservative): interpolate the
    # zero-filled data and the valid fraction, divide. Away from NaN the fraction is 1 (exactly
    # for bilinear) and the result is the plain interpolated value; near NaN it is the mean
    # of the valid input cells. Dividing here also avoids a 0/0 warning at compute time.
    valid = src.notnull().astype(np.float64)
    done: xr.Dataset
    if method == "bilinear":
        parts = xr.Dataset({"num": src.fillna(0.0), "den": valid})
        done = parts.regrid.linear(grid, time_dim=None)
    else:
        # Spherical weighting done here, not by xarray-regrid: its correction gives zero
        # weight to a cell centred on a pole (e.g. the polar padding row), which leaves NaN
        # near the poles. Each input cell is weighted by its band area, clipped at +-90.
        area = xr.DataArray(_band_area(src[_ILAT].values), dims=_ILAT)
        parts = xr.Dataset({"num": src.fillna(0.0) * area, "den": valid * area})
        done = parts.regrid.conservative(
            grid,
            latitude_coord=_NO_LATITUDE,
            time_dim=None,
            skipna=False,
            output_chunks={_ILAT: tlat.size, _ILON: tlon.size},
        )
    out = done["num"] / done["den"].where(done["den"] >= _VALID_FRACTION)
    # Back to the target's order.
    if np.any(np.diff(lat_order) != 1):
        out = out.isel({_ILAT: np.argsort(lat_order)})
    if np.any(np.diff(lon_order) != 1):
        out = out.isel({_ILON: np.argsort(lon_order)})
    return out


def _target_layout(
    out: xr.DataArray,
    da: xr.DataArray,
    target: xr.Dataset | xr.DataArray,
    names: tuple[str, str],
    values: tuple[np.ndarray, np.ndarray],
) -> xr.DataArray:
    """The target's lat/lon names, values and attributes, in the input's dim order."""
    tlat_name, tlon_name = names
    out = out.drop_vars([_ILAT, _ILON]).rename({_ILAT: tlat_name, _ILON: tlon_name})
    out = out.assign_coords(
        {
            tlat_name: (tlat_name, values[0], dict(target[tlat_name].attrs)),
            tlon_name: (tlon_name, values[1], dict(target[tlon_name].attrs)),
        }
    )
    lat_orig, lon_orig = find_latlon(da)
    new_name = {lat_orig: tlat_name, lon_orig: tlon_name}
    dims = [new_name.get(str(d), d) for d in _latlon_as_dims(da, lat_orig, lon_orig).dims]
    return out.transpose(*dims)
