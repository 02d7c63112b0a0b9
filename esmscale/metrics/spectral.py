"""Radially averaged power spectra of fields and their errors (mask-aware)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from esmscale.errors import EsmscaleError
from esmscale.metrics.checks import (
    as_dataarray,
    latlon_dims,
    spatial_whole,
)
from esmscale.spectra import rapsd, wavenumbers


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
    da = as_dataarray(da, "radial_psd input")
    lat, lon = latlon_dims(da, "radial_psd input")
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
    x = spatial_whole(da.astype(np.float64), lat, lon)
    per_field = xr.apply_ufunc(
        _psd_each,
        x,
        spatial_whole(m, lat, lon) if m.chunks is not None else m,
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
