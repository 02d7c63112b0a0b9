"""Open user data and turn one variable into a plain ``(time, y, x)`` array in model units."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np
import xarray as xr

from esmscale.errors import EsmscaleError
from esmscale.io.catalog import open_catalog_dataset, parse_catalog_uri
from esmscale.prepare.units import convert

__all__ = ["field_values", "grid_spacing", "open_dataset", "select_variable"]


def open_dataset(
    path: str | os.PathLike[str], catalog_root: str | os.PathLike[str] | None = None
) -> xr.Dataset:
    """Open a NetCDF file, a Zarr store, a glob of NetCDF files or a catalog entry.

    Times are decoded with cftime. A catalog entry is written ``CATALOG.json?facet=value&...``
    (an intake-esm collection, see :mod:`esmscale.io.catalog`); its relative asset paths are
    resolved against ``catalog_root``, else ``$ESMSCALE_CATALOG_ROOT``, else the catalog's
    folder.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> time = xr.date_range("2000-01-01", periods=2, calendar="noleap", use_cftime=True)
    >>> ds = xr.Dataset({"pr": (("time", "lat"), np.ones((2, 3)), {"units": "mm day-1"})},
    ...                 coords={"time": time})
    >>> ds.to_netcdf(folder / "pr.nc")
    >>> back = open_dataset(folder / "pr.nc")
    >>> back.time.dt.calendar, back["pr"].attrs["units"]
    ('noleap', 'mm day-1')
    >>> open_dataset(folder / "missing.nc")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: input '.../missing.nc' does not exist; give a NetCDF file, ...
    """
    p = str(path)
    parsed = parse_catalog_uri(p)
    if parsed is not None:
        root = catalog_root or os.environ.get("ESMSCALE_CATALOG_ROOT") or None
        return open_catalog_dataset(parsed[0], root=root, **parsed[1])
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    if any(c in p for c in "*?["):
        files = sorted(glob.glob(p))  # noqa: PTH207 - patterns may span folders
        if not files:
            raise EsmscaleError(f"no file matches the pattern {p!r}; check the path.")
        return xr.open_mfdataset(files, engine="netcdf4", decode_times=coder, combine="by_coords")
    q = Path(p)
    if not q.exists():
        raise EsmscaleError(
            f"input {p!r} does not exist; give a NetCDF file, a Zarr store or a glob."
        )
    try:
        if q.is_dir() or q.suffix == ".zarr":
            return xr.open_zarr(q, decode_times=coder, consolidated=None)
        return xr.open_dataset(q, engine="netcdf4", decode_times=coder)
    except (OSError, ValueError, KeyError) as err:
        if isinstance(err, EsmscaleError):
            raise
        kind = "Zarr store" if q.is_dir() or q.suffix == ".zarr" else "NetCDF file"
        raise EsmscaleError(
            f"input {p!r} cannot be read as a {kind} ({type(err).__name__}: {err}); check that "
            "it is a NetCDF file or a Zarr store and that it is not truncated."
        ) from err


def select_variable(obj: xr.Dataset | xr.DataArray, variable: str | None = None) -> xr.DataArray:
    """Pick the data variable to work on; errors list the candidates.

    Examples
    --------
    >>> ds = xr.Dataset({"pr": (("lat", "lon"), np.ones((2, 2))),
    ...                  "tas": (("lat", "lon"), np.ones((2, 2)))})
    >>> select_variable(ds, "tas").name
    'tas'
    >>> select_variable(ds)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: ...['pr', 'tas']...
    """
    if isinstance(obj, xr.DataArray):
        if variable is not None and obj.name not in (None, variable):
            raise EsmscaleError(f"DataArray is named {obj.name!r}, not {variable!r}.")
        return obj
    names = [str(k) for k, v in obj.data_vars.items() if v.ndim >= 2]
    try:
        from esmscale.prepare.coords import find_latlon

        lat, lon = find_latlon(obj)
        names = [n for n in names if {lat, lon} <= set(obj[n].dims)]
    except EsmscaleError:
        from esmscale.prepare.grids import describe_grid

        try:  # a rotated-pole or projected grid: its native (y, x) dims
            g = describe_grid(obj)
            names = [n for n in names if {g.ydim, g.xdim} <= set(obj[n].dims)]
        except EsmscaleError:
            pass  # no grid found: any variable with two or more dims is a candidate
    if variable is not None:
        if variable not in obj.data_vars:
            raise EsmscaleError(
                f"variable {variable!r} is not in the dataset; its variables are "
                f"{sorted(map(str, obj.data_vars))}."
            )
        return _with_mapping(obj, obj[variable])
    if not names:
        has = "; ".join(
            f"{k!r} has dims {tuple(map(str, v.dims))}" for k, v in obj.data_vars.items()
        )
        raise EsmscaleError(
            "no variable of the dataset has latitude and longitude dims "
            f"({has or 'it has no data variables'}); esmscale needs gridded fields with dims "
            "(time, lat, lon)."
        )
    if len(names) != 1:
        raise EsmscaleError(
            f"the dataset has {len(names)} gridded variables {names};",
            python="choose one with variable=....",
            cli="choose one with --variable NAME.",
        )
    return _with_mapping(obj, obj[names[0]])


def _with_mapping(ds: xr.Dataset, da: xr.DataArray) -> xr.DataArray:
    from esmscale.prepare.grids import with_grid_mapping

    return with_grid_mapping(ds, da)


def _spatial_dims(da: xr.DataArray) -> tuple[str, str]:
    if da.ndim not in (2, 3):
        raise EsmscaleError(
            f"variable {da.name!r} has dims {da.dims}; expected (time, y, x) or (y, x)."
        )
    return str(da.dims[-2]), str(da.dims[-1])


def grid_spacing(da: xr.DataArray) -> float | None:
    """Grid spacing in the units of the last spatial coordinate, if regular.

    Examples
    --------
    >>> da = xr.DataArray(np.zeros((2, 3)), dims=("lat", "lon"),
    ...                   coords={"lat": [0.0, 0.5], "lon": [10.0, 10.5, 11.0]})
    >>> grid_spacing(da)
    0.5
    >>> grid_spacing(da.assign_coords(lon=[10.0, 10.5, 12.0])) is None  # irregular
    True
    """
    xdim = _spatial_dims(da)[1]
    if xdim not in da.coords or da[xdim].size < 2:
        return None
    d = np.diff(np.asarray(da[xdim].values, dtype=np.float64))
    return float(abs(d.mean())) if np.allclose(d, d[0], rtol=1e-3) else None


def field_values(da: xr.DataArray, units: str) -> np.ndarray:
    """Load ``da`` as float32 ``(time, y, x)`` in ``units`` (unit conversion checked).

    Examples
    --------
    >>> flux = xr.DataArray(np.full((2, 3), 1 / 86400), dims=("lat", "lon"), name="pr",
    ...                     attrs={"units": "kg m-2 s-1"})
    >>> out = field_values(flux, "mm day-1")  # one field gets a time axis
    >>> out.shape, out.dtype, float(out[0, 0, 0])
    ((1, 2, 3), dtype('float32'), 1.0)
    >>> field_values(flux, "K")
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: variable 'pr': cannot convert precipitation units ...
    """
    _spatial_dims(da)
    if not np.issubdtype(da.dtype, np.number) or np.issubdtype(da.dtype, np.complexfloating):
        raise EsmscaleError(
            f"variable {da.name!r} has dtype {da.dtype}; expected real numbers (float)."
        )
    values = np.asarray(da.values, dtype=np.float64)
    if values.ndim == 2:
        values = values[None]
    out = convert(values, da.attrs.get("units"), units, str(da.name))
    return np.asarray(out, dtype=np.float32)
