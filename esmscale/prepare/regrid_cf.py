"""Regrid between any CF grids with sparse weights (scipy.sparse), transforms through pyproj.

Used when the input or the target is not a plain 1-D lat/lon grid (rotated pole, projected);
plain lat/lon to lat/lon stays with xarray-regrid (:func:`esmscale.prepare.regrid.regrid`).

The target's cell centres (bilinear) or cell corners (conservative) are transformed into the
input's native CRS, where the input's cells are an axis-aligned rectilinear mesh:

* ``"bilinear"``: each target centre gets the four input centres around it, with the usual
  bilinear weights in the input's native coordinates.
* ``"conservative"``: each target cell, a quadrilateral in the input's native coordinates,
  gets every input cell it overlaps, weighted by the overlap area (polygon intersection by
  `shapely <https://shapely.readthedocs.io>`_) times the input cell's area factor (``cos`` of
  its latitude for lat/lon and rotated grids, 1 for projected grids).

As in :func:`~esmscale.prepare.regrid.regrid`, target points up to half an input cell beyond the
outermost input centres take the edge value, NaN input cells get zero weight (the result is the
mean of the valid neighbours), and target cells that are NaN in the target's data at every time
step stay NaN. The output keeps the target's native ``(y, x)`` coordinates, its grid-mapping
variable (a scalar coordinate named by the ``grid_mapping`` attribute) and 2-D ``lat``/``lon``
auxiliary coordinates, as CF requires.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import shapely
import xarray as xr

from esmscale.errors import EsmscaleError
from esmscale.prepare.grids import Grid, describe_grid

__all__ = ["bilinear_weights", "conservative_weights", "regrid_cf", "target_valid"]

_VALID_FRACTION = 1e-6


def _edges(c: np.ndarray) -> np.ndarray:
    """Cell edges of centres ``c`` (midpoints, the ends extrapolated by half a step)."""
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])


def _is_global(src: Grid) -> bool:
    if src.kind in {"latlon", "rotated"}:
        e = _edges(np.sort(src.x))
        return bool(e[-1] - e[0] >= 360.0 - 1e-6)
    return False


def _points_in_source(src: Grid, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, ...]:
    """Target lon/lat points in the source's native coordinates (longitudes windowed)."""
    x, y = src.to_native(lon, lat)
    if src.kind in ("latlon", "rotated"):
        centre = 0.5 * (float(np.min(src.x)) + float(np.max(src.x)))
        x = x - 360.0 * np.floor((x - (centre - 180.0)) / 360.0)
    return x, y


def _axis_weights(
    axis: np.ndarray, p: np.ndarray, periodic: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lower index, upper index, upper weight and coverage of points ``p`` on ``axis``."""
    order = np.argsort(axis, kind="stable")
    a = axis[order]
    n = a.size
    if periodic:
        ext = np.concatenate([[a[-1] - 360.0], a, [a[0] + 360.0]])
        idx_ext = np.concatenate([[n - 1], np.arange(n), [0]])
        p = np.where(p < ext[0], p + 360.0, np.where(p > ext[-1], p - 360.0, p))
        j = np.clip(np.searchsorted(ext, p, side="right") - 1, 0, ext.size - 2)
        w = (p - ext[j]) / (ext[j + 1] - ext[j])
        return order[idx_ext[j]], order[idx_ext[j + 1]], np.clip(w, 0, 1), np.ones(p.shape, bool)
    half = 0.5 * (a[1] - a[0]) if n > 1 else 0.5, 0.5 * (a[-1] - a[-2]) if n > 1 else 0.5
    covered = (p >= a[0] - half[0] * (1 + 1e-9)) & (p <= a[-1] + half[1] * (1 + 1e-9))
    if n == 1:
        z = np.zeros(p.shape, dtype=np.int64)
        return order[z], order[z], np.zeros(p.shape), covered
    pc = np.clip(p, a[0], a[-1])
    j = np.clip(np.searchsorted(a, pc, side="right") - 1, 0, n - 2)
    w = (pc - a[j]) / (a[j + 1] - a[j])
    return order[j], order[j + 1], w, covered


def _coverage_error(
    src: Grid, tgt: Grid, covered: np.ndarray, valid: np.ndarray | None, name: Any
) -> None:
    """Raise if some (valid) target cells lie outside the input; say how many and where."""
    considered = valid if valid is not None else np.ones(covered.shape, bool)
    out = considered & ~covered
    if not out.any():
        return
    lon, lat = tgt.lonlat()
    frac = 1.0 - out.sum() / max(int(considered.sum()), 1)
    slon, slat = src.lonlat()
    raise EsmscaleError(
        f"the input {name!r} covers only {100 * frac:.1f} % of the target's "
        f"{'valid ' if valid is not None else ''}cells: {int(out.sum())} target cells lie "
        f"outside it, at lat {lat[out].min():.2f}..{lat[out].max():.2f}, lon "
        f"{lon[out].min():.2f}..{lon[out].max():.2f} (the input spans lat "
        f"{slat.min():.2f}..{slat.max():.2f}, lon {slon.min():.2f}..{slon.max():.2f}). Give "
        "an input that covers the target, or cut the target to the input's area."
    )


def bilinear_weights(src: Grid, tgt: Grid) -> tuple[sp.csr_matrix, np.ndarray]:
    """Sparse ``(n_target, n_source)`` bilinear weights and the target cells covered.

    Examples
    --------
    >>> import xarray as xr
    >>> s = describe_grid(xr.Dataset(coords={"lat": [0.0, 1.0], "lon": [0.0, 1.0]}))
    >>> t = describe_grid(xr.Dataset(coords={"lat": [0.5], "lon": [0.25]}))
    >>> w, ok = bilinear_weights(s, t)
    >>> w.toarray().round(3).tolist(), ok.tolist()
    ([[0.375, 0.125, 0.375, 0.125]], [[True]])
    """
    lon, lat = tgt.lonlat()
    x, y = _points_in_source(src, lon.ravel(), lat.ravel())
    i0, i1, wy, cy = _axis_weights(src.y, y, periodic=False)
    j0, j1, wx, cx = _axis_weights(src.x, x, periodic=_is_global(src))
    nx = src.x.size
    rows = np.repeat(np.arange(x.size), 4)
    cols = np.stack([i0 * nx + j0, i0 * nx + j1, i1 * nx + j0, i1 * nx + j1], axis=1).ravel()
    vals = np.stack([(1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx], axis=1).ravel()
    w = sp.csr_matrix((vals, (rows, cols)), shape=(x.size, src.y.size * nx))
    w.sum_duplicates()
    return w, (cx & cy).reshape(tgt.shape)


def conservative_weights(src: Grid, tgt: Grid) -> tuple[sp.csr_matrix, np.ndarray]:
    """Sparse area-overlap weights ``(n_target, n_source)`` and the target cells covered.

    Each target cell is the quadrilateral of its four corners transformed into the input's
    native CRS; overlaps with the input's rectangular cells are computed by shapely. Rows are
    not normalised (the caller divides by the weighted count of valid input cells).

    Examples
    --------
    >>> import xarray as xr
    >>> s = describe_grid(xr.Dataset(coords={"lat": [0.5, 1.5], "lon": [0.5]}))
    >>> t = describe_grid(xr.Dataset(coords={"lat": [1.0], "lon": [0.5]}))
    >>> w, ok = conservative_weights(s, t)
    >>> (w.toarray() / w.sum()).round(4).tolist()
    [[0.5001, 0.4999]]
    """
    ey, ex = _edges(tgt.y), _edges(tgt.x)
    cxx, cyy = np.meshgrid(ex, ey)
    clon, clat = tgt.from_native(cxx, cyy)
    px, py = _points_in_source(src, clon, clat)
    quads = np.stack(
        [
            np.stack([px[:-1, :-1], py[:-1, :-1]], -1),
            np.stack([px[:-1, 1:], py[:-1, 1:]], -1),
            np.stack([px[1:, 1:], py[1:, 1:]], -1),
            np.stack([px[1:, :-1], py[1:, :-1]], -1),
        ],
        axis=2,
    ).reshape(-1, 4, 2)
    if src.kind in ("latlon", "rotated"):
        # A cell split by the window's seam: move its corners next to its first corner.
        d = quads[:, :, 0] - quads[:, :1, 0]
        quads[:, :, 0] -= 360.0 * np.round(d / 360.0)
    tpolys = shapely.polygons(quads)
    tpolys = shapely.make_valid(tpolys)
    sy, sx = _edges(np.sort(src.y)), _edges(np.sort(src.x))
    oy, ox = np.argsort(src.y, kind="stable"), np.argsort(src.x, kind="stable")
    shifts = (-360.0, 0.0, 360.0) if _is_global(src) else (0.0,)
    boxes, ids = [], []
    jj, ii = np.meshgrid(np.arange(sx.size - 1), np.arange(sy.size - 1))
    for s in shifts:
        boxes.append(shapely.box(sx[jj] + s, sy[ii], sx[jj + 1] + s, sy[ii + 1]).ravel())
        ids.append((oy[ii] * src.x.size + ox[jj]).ravel())
    sboxes = np.concatenate(boxes)
    sids = np.concatenate(ids)
    tree = shapely.STRtree(sboxes)
    ti, si = tree.query(tpolys, predicate="intersects")
    area = shapely.area(shapely.intersection(tpolys[ti], sboxes[si]))
    if src.kind in ("latlon", "rotated"):
        yc = np.sort(src.y)[ii.ravel()]
        factor = np.cos(np.deg2rad(np.clip(np.tile(yc, len(shifts)), -90, 90)))
        area = area * np.maximum(factor[si], 0.0)
    keep = area > 0
    w = sp.csr_matrix(
        (area[keep], (ti[keep], sids[si[keep]])), shape=(tpolys.size, src.y.size * src.x.size)
    )
    w.sum_duplicates()
    # Covered: the cell centre lies within half an input cell of the input's centres.
    lon, lat = tgt.lonlat()
    x, y = _points_in_source(src, lon.ravel(), lat.ravel())
    cy = _axis_weights(src.y, y, periodic=False)[3]
    cx = _axis_weights(src.x, x, periodic=_is_global(src))[3]
    return w, (cx & cy).reshape(tgt.shape)


def target_valid(target: xr.Dataset | xr.DataArray, grid: Grid) -> np.ndarray | None:
    """``(ny, nx)`` True where the target's data is not NaN at some time step; None if none.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = xr.DataArray([[1.0, np.nan]], dims=("lat", "lon"),
    ...                  coords={"lat": [0.0], "lon": [0.0, 1.0]})
    >>> target_valid(t, describe_grid(t)).tolist()
    [[True, False]]
    """
    cands = [target] if isinstance(target, xr.DataArray) else list(target.data_vars.values())
    for var in cands:
        if {grid.ydim, grid.xdim} <= set(var.dims):
            other = [d for d in var.dims if d not in (grid.ydim, grid.xdim)]
            valid = var.notnull()
            if other:
                valid = valid.any(dim=other)
            v = np.asarray(valid.transpose(grid.ydim, grid.xdim).values)
            return None if v.all() else v
    return None


def _apply(data: np.ndarray, w: sp.csr_matrix, shape: tuple[int, int]) -> np.ndarray:
    """NaN-aware ``w @ data`` over the last two axes of ``data``."""
    lead = data.shape[:-2]
    flat = np.asarray(data, dtype=np.float64).reshape(-1, data.shape[-2] * data.shape[-1])
    valid = np.isfinite(flat)
    num = (w @ np.where(valid, flat, 0.0).T).T
    den = (w @ valid.astype(np.float64).T).T
    rowsum = np.asarray(w.sum(axis=1)).ravel()[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > _VALID_FRACTION * np.maximum(rowsum, 1e-300), num / den, np.nan)
    return out.reshape(*lead, *shape)


def _output_coords(tgt: Grid, target: xr.Dataset | xr.DataArray) -> dict[str, Any]:
    coords: dict[str, Any] = {
        tgt.ydim: (tgt.ydim, np.asarray(target[tgt.ydim].values), dict(target[tgt.ydim].attrs)),
        tgt.xdim: (tgt.xdim, np.asarray(target[tgt.xdim].values), dict(target[tgt.xdim].attrs)),
    }
    if tgt.kind != "latlon":
        lon, lat = tgt.lonlat()
        dims = (tgt.ydim, tgt.xdim)
        coords["lat"] = (dims, lat, {"standard_name": "latitude", "units": "degrees_north"})
        coords["lon"] = (dims, lon, {"standard_name": "longitude", "units": "degrees_east"})
        # Stored 2-D lat/lon of the target win over recomputed ones.
        for name in ("lat", "lon"):
            if name in target.coords and target[name].dims == dims:
                coords[name] = (dims, np.asarray(target[name].values), dict(target[name].attrs))
    if tgt.mapping_name is not None and tgt.mapping is not None:
        m = tgt.mapping
        coords[tgt.mapping_name] = ((), np.int32(0), dict(m.attrs))
    return coords


def regrid_cf(
    da: xr.DataArray,
    target: xr.Dataset | xr.DataArray,
    *,
    method: str = "bilinear",
    mask: bool = True,
) -> xr.DataArray:
    """Interpolate ``da`` onto ``target``'s grid, either of them any CF grid.

    Parameters
    ----------
    da : xarray.DataArray
        Field with dims ``(..., y, x)`` on a lat/lon, rotated-pole or projected grid (with its
        grid-mapping variable as a coordinate, see :func:`~esmscale.prepare.grids.describe_grid`).
    target : xarray.Dataset or xarray.DataArray
        Target grid (and, with ``mask=True``, data whose all-NaN cells stay NaN).
    method : {"bilinear", "conservative"}
    mask : bool
        Set to NaN the target cells that are NaN in the target's data at every time step.

    Returns
    -------
    xarray.DataArray
        ``(..., y, x)`` on the target's native dims, with 2-D ``lat``/``lon``, the target's
        grid-mapping coordinate and ``grid_mapping`` attribute; lazy for Dask input.

    Raises
    ------
    EsmscaleError
        Unknown method, an unreadable grid (see :func:`~esmscale.prepare.grids.describe_grid`),
        or a target that the input covers only in part (the fraction and where).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.arange(4.0).reshape(2, 2), dims=("lat", "lon"), name="tas",
    ...                   coords={"lat": [50.0, 51.0], "lon": [9.0, 11.0]})
    >>> tgt = xr.Dataset(
    ...     {"tas": (("y", "x"), np.zeros((1, 1)), {"grid_mapping": "crs"}),
    ...      "crs": ((), 0, {"grid_mapping_name": "transverse_mercator",
    ...                      "longitude_of_central_meridian": 10.0,
    ...                      "latitude_of_projection_origin": 0.0,
    ...                      "scale_factor_at_central_meridian": 1.0,
    ...                      "false_easting": 0.0, "false_northing": 0.0,
    ...                      "semi_major_axis": 6378137.0,
    ...                      "inverse_flattening": 298.257223563})},
    ...     coords={"y": [5596000.0], "x": [0.0]})
    >>> out = regrid_cf(da, tgt)
    >>> out.dims, out.attrs["grid_mapping"], round(float(out.values[0, 0]), 2)
    (('y', 'x'), 'crs', 1.49)
    """
    if method not in ("bilinear", "conservative"):
        raise EsmscaleError(
            f"method={method!r} is not supported; use 'bilinear' or 'conservative'."
        )
    src = describe_grid(da)
    tgt = describe_grid(target)
    w, covered = (bilinear_weights if method == "bilinear" else conservative_weights)(src, tgt)
    valid = target_valid(target, tgt) if mask else None
    _coverage_error(src, tgt, covered, valid, da.name)
    keep = covered if valid is None else covered & valid
    aux = [
        k for k, v in da.coords.items() if k not in da.dims and set(v.dims) & {src.ydim, src.xdim}
    ]
    aux += [src.mapping_name] if src.mapping_name in da.coords else []
    src_da = da.drop_vars(aux)
    if src_da.chunks is not None:
        src_da = src_da.chunk({src.ydim: -1, src.xdim: -1})
    shape = tgt.shape

    def run(block: np.ndarray) -> np.ndarray:
        out = _apply(block, w, shape)
        out[..., ~keep] = np.nan
        return out

    out = xr.apply_ufunc(
        run,
        src_da,
        input_core_dims=[[src.ydim, src.xdim]],
        output_core_dims=[["_esmscale_ty", "_esmscale_tx"]],
        exclude_dims={src.ydim, src.xdim},
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"_esmscale_ty": shape[0], "_esmscale_tx": shape[1]}},
    )
    drop = [d for d in (tgt.ydim, tgt.xdim) if d in out.coords]
    out = out.drop_vars(drop).rename({"_esmscale_ty": tgt.ydim, "_esmscale_tx": tgt.xdim})
    out = out.assign_coords(_output_coords(tgt, target))
    if np.issubdtype(da.dtype, np.floating):
        out = out.astype(da.dtype)
    attrs = {k: v for k, v in da.attrs.items() if k not in ("grid_mapping", "coordinates")}
    if tgt.mapping_name is not None:
        attrs["grid_mapping"] = tgt.mapping_name
    out.attrs = attrs
    out.encoding = {}
    return out.rename(da.name)
