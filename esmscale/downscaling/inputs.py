"""Step 1 of the pipeline, prepare the inputs: variable, time, physics, units, regrid, bias.

:func:`prepare_inputs` turns what the user gave into fine-grid fields in the model's units,
lazily for Dask input, and records what the later steps need (:class:`PreparedInput`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from esmscale.downscaling.plan import spacing
from esmscale.errors import EsmscaleError
from esmscale.models.consistency import ConsistencyModel
from esmscale.prepare.checks import check_time
from esmscale.prepare.coords import find_latlon
from esmscale.prepare.grids import describe_grid, is_rectilinear_latlon
from esmscale.prepare.inputs import open_dataset, select_variable
from esmscale.prepare.physics import check_field
from esmscale.prepare.regrid import refine_grid, regrid
from esmscale.prepare.units import linear_factors

__all__ = ["PreparedInput", "as_xarray", "prepare_inputs"]


@dataclass(frozen=True)
class PreparedInput:
    """The input after step 1.

    Attributes
    ----------
    da
        The selected (and checked) input variable, in its own units on its own grid.
    fine
        ``(time, lat, lon)`` float32 fields on the target grid in the model's units (after
        bias correction, if any).
    name, tdim, lat, lon
        Variable name and the dims of ``fine`` (``lat``/``lon`` are the target's native
        ``(y, x)`` dims, e.g. ``northing``/``easting`` on a projected grid).
    scale, offset
        ``model units = input units * scale + offset``.

    Examples
    --------
    >>> from esmscale.datasets import synthetic_esm, synthetic_precip
    >>> from esmscale.models import ConsistencyConfig, ConsistencyModel
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16), factor=4))
    >>> esm = synthetic_esm(synthetic_precip(16, 16, 3), factor=4)
    >>> pr = (esm.pr / 86400).assign_attrs(units="kg m-2 s-1")  # a flux, as CMIP stores it
    >>> prep = prepare_inputs(pr, m)
    >>> prep.name, prep.tdim, prep.lat, prep.lon, round(prep.scale)
    ('pr', 'time', 'lat', 'lon', 86400)
    """

    da: xr.DataArray
    fine: xr.DataArray
    name: str
    tdim: str
    lat: str
    lon: str
    scale: float
    offset: float


def as_xarray(obj: Any) -> xr.Dataset | xr.DataArray:
    """``obj`` itself if it is xarray, the lazily opened store if it is a path.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from esmscale.datasets import synthetic_precip
    >>> ds = synthetic_precip(8, 8, 2)
    >>> as_xarray(ds) is ds
    True
    >>> path = Path(tempfile.mkdtemp()) / "pr.nc"
    >>> ds.to_netcdf(path)
    >>> as_xarray(path).pr.shape
    (2, 8, 8)
    >>> as_xarray(ds.pr.values)
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: downscale(obj, model): obj is a ndarray; give an xarray ...
    """
    if isinstance(obj, str | os.PathLike):
        return open_dataset(obj)
    if not isinstance(obj, xr.Dataset | xr.DataArray):
        raise EsmscaleError(
            f"downscale(obj, model): obj is a {type(obj).__name__}; give an xarray Dataset or "
            "DataArray, or the path of a NetCDF file or Zarr store (numpy arrays: "
            "esmscale.downscale_array)."
        )
    return obj


def _target(da: xr.DataArray, cm: ConsistencyModel, target: Any) -> xr.Dataset | xr.DataArray:
    if target is None:
        if not is_rectilinear_latlon(da):
            g = describe_grid(da)
            raise EsmscaleError(
                f"the input {da.name!r} is on a {g.kind} grid (CRS from {g.source}); the default "
                "target (the input grid refined by the model's factor) needs a 1-D lat/lon grid. "
                "Give the output grid with target= (e.g. the observations' Dataset)."
            )
        tgt = refine_grid(da, cm.config.factor)
    else:
        tgt = target
    if is_rectilinear_latlon(da) and is_rectilinear_latlon(tgt):
        lat, tlat = find_latlon(da)[0], find_latlon(tgt)[0]
        fine_d, coarse_d, unit = spacing(tgt[tlat].values), spacing(da[lat].values), "deg"
    else:
        fine_d, coarse_d, unit = (
            describe_grid(tgt).spacing_km(),
            describe_grid(da).spacing_km(),
            "km",
        )
    if fine_d >= coarse_d:
        raise EsmscaleError(
            f"target grid spacing {fine_d:.4g} {unit} is not finer than the "
            f"input's {coarse_d:.4g} {unit}; downscaling needs a finer target."
        )
    return tgt


def prepare_inputs(
    obj: xr.Dataset | xr.DataArray,
    cm: ConsistencyModel,
    *,
    target: xr.Dataset | xr.DataArray | None = None,
    variable: str | None = None,
    check: str = "raise",
    regrid_method: str = "bilinear",
    bias: dict[str, Any] | None = None,
) -> PreparedInput:
    """Select, check, convert, regrid and bias-correct ``obj`` for model ``cm``.

    ``bias`` holds the keyword arguments of :func:`esmscale.prepare.bias.bias_correct`
    (``bias_correction``, ``reference``, ``historical``); None or a None ``bias_correction``
    skips it.

    Examples
    --------
    >>> from esmscale.datasets import synthetic_esm, synthetic_precip
    >>> from esmscale.models import ConsistencyConfig, ConsistencyModel
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16), factor=4))
    >>> esm = synthetic_esm(synthetic_precip(16, 16, 3), factor=4)  # 4x4 cells, mm day-1
    >>> prep = prepare_inputs(esm, m)  # onto the grid 4x finer, in the model's units
    >>> prep.da.shape, prep.fine.shape, prep.fine.attrs["units"], (prep.scale, prep.offset)
    ((3, 4, 4), (3, 16, 16), 'mm day-1', (1.0, 0.0))
    """
    tr = cm.config.transform
    da = select_variable(obj, variable)
    name = str(da.name) if da.name is not None else cm.config.variable
    tdim = check_time(da)
    da = check_field(da, check)
    scale, offset = linear_factors(da.attrs.get("units"), tr.units, name)
    tgt = _target(da, cm, target)
    if is_rectilinear_latlon(da) and is_rectilinear_latlon(tgt):
        tlat, tlon = find_latlon(tgt)
        fine = regrid(da, tgt, method=regrid_method, mask=True)
    else:  # rotated-pole or projected input or target: sparse weights through pyproj
        from esmscale.prepare.regrid_cf import regrid_cf

        g = describe_grid(tgt)
        tlat, tlon = g.ydim, g.xdim
        fine = regrid_cf(da, tgt, method=regrid_method, mask=True)
    fine = (fine * scale + offset).assign_attrs(units=tr.units)
    if bias and bias.get("bias_correction") is not None:
        from esmscale.prepare.bias import bias_correct

        fine = bias_correct(
            fine,
            bias["bias_correction"],
            units=tr.units,
            reference=bias.get("reference"),
            historical=bias.get("historical"),
            variable=variable,
            regrid_method=regrid_method,
        )
    fine = fine.transpose(tdim, tlat, tlon).astype(np.float32)
    return PreparedInput(da, fine, name, tdim, tlat, tlon, scale, offset)
