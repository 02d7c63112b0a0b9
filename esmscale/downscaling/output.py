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


def bias_label(bias_correction: Any) -> str:
    """Provenance label of a ``bias_correction`` argument."""
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
) -> xr.DataArray:
    """The ``(member, time, lat, lon)`` DataArray around the graph's output ``out``.

    ``out`` is in model units; the result is in the input's units with the input's CF
    attributes and calendar, provenance attributes, optionally conservative (needs
    ``default_target``), and clipped at 0 for non-negative variables (computed at once for
    in-memory input).
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
    result[tdim].attrs.update(da[tdim].attrs)
    result[tdim].encoding.update(
        {k: v for k, v in da[tdim].encoding.items() if k in ("calendar", "units", "dtype")}
    )
    tr = cm.config.transform
    if conserve:
        biased = provenance.get("bias_correction", "none") != "none"
        coarse_ref = fine if biased else (da * inp.scale + inp.offset)
        factor = cm.config.factor if default_target else None
        result = _conserve(result, coarse_ref, factor, tr, inp.scale, inp.offset)
    if tr.kind == "log" or is_nonnegative(inp.name, da.attrs):
        clipped, counts = clip_negative_lazy(result.data)
        result = attach_counts(result.copy(data=clipped), counts)
    if not isinstance(da.data, dsa.Array):
        result = compute_clipped(result)
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
