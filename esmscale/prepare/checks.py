"""Input checks: is the data what the downscaling path needs (decoded, ordered time axis)?"""

from __future__ import annotations

import xarray as xr

from esmscale.errors import EsmscaleError

__all__ = ["check_time"]


def check_time(da: xr.DataArray) -> str:
    """Name of the time dimension after checking it is decoded, increasing and unique.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> da = xr.DataArray(np.zeros((2, 2, 2)), dims=("time", "lat", "lon"), name="pr",
    ...                   coords={"time": pd.date_range("2000-01-01", periods=2),
    ...                           "lat": [0.0, 1.0], "lon": [0.0, 1.0]})
    >>> check_time(da)
    'time'
    >>> check_time(da.isel(time=[1, 0]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: time coordinate 'time' of 'pr' is not increasing; ...
    """
    from esmscale.prepare.grids import spatial_dims

    tdims = [d for d in da.dims if d not in spatial_dims(da) and d in da.coords]
    tdims = [d for d in tdims if d == "time" or da[d].attrs.get("axis") == "T"] or tdims
    if len(tdims) != 1:
        raise EsmscaleError(
            f"variable {da.name!r} has dims {da.dims}; expected exactly one time dimension besides "
            "latitude and longitude (select or squeeze the others)."
        )
    t = tdims[0]
    vals = da[t].values
    if vals.dtype.kind in "iuf":
        raise EsmscaleError(
            f"time coordinate {t!r} of {da.name!r} is numeric ({vals.dtype}), not dates; its "
            "units attribute probably lacks 'since' (e.g. 'days since 1850-01-01'): fix the "
            "attribute and reopen the file."
        )
    idx = da.indexes[t]
    if idx.has_duplicates:
        dup = idx[idx.duplicated()][:3]
        raise EsmscaleError(
            f"time coordinate {t!r} of {da.name!r} has duplicated times {list(map(str, dup))}; "
            "drop them, e.g. da.drop_duplicates('time')."
        )
    if not idx.is_monotonic_increasing:
        raise EsmscaleError(
            f"time coordinate {t!r} of {da.name!r} is not increasing; sort it with "
            "da.sortby('time')."
        )
    return str(t)
