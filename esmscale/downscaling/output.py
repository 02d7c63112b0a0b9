"""Step 4 of the pipeline, wrap the output: coordinates, CF attributes, provenance, units back,
optional conservation of the input's cell means, and clipping of non-negative variables.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import dask.array as dsa
import numpy as np
import xarray as xr

from esmscale._version import __version__
from esmscale.downscaling.inputs import PreparedInput
from esmscale.errors import EsmscaleError
from esmscale.models.consistency import ConsistencyModel
from esmscale.models.transforms import DataTransform
from esmscale.prepare.clipping import attach_counts, clip_negative_lazy, compute_clipped
from esmscale.prepare.coords import find_latlon
from esmscale.prepare.interp import coarsen_block
from esmscale.prepare.physics import is_nonnegative

__all__ = [
    "MEMBER_ATTRS",
    "bias_label",
    "conserve_blocks",
    "member_coord",
    "output_attrs",
    "wrap_output",
]

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
    """CF attributes of the input plus esmscale provenance and a ``history`` line.

    Examples
    --------
    >>> from esmscale.models import ConsistencyConfig, ConsistencyModel
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16)))
    >>> da = xr.DataArray([1.0], dims="x", attrs={"units": "mm day-1", "history": "regridded"})
    >>> attrs = output_attrs(da, m, t_star=0.2, members=4)
    >>> attrs["units"], attrs["esmscale_model"], attrs["esmscale_t_star"]
    ('mm day-1', 'esmscale-cm', 0.2)
    >>> first, line = attrs["history"].splitlines()  # the input's history, then this run
    >>> first, line.endswith("downscale(model='esmscale-cm', t_star=0.2, members=4)")
    ('regridded', True)
    """
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


def bias_label(bias_correction: Any) -> str:
    """Provenance label of a ``bias_correction`` argument.

    A name is its own label; a trained :class:`~esmscale.prepare.bias.QDMCorrector` is
    ``"qdm-mean"`` if it was trained with ``preserve_mean_change=True``, else ``"qdm"``.

    Examples
    --------
    >>> bias_label(None), bias_label("qdm"), bias_label("qdm-mean")
    ('none', 'qdm', 'qdm-mean')
    """
    if bias_correction is None:
        return "none"
    if isinstance(bias_correction, str):
        return bias_correction
    return "qdm-mean" if getattr(bias_correction, "preserve_mean_change", False) else "qdm"


def wrap_output(
    out: dsa.Array,
    inp: PreparedInput,
    cm: ConsistencyModel,
    provenance: dict[str, Any],
    *,
    conserve: bool = False,
    default_target: bool = True,
    target: xr.Dataset | xr.DataArray | None = None,
) -> xr.DataArray:
    """The ``(member, time, lat, lon)`` DataArray around the graph's output ``out``.

    ``out`` is in model units; the result is in the input's units with the input's CF
    attributes and calendar, provenance attributes, optionally conservative (needs
    ``default_target``, or a ``target`` in the input's CRS whose blocks are the input's
    cells), and clipped at 0 for non-negative variables (computed at once for in-memory input).
    On a rotated-pole or projected target the output keeps the 2-D ``lat``/``lon`` and the
    grid-mapping coordinate of ``inp.fine`` and its ``grid_mapping`` attribute.

    Examples
    --------
    >>> from esmscale.datasets import synthetic_esm, synthetic_precip
    >>> from esmscale.downscaling.arrays import fine_spec
    >>> from esmscale.downscaling.inputs import prepare_inputs
    >>> from esmscale.downscaling.kernel import sample_fine
    >>> from esmscale.models import ConsistencyConfig, ConsistencyModel
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16), factor=4))
    >>> inp = prepare_inputs(synthetic_esm(synthetic_precip(16, 16, 2), factor=4), m)
    >>> ens = sample_fine(fine_spec(m, (16, 16), t_star=0.2), inp.fine.values, members=3)
    >>> out = wrap_output(dsa.from_array(ens), inp, m, {"t_star": 0.2, "members": 3})
    >>> out.dims, out.shape, out.attrs["units"], out.attrs["esmscale_members"]
    (('member', 'time', 'lat', 'lon'), (3, 2, 16, 16), 'mm day-1', 3)
    >>> bool((out >= 0).all())  # precipitation is clipped at 0
    True
    """
    da, fine, tdim = inp.da, inp.fine, inp.tdim
    out = (out - inp.offset) / inp.scale
    result = xr.DataArray(
        out.astype(np.float32),
        dims=("member", tdim, inp.lat, inp.lon),
        coords={
            "member": member_coord(out.shape[0]),
            tdim: fine[tdim],
            inp.lat: fine[inp.lat],
            inp.lon: fine[inp.lon],
        },
        name=inp.name,
        attrs=output_attrs(da, cm, **provenance),
    )
    result.attrs.pop("grid_mapping", None)  # the input's; the target's is set below
    grid_coords = {
        k: v
        for k, v in fine.coords.items()
        if k not in fine.dims and set(v.dims) <= {inp.lat, inp.lon}
    }
    if grid_coords:
        result = result.assign_coords(grid_coords)
    if "grid_mapping" in fine.attrs:
        result.attrs["grid_mapping"] = fine.attrs["grid_mapping"]
    result[tdim].attrs.update(da[tdim].attrs)
    result[tdim].encoding.update(
        {k: v for k, v in da[tdim].encoding.items() if k in ("calendar", "units", "dtype")}
    )
    tr = cm.config.transform
    if conserve:
        biased = provenance.get("bias_correction", "none") != "none"
        coarse_ref = fine if biased else (da * inp.scale + inp.offset)
        if default_target:
            result = _conserve(result, coarse_ref, cm.config.factor, tr, inp.scale, inp.offset)
        else:
            result = _conserve_on_target(result, coarse_ref, da, target, biased, tr, inp)
    if tr.kind == "log" or is_nonnegative(inp.name, da.attrs):
        clipped, counts = clip_negative_lazy(result.data)
        result = attach_counts(result.copy(data=clipped), counts)
    if not isinstance(da.data, dsa.Array):
        result = compute_clipped(result)
    if grid_coords:  # chunking above made them Dask arrays: keep them in memory, as given
        result = result.assign_coords(grid_coords)
    return result


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
    if "ref_y" not in ref.dims:
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


def _conserve_on_target(
    result: xr.DataArray,
    reference: xr.DataArray,
    da: xr.DataArray,
    target: xr.Dataset | xr.DataArray | None,
    biased: bool,
    tr: DataTransform,
    inp: PreparedInput,
) -> xr.DataArray:
    """Conservation on an explicit target whose ``k x k`` blocks are the input's cells."""
    from esmscale.prepare.grids import block_order, describe_grid, tiling_factor

    src = describe_grid(da)
    tgt = describe_grid(target if target is not None else inp.fine)
    k = tiling_factor(src, tgt)
    if k is None or biased:
        why = (
            "the bias-corrected reference is on the target grid"
            if biased and k is not None
            else f"the input's cells ({src.kind} grid, {src.shape[0]} x {src.shape[1]}, CRS "
            f"from {src.source}) are not exact blocks of the target's ({tgt.kind}, "
            f"{tgt.shape[0]} x {tgt.shape[1]}, CRS from {tgt.source})"
        )
        raise EsmscaleError(
            f"conserve=True needs every input cell to be an exact block of output cells; {why}. "
            "Use the default target, a target in the input's CRS that refines its cells by an "
            "integer factor, or conserve=False."
        )
    ref = reference.drop_vars(
        [c for c in reference.coords if c not in reference.dims], errors="ignore"
    )
    ref = ref.isel({src.ydim: block_order(src.y, tgt.y, k), src.xdim: block_order(src.x, tgt.x, k)})
    ref = ref.rename({src.ydim: "ref_y", src.xdim: "ref_x"}).transpose(..., "ref_y", "ref_x")
    return _conserve(result, ref, k, tr, inp.scale, inp.offset)
