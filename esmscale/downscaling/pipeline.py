"""Lazy, chunk-invariant downscaling of xarray data over Dask: the path a field takes.

``downscale`` = find the variable -> convert units -> regrid onto the target grid (xarray-regrid)
-> optional QDM bias correction (xsdba) -> fixed tiles of the global target grid with halos and
blended overlaps (:mod:`esmscale.downscaling.tiling`) -> the consistency model -> units back, CF
attributes and provenance. With Dask input nothing is computed until the result is; each output
chunk is one task that loads the model once per process
(:func:`esmscale.io.model_cache.cached_model`).
"""

from __future__ import annotations

import datetime as _dt
import os
import warnings
from typing import Any

import dask
import dask.array as dsa
import numpy as np
import xarray as xr

from esmscale._version import __version__
from esmscale.downscaling.arrays import resolve_t_star
from esmscale.downscaling.tiling import TileGrid, denoise_region, fixed_threads
from esmscale.errors import EsmscaleError, EsmscaleWarning
from esmscale.io.model_cache import ModelRef, cached_model, model_ref
from esmscale.models.consistency import ConsistencyModel
from esmscale.models.sampler import SAMPLERS
from esmscale.models.transforms import DataTransform
from esmscale.prepare.checks import (
    check_time,
)  # re-exported: esmscale.downscaling.pipeline.check_time
from esmscale.prepare.clipping import attach_counts, clip_negative_lazy, compute_clipped
from esmscale.prepare.coords import find_latlon
from esmscale.prepare.inputs import open_dataset, select_variable
from esmscale.prepare.interp import coarsen_block
from esmscale.prepare.physics import check_field, is_nonnegative
from esmscale.prepare.regrid import refine_grid, regrid
from esmscale.prepare.units import linear_factors
from esmscale.pretrained import load_model

__all__ = ["MEMBER_ATTRS", "check_time", "downscale", "member_coord", "output_attrs"]


def _spacing(values: np.ndarray) -> float:
    return float(np.abs(np.diff(np.asarray(values, dtype=np.float64))).mean())


def _is_global(lon: np.ndarray) -> bool:
    d = _spacing(lon)
    return bool(abs(lon.size * d - 360.0) < 0.5 * d)


def _block(
    fine: np.ndarray,
    ref: ModelRef,
    grid: TileGrid,
    region: tuple[slice, slice],
    t_star: float,
    member: int,
    seed: int,
    time_index: np.ndarray,
    steps: int,
    threads: int,
    transform: DataTransform,
    sampler: str = "consistency",
) -> np.ndarray:
    """One output chunk: ``(1, time, y, x)`` in model units (a Dask task)."""
    model = cached_model(ref)
    y = transform.forward(fine)
    nan = ~np.isfinite(y)
    y[nan] = transform.fill_value
    with fixed_threads(threads):
        z = denoise_region(
            model,
            y,
            grid,
            region,
            t_star=t_star,
            member=member,
            seed=seed,
            time_index=time_index,
            steps=steps,
            sampler=sampler,
        )
    if transform.kind == "log":
        z = np.clip(z, -1.0, None)
    out = transform.inverse(z)
    out[nan[:, region[0], region[1]]] = np.nan
    return out[None]


MEMBER_ATTRS = {
    "standard_name": "realization",
    "long_name": "ensemble member",
    "units": "1",
    "comment": "Members are equally likely draws from the downscaled distribution given the "
    "coarse input (member m uses its own noise, a function of the seed and m); no member is a "
    "best estimate: use them together (mean, spread, quantiles).",
}
"""CF attributes of the ``member`` coordinate of every downscaled result."""


def member_coord(members: int) -> xr.Variable:
    """The ``member`` coordinate ``0 .. members-1`` (int32, as CF-1.8 has no 64-bit integers).

    Examples
    --------
    >>> member_coord(3).attrs["long_name"], member_coord(3).values.tolist()
    ('ensemble member', [0, 1, 2])
    """
    return xr.Variable("member", np.arange(members, dtype=np.int32), attrs=dict(MEMBER_ATTRS))


def output_attrs(da: xr.DataArray, model: ConsistencyModel, **provenance: Any) -> dict[str, Any]:
    """CF attributes of the input plus esmscale provenance and a ``history`` line."""
    attrs = {k: v for k, v in da.attrs.items() if k not in ("history",)}
    attrs.setdefault("cell_methods", "time: mean")
    args = ", ".join(f"{k}={v}" for k, v in provenance.items())
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"{now}: esmscale {__version__} downscale(model={model.config.name!r}, {args})"
    history = da.attrs.get("history")
    attrs["history"] = f"{history}\n{line}" if history else line
    attrs.update(
        {
            "esmscale_version": __version__,
            "esmscale_model": model.config.name,
            "esmscale_model_sha256": model.sha256 or "",
            **{
                f"esmscale_{k}": (v if isinstance(v, int | float | str) else str(v))
                for k, v in provenance.items()
            },
        }
    )
    return attrs


def _spatial_chunks(n: int, size: int | None, halo: int, dim: str) -> tuple[int, ...]:
    if size is None or size >= n:
        return (n,)
    if size < halo:
        warnings.warn(
            f"output chunk size {size} along {dim!r} is smaller than the tile halo ({halo}); "
            f"every chunk would recompute whole tiles, so chunks of {halo} are used instead. "
            f"Ask for chunks of at least {halo} cells (or a smaller halo=).",
            EsmscaleWarning,
            stacklevel=3,
        )
        size = halo
    return tuple([size] * (n // size) + ([n % size] if n % size else []))


def downscale(
    obj: xr.Dataset | xr.DataArray | str | os.PathLike[str],
    model: ConsistencyModel | str | os.PathLike[str],
    *,
    target: xr.Dataset | xr.DataArray | None = None,
    variable: str | None = None,
    members: int = 1,
    seed: int = 0,
    t_star: float | str = "auto",
    steps: int = 1,
    bias_correction: Any = None,
    reference: xr.DataArray | xr.Dataset | None = None,
    historical: xr.DataArray | xr.Dataset | None = None,
    conserve: bool = False,
    tile: int | None = None,
    halo: int | None = None,
    regrid_method: str = "bilinear",
    chunks: dict[str, int] | None = None,
    threads: int = 1,
    sampler: str = "consistency",
    check: str = "raise",
) -> xr.DataArray | xr.Dataset:
    """Downscale coarse ESM fields into a high-resolution ensemble (lazy with Dask input).

    Parameters
    ----------
    obj
        Coarse fields with dims (time, lat, lon) (names found through CF attributes), or the
        path of a NetCDF file or Zarr store holding them (opened lazily).
    model
        A loaded :class:`ConsistencyModel`, a registered name or a checkpoint path.
    target
        Dataset/DataArray whose lat/lon grid is the output grid (NaN cells of its data, such as
        sea, stay NaN). Default: the input grid refined by the model's factor.
    variable
        Variable to downscale when ``obj`` is a Dataset with several.
    members, seed
        Ensemble size and noise seed; member ``m`` of seed ``s`` is reproducible on its own.
    t_star
        Noise level, or ``"auto"`` for the model's calibrated default.
    steps
        Network calls per member (1 = the paper's one-step sampling).
    bias_correction
        None, ``"qdm"`` (trained here on ``reference`` and ``historical``), ``"qdm-mean"``
        (the same, also keeping the model's change in each cell's mean) or a trained
        :class:`esmscale.prepare.bias.QDMCorrector`; applied on the target grid before the model.
    conserve
        Rescale each member so that its block mean over each input cell equals the input's
        (bias-corrected) value; needs a target that refines the input grid by an integer factor.
    tile, halo
        Tile core size and halo in fine cells (defaults: 64 and 16, rounded to the network's
        multiple). The output does not depend on Dask chunks; it does depend on these.
    regrid_method
        ``"bilinear"`` or ``"conservative"``.
    chunks
        Output chunk sizes along the target's lat/lon dims, e.g. ``{"lat": 128, "lon": 128}``.
    threads
        torch threads per task; CPU results are bitwise reproducible for a fixed value.
    sampler
        ``"consistency"`` (``steps`` network calls) or ``"bridge"``: the diffusion-bridge
        baseline, ``steps`` Euler-Maruyama steps of a model trained with
        ``objective="diffusion"``; ``"noise-only"`` is the control that adds the same noise at
        t* and skips the network.
    check
        Physical check of the input (:mod:`esmscale.prepare.physics`): ``"raise"`` (default)
        stops on negative precipitation, temperatures outside 150..350 K, infinities or leaked
        fill values; ``"warn"`` warns and goes on; ``"off"`` skips it. With Dask input the
        chunks are checked when computed.

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        Same kind as ``obj``: dims (member, time, lat, lon) on the target grid, in the input's
        units, with CF attributes, the input's calendar and provenance attributes. Outputs of
        non-negative variables are clipped at 0 and ``esmscale_clipped_fraction`` is the share
        of values clipped: set at once for in-memory input; for Dask input by
        :func:`esmscale.io.zarr.write_zarr` or :func:`esmscale.prepare.compute_clipped`.
    """
    if isinstance(obj, str | os.PathLike):
        obj = open_dataset(obj)
    elif not isinstance(obj, xr.Dataset | xr.DataArray):
        raise EsmscaleError(
            f"downscale(obj, model): obj is a {type(obj).__name__}; give an xarray Dataset or "
            "DataArray, or the path of a NetCDF file or Zarr store (numpy arrays: "
            "esmscale.downscale_array)."
        )
    cm = load_model(model)
    tr = cm.config.transform
    da = select_variable(obj, variable)
    name = str(da.name) if da.name is not None else cm.config.variable
    tdim = check_time(da)
    da = check_field(da, check)
    units = da.attrs.get("units")
    scale, offset = linear_factors(units, tr.units, name)
    if members < 1 or steps < 1:
        raise EsmscaleError(f"members={members} and steps={steps} must both be >= 1.")
    ts = resolve_t_star(cm, t_star)
    SAMPLERS.get(sampler).check_model(cm)
    lat = find_latlon(da)[0]
    tgt = refine_grid(da, cm.config.factor) if target is None else target
    tlat, tlon = find_latlon(tgt)
    if _spacing(tgt[tlat].values) >= _spacing(da[lat].values):
        raise EsmscaleError(
            f"target grid spacing {_spacing(tgt[tlat].values):.4g} deg is not finer than the "
            f"input's {_spacing(da[lat].values):.4g} deg; downscaling needs a finer target."
        )
    fine = regrid(da, tgt, method=regrid_method, mask=True)
    fine = (fine * scale + offset).assign_attrs(units=tr.units)
    if bias_correction is not None:
        from esmscale.prepare.bias import bias_correct

        fine = bias_correct(
            fine,
            bias_correction,
            units=tr.units,
            reference=reference,
            historical=historical,
            variable=variable,
            regrid_method=regrid_method,
        )
    fine = fine.transpose(tdim, tlat, tlon).astype(np.float32)

    mult = cm.config.multiple
    core = tile or 64
    core = max(mult, core - core % mult)
    hal = halo if halo is not None else min(16, core // 4)
    hal = hal - hal % max(mult // 2, 1)
    grid = TileGrid(
        fine.sizes[tlat],
        fine.sizes[tlon],
        tile=core,
        halo=hal,
        wrap_x=_is_global(np.asarray(fine[tlon].values)),
    )
    data = (
        fine.data
        if isinstance(fine.data, dsa.Array)
        else dsa.from_array(fine.data, chunks=(-1, -1, -1))
    )
    data = data.rechunk({1: -1, 2: -1})
    ych = _spatial_chunks(grid.ny, (chunks or {}).get(tlat), hal, tlat)
    xch = _spatial_chunks(grid.nx, (chunks or {}).get(tlon), hal, tlon)
    ref = model_ref(cm)
    tblocks = data.to_delayed().ravel()
    t_off = np.cumsum((0, *data.chunks[0]))
    rows = []
    for m in range(members):
        trow = []
        for i, blk in enumerate(tblocks):
            tidx = np.arange(t_off[i], t_off[i + 1])
            yrow = []
            y0 = 0
            for ny in ych:
                xrow = []
                x0 = 0
                for nx in xch:
                    region = (slice(y0, y0 + ny), slice(x0, x0 + nx))
                    task = dask.delayed(_block, pure=True)(
                        blk, ref, grid, region, ts, m, seed, tidx, steps, threads, tr, sampler
                    )
                    xrow.append(
                        dsa.from_delayed(task, shape=(1, len(tidx), ny, nx), dtype=np.float32)
                    )
                    x0 += nx
                yrow.append(xrow)
                y0 += ny
            trow.append(yrow)
        rows.append(trow)
    out = dsa.block(rows)
    out = (out - offset) / scale
    prov = {
        "t_star": ts,
        "seed": seed,
        "members": members,
        "steps": steps,
        "sampler": sampler,
        "tile": core,
        "halo": hal,
        "bias_correction": _bias_label(bias_correction),
        "conserve": str(conserve),
    }
    result = xr.DataArray(
        out.astype(np.float32),
        dims=("member", tdim, tlat, tlon),
        coords={
            "member": member_coord(members),
            tdim: fine[tdim],
            tlat: fine[tlat],
            tlon: fine[tlon],
        },
        name=name,
        attrs=output_attrs(da, cm, **prov),
    )
    result[tdim].attrs.update(da[tdim].attrs)
    result[tdim].encoding.update(
        {k: v for k, v in da[tdim].encoding.items() if k in ("calendar", "units", "dtype")}
    )
    if conserve:
        coarse_ref = (da * scale + offset) if bias_correction is None else fine
        result = _conserve(
            result, coarse_ref, cm.config.factor if target is None else None, tr, scale, offset
        )
    if tr.kind == "log" or is_nonnegative(name, da.attrs):
        clipped, counts = clip_negative_lazy(result.data)
        result = attach_counts(result.copy(data=clipped), counts)
    if not isinstance(da.data, dsa.Array):
        result = compute_clipped(result)
    return result.to_dataset() if isinstance(obj, xr.Dataset) else result


def _bias_label(bias_correction: Any) -> str:
    """Provenance label of a ``bias_correction`` argument."""
    if bias_correction is None:
        return "none"
    if isinstance(bias_correction, str):
        return bias_correction
    return "qdm-mean" if getattr(bias_correction, "preserve_mean_change", False) else "qdm"


def conserve_blocks(
    fields: np.ndarray, reference: np.ndarray, factor: int, kind: str
) -> np.ndarray:
    """Rescale ``(..., Y, X)`` fields so that ``factor`` blocks average to ``reference``.

    ``reference`` is ``(..., Y/factor, X/factor)``, broadcast against the fields.
    Precipitation (``kind="log"``) is scaled multiplicatively (a block with no rain but a
    wet reference is set to the reference value); other fields are shifted additively. NaN
    cells are left out of the block means.

    Examples
    --------
    >>> out = conserve_blocks(np.ones((1, 2, 2)), np.full((1, 1, 1), 3.0), 2, "log")
    >>> out.tolist()
    [[[3.0, 3.0], [3.0, 3.0]]]
    """
    x = np.asarray(fields, dtype=np.float64)
    with np.errstate(all="ignore"):
        pooled = coarsen_block(x, factor)
        up = lambda a: np.repeat(np.repeat(a, factor, axis=-2), factor, axis=-1)  # noqa: E731
        ref = np.broadcast_to(reference, pooled.shape)
        if kind == "log":
            ratio = np.where(pooled > 0, ref / pooled, 1.0)
            out = np.where(up(pooled) > 0, x * up(ratio), up(ref) * np.isfinite(x))
        else:
            out = x + up(ref - pooled)
    out[~np.isfinite(x)] = np.nan
    return out.astype(np.float32)


def _conserve(
    result: xr.DataArray,
    reference: xr.DataArray,
    factor: int | None,
    tr: DataTransform,
    scale: float,
    offset: float,
) -> xr.DataArray:
    """Apply :func:`conserve_blocks` lazily; the reference is in model units."""
    tdim, lat, lon = result.dims[1:]
    if factor is None:
        raise EsmscaleError(
            "conserve=True needs the default target (the input grid refined by the model's "
            "factor), so that every input cell is an exact block of output cells; drop target= "
            "or set conserve=False."
        )
    ref = reference
    if ref.sizes[find_latlon(ref)[0]] == result.sizes[lat]:
        ref = ref.coarsen({find_latlon(ref)[0]: factor, find_latlon(ref)[1]: factor}).mean()
    ref = ref.rename(dict(zip(ref.dims[-2:], ("ref_y", "ref_x"), strict=True)))
    ref = ref.transpose(tdim, "ref_y", "ref_x").astype(np.float64)
    ref = ref.chunk({tdim: result.chunks[1] if result.chunks else -1})
    model_units = (result.astype(np.float64) * scale + offset).chunk({lat: -1, lon: -1})
    out = xr.apply_ufunc(
        conserve_blocks,
        model_units,
        ref,
        input_core_dims=[[lat, lon], ["ref_y", "ref_x"]],
        output_core_dims=[[lat, lon]],
        kwargs={"factor": factor, "kind": tr.kind},
        dask="parallelized",
        output_dtypes=[np.float32],
        keep_attrs=True,
    )
    out = ((out - offset) / scale).astype(np.float32).transpose(*result.dims)
    return out.assign_attrs(result.attrs)
