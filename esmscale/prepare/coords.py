"""Coordinate lookup: which coordinates of a dataset are latitude and longitude.

Found through CF attributes (via cf_xarray) first, then through the usual names; the errors say
what is missing or ambiguous and how to fix it.
"""

from __future__ import annotations

import cf_xarray  # noqa: F401 - registers the ``.cf`` accessor
import xarray as xr

from esmscale.errors import EsmscaleError

__all__ = ["find_latlon"]

_LAT_NAMES = ("lat", "latitude", "nav_lat")
_LON_NAMES = ("lon", "longitude", "nav_lon")


def _candidates(obj: xr.DataArray | xr.Dataset, key: str, names: tuple[str, ...]) -> list[str]:
    """Coordinates that describe ``key`` ("latitude"/"longitude"): CF first, then names."""
    found: list[str] = []
    try:
        cf_names = obj.cf.coordinates.get(key, [])
    except (KeyError, ValueError, AttributeError):  # pragma: no cover - defensive
        cf_names = []
    for name in cf_names:
        if name in obj.coords and name not in found:
            found.append(str(name))
    if not found:
        lower = {str(k).lower(): str(k) for k in obj.coords}
        found = [lower[n] for n in names if n in lower]
    return found


def _pick(obj: xr.DataArray | xr.Dataset, key: str, names: tuple[str, ...], units: str) -> str:
    found = _candidates(obj, key, names)
    if not found:
        coords = sorted(map(str, obj.coords))
        raise EsmscaleError(
            f"no {key} coordinate found; the coordinates present are {coords}. Name it "
            f"{names[0]!r} or give it the CF attributes standard_name={key!r} and "
            f"units={units!r} (e.g. obj[name].attrs.update(standard_name={key!r}, "
            f"units={units!r}))."
        )
    # Prefer a 1-D dimension coordinate when CF attributes match several variables.
    one_d = [n for n in found if obj[n].ndim == 1]
    dim_coords = [n for n in one_d if obj[n].dims == (n,)]
    for group in (dim_coords, one_d):
        if len(group) == 1:
            return group[0]
        if len(group) > 1:
            raise EsmscaleError(
                f"several {key} coordinates found: {group}; drop all but one "
                f"(e.g. obj.drop_vars({group[1:]!r}))."
            )
    name = found[0]
    var = obj[name]
    if var.ndim >= 2:
        raise EsmscaleError(
            f"{key} coordinate {name!r} is {var.ndim}-D with dims {tuple(map(str, var.dims))}: "
            "this is a curvilinear grid (e.g. CORDEX rotated-pole data), which is not "
            "supported. Regrid the data to a regular lat/lon grid with 1-D lat and lon "
            "coordinates first (e.g. with xESMF or `cdo remapbil`)."
        )
    raise EsmscaleError(
        f"{key} coordinate {name!r} is a scalar; a lat/lon grid needs 1-D {key} values "
        "along a dimension (did a .sel/.isel drop the dimension?)."
    )


def find_latlon(obj: xr.DataArray | xr.Dataset) -> tuple[str, str]:
    """Names of the latitude and longitude coordinates of ``obj``.

    Coordinates are found through their CF attributes (``standard_name``, ``units`` such as
    ``degrees_north``, via cf_xarray), falling back to the names ``lat``/``latitude``/``nav_lat``
    and ``lon``/``longitude``/``nav_lon``.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        Gridded data or a grid description (coordinates only).

    Returns
    -------
    tuple of str
        ``(latitude name, longitude name)``; both are 1-D coordinates.

    Raises
    ------
    EsmscaleError
        If a coordinate is missing, ambiguous, scalar, 2-D (curvilinear grids are not
        supported), or if latitude and longitude share one dimension (unstructured grid).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(
    ...     np.zeros((2, 3)), dims=("y", "x"),
    ...     coords={"y": ("y", [40.0, 41.0], {"standard_name": "latitude"}),
    ...             "x": ("x", [0.0, 1.0, 2.0], {"units": "degrees_east"})})
    >>> find_latlon(da)
    ('y', 'x')
    >>> find_latlon(xr.Dataset(coords={"latitude": [1.0, 2.0], "longitude": [3.0, 4.0]}))
    ('latitude', 'longitude')
    """
    lat = _pick(obj, "latitude", _LAT_NAMES, "degrees_north")
    lon = _pick(obj, "longitude", _LON_NAMES, "degrees_east")
    if obj[lat].dims == obj[lon].dims:
        raise EsmscaleError(
            f"latitude {lat!r} and longitude {lon!r} both lie along the dimension "
            f"{str(obj[lat].dims[0])!r} (an unstructured grid or a list of points); regrid "
            "needs a regular grid with separate lat and lon dimensions."
        )
    return lat, lon
