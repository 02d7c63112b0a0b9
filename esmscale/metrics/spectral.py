"""Radially averaged power spectra of gridded fields and their errors (mask-aware).

Wavenumbers are in cycles per degree, from the latitude/longitude steps (cycles per km on a
projected grid, from its native x/y steps), and the power is per
unit area of wavenumber space (see :mod:`esmscale.spectra`), so that spectra of one region on
different grids (e.g. a coarse ESM and the fine observations) lie on one curve at the scales
both resolve.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from esmscale.errors import EsmscaleError
from esmscale.metrics.checks import (
    as_dataarray,
    axis_scale,
    latlon_dims,
    spatial_whole,
)
from esmscale.spectra import rapsd, wavenumbers

__all__ = ["grid_spacing", "per_degree", "psd_error", "radial_psd"]

_UNIFORM_RTOL = 0.02  # Gaussian latitudes (e.g. NCEP's T62) are uniform to ~0.01 %


def grid_spacing(da: xr.DataArray | xr.Dataset) -> tuple[float, float]:
    """Latitude and longitude steps ``(dlat, dlon)`` in degrees of a regular grid.

    On a projected grid the steps are those of its native ``(y, x)`` axes in kilometres (in
    degrees on a rotated-pole grid), so spectra are per kilometre there.

    Steps are rounded to 6 significant digits so that float32 coordinates and grids derived
    by block averaging give exactly the steps they were built with.

    Raises
    ------
    EsmscaleError
        If a coordinate has fewer than 2 values or is not evenly spaced (within 2 %).

    Examples
    --------
    >>> da = xr.DataArray(np.zeros((3, 4)), dims=("lat", "lon"),
    ...                   coords={"lat": [40.0, 40.5, 41.0], "lon": [0.0, 0.25, 0.5, 0.75]})
    >>> grid_spacing(da)
    (0.5, 0.25)
    """
    steps = []
    for name in latlon_dims(da, "grid"):  # type: ignore[arg-type]
        c = np.asarray(da[name].values, dtype=np.float64) * axis_scale(da, name)
        if c.size < 2:
            raise EsmscaleError(f"coordinate {name!r} has {c.size} value; need 2 for a spacing.")
        step = abs(c[-1] - c[0]) / (c.size - 1)
        diffs = np.abs(np.diff(c))
        if step == 0 or np.max(np.abs(diffs - step)) > _UNIFORM_RTOL * step:
            raise EsmscaleError(
                f"coordinate {name!r} is not evenly spaced (steps {diffs.min():.6g} to "
                f"{diffs.max():.6g} degrees); spectra need a regular grid: regrid first "
                "(esmscale.prepare.regrid)."
            )
        steps.append(float(f"{step:.6g}"))
    return steps[0], steps[1]


def per_degree(k_cell: float, da: xr.DataArray | xr.Dataset) -> float:
    """A wavenumber in cycles per grid cell of ``da`` in cycles per degree.

    Divides by the larger grid step, so that 0.5 cycles per cell is the grid's Nyquist
    wavenumber (the last shell of :func:`radial_psd`). Use it for ``Calibration.k_star``.

    Examples
    --------
    >>> da = xr.DataArray(np.zeros((4, 4)), dims=("lat", "lon"),
    ...                   coords={"lat": np.arange(4) * 0.5, "lon": np.arange(4) * 0.5})
    >>> per_degree(0.125, da)
    0.25
    """
    return float(k_cell) / max(grid_spacing(da))


def _psd_each(x: np.ndarray, mask: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """Per-field RAPSD: ``(..., H, W)`` -> ``(..., nk)``; NaN for a field with no valid cell."""
    h, w = x.shape[-2:]
    nk = wavenumbers((h, w), spacing).size
    flat = x.reshape(-1, h, w)
    valid = np.broadcast_to(np.asarray(mask, dtype=bool), x.shape).reshape(-1, h, w)
    out = np.full((flat.shape[0], nk), np.nan)
    for i in range(flat.shape[0]):
        if (valid[i] & np.isfinite(flat[i])).any():
            out[i] = rapsd(flat[i], mask=valid[i], spacing=spacing)[1]
    return out.reshape(*x.shape[:-2], nk)


def radial_psd(da: xr.DataArray, mask: xr.DataArray | np.ndarray | None = None) -> xr.DataArray:
    """Radially averaged power spectral density, averaged over all non-spatial dims.

    Each field's spectrum is :func:`esmscale.spectra.rapsd` with the grid steps in degrees
    (shell mean of ``|FFT|^2 * dlat * dlon / N`` of the anomaly from the field mean, ``N`` =
    valid cells; masked and NaN cells set to zero); spectra are then averaged over members and
    times. White noise of variance ``s^2`` has a flat spectrum ``s^2 * dlat * dlon``; a field
    and its block average have the same power at the scales both grids resolve.

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
        Dim ``wavenumber`` (cycles per degree, up to the grid's Nyquist wavenumber ``1 / (2
        * step)``); units the field's squared times degree2. Lazy for Dask input.

    Examples
    --------
    >>> j = np.arange(8)
    >>> wave = xr.DataArray(np.cos(2 * np.pi * 2 * j / 8)[None, :].repeat(8, 0),
    ...                     dims=("lat", "lon"), coords={"lat": np.arange(8.0) / 2,
    ...                     "lon": np.arange(8.0) / 2})
    >>> p = radial_psd(wave)
    >>> p["wavenumber"].values.tolist(), p.round(4).values.tolist()
    ([0.25, 0.5, 0.75, 1.0], [0.0, 0.6667, 0.0, 0.0])
    """
    da = as_dataarray(da, "radial_psd input")
    lat, lon = latlon_dims(da, "radial_psd input")
    shape = (int(da.sizes[lat]), int(da.sizes[lon]))
    if min(shape) < 4:
        raise EsmscaleError(f"radial_psd: grid {shape[0]}x{shape[1]} is too small (need 4x4).")
    spacing = grid_spacing(da)
    k = wavenumbers(shape, spacing)
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
    x = spatial_whole(da.astype(np.float64), lat, lon)
    per_field = xr.apply_ufunc(
        _psd_each,
        x,
        spatial_whole(m, lat, lon) if m.chunks is not None else m,
        input_core_dims=[[lat, lon], [lat, lon]],
        output_core_dims=[["wavenumber"]],
        kwargs={"spacing": spacing},
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"wavenumber": k.size}},
    )
    others = [d for d in per_field.dims if d != "wavenumber"]
    out = per_field.mean(others) if others else per_field
    units = str(da.attrs.get("units", ""))
    attrs = {
        "long_name": "radially averaged power spectral density",
        "units": f"({units})2 degree2" if units else "degree2",
        "grid_spacing_degrees": list(spacing),
    }
    return (
        out.assign_coords(
            wavenumber=("wavenumber", k, {"units": "cycles per degree", "long_name": "wavenumber"})
        )
        .rename("psd")
        .assign_attrs(attrs)
    )


def psd_error(
    psd: xr.DataArray, psd_ref: xr.DataArray, k_min: float = 0.0, k_max: float | None = None
) -> xr.DataArray:
    """Mean ``|log10(psd / psd_ref)|`` over wavenumbers ``k_min <= k <= k_max``.

    ``k_min`` and ``k_max`` are in the spectra's wavenumber units (cycles per degree for
    :func:`radial_psd`; convert a wavenumber per grid cell with :func:`per_degree`). 0 means
    identical spectra in the band; 1 means an error of a factor 10 on average.

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
            f"{ka.min():.4g}..{ka.max():.4g} {psd['wavenumber'].attrs.get('units', '')}."
        )
    ratio = psd.isel(wavenumber=band) / psd_ref.isel(wavenumber=band).assign_coords(
        wavenumber=psd["wavenumber"][band]
    )
    err = abs(xr.ufuncs.log10(ratio))
    return err.mean("wavenumber").rename("psd_error")
