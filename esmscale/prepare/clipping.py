"""Non-negative outputs by construction, with the fraction of values that had to be clipped.

Outputs of non-negative variables (precipitation, see
:func:`esmscale.prepare.physics.is_nonnegative`) pass through :func:`clip_negative`: negative
values are set to 0 and counted. The provenance attribute :data:`CLIP_ATTR`
(``esmscale_clipped_fraction``) is the number of values set to 0 divided by the number of finite
values.

For a lazy (Dask) result the counts are a small Dask array of ``(clipped, finite)`` pairs, one
per chunk, that shares its tasks with the data. It travels in the variable's ``encoding`` under
:data:`COUNTS_KEY` together with the shape it describes, and becomes the attribute when the data
are computed: by :func:`compute_clipped` (one ``dask.compute`` of data and counts) or by
:func:`esmscale.io.zarr.write_zarr` (computed with the chunk writes, stored per chunk in the
store so that a resumed write is counted in full, and set on the variable when the store is
sealed). Until then the attribute is absent, never guessed.
"""

from __future__ import annotations

import operator
from typing import Any

import dask
import dask.array as dsa
import numpy as np
import xarray as xr
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

__all__ = [
    "CLIP_ATTR",
    "COUNTS_KEY",
    "attach_counts",
    "clip_negative",
    "clip_negative_lazy",
    "clipped_fraction",
    "compute_clipped",
    "lazy_counts",
]

CLIP_ATTR = "esmscale_clipped_fraction"
COUNTS_KEY = "esmscale_clip_counts"


def clip_negative(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Set negative values to 0; return the result and ``[n_clipped, n_finite]``.

    Examples
    --------
    >>> out, counts = clip_negative(np.array([-1.0, 0.0, 2.0, np.nan]))
    >>> out.tolist()[:3], counts.tolist()
    ([0.0, 0.0, 2.0], [1, 3])
    """
    v = np.asarray(values)
    neg = v < 0
    counts = np.array([int(neg.sum()), int(np.isfinite(v).sum())], dtype=np.int64)
    if counts[0]:
        v = np.where(neg, v.dtype.type(0), v)
    return v, counts


def _clip_block(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out, counts = clip_negative(block)
    return out, counts[None]


def clip_negative_lazy(data: dsa.Array) -> tuple[dsa.Array, dsa.Array]:
    """:func:`clip_negative` chunk by chunk; the counts are an ``(n_chunks, 2)`` Dask array.

    Examples
    --------
    >>> data = dsa.from_array(np.array([-1.0, 2.0, -3.0, 4.0]), chunks=2)
    >>> out, counts = clip_negative_lazy(data)
    >>> out.compute().tolist(), counts.compute().tolist()
    ([0.0, 2.0, 0.0, 4.0], [[1, 2], [1, 2]])
    """
    # One layer of (values, counts) pairs that refers to the input blocks by key, and two of
    # getitems: linear in the number of chunks. Unoptimised: optimising here would fuse the
    # graph and drop the tile tasks' annotations (their worker resources).
    token = dask.base.tokenize(data)
    pair, values, tally = (f"{p}-{token}" for p in ("clip-pair", "clip-negative", "clip-counts"))
    indices = list(np.ndindex(*data.numblocks))
    deps: list[Any] = [data]  # dask's DaskCollection protocol does not type Array
    pairs = HighLevelGraph.from_collections(
        pair, {(pair, *i): (_clip_block, (data.name, *i)) for i in indices}, dependencies=deps
    )
    outs = {(values, *i): (operator.getitem, (pair, *i), 0) for i in indices}
    cnts = {(tally, k, 0): (operator.getitem, (pair, *i), 1) for k, i in enumerate(indices)}

    def on_pairs(name: str, layer: dict[Any, Any]) -> HighLevelGraph:
        layers = {**pairs.layers, name: MaterializedLayer(layer)}
        return HighLevelGraph(layers, {**pairs.dependencies, name: {pair}})

    out = dsa.Array(on_pairs(values, outs), values, data.chunks, meta=data._meta)
    counts = dsa.Array(
        on_pairs(tally, cnts), tally, ((1,) * len(indices), (2,)), meta=np.empty((0, 0), np.int64)
    )
    return out, counts


def clipped_fraction(counts: np.ndarray) -> float:
    """Clipped values over finite values from ``(..., 2)`` count pairs (0 if none finite).

    Examples
    --------
    >>> clipped_fraction(np.array([[1, 2], [0, 2]]))
    0.25
    >>> clipped_fraction(np.array([0, 0]))
    0.0
    """
    c = np.asarray(counts, dtype=np.int64).reshape(-1, 2).sum(axis=0)
    return float(c[0] / c[1]) if c[1] else 0.0


def attach_counts(result: xr.DataArray, counts: dsa.Array) -> xr.DataArray:
    """Record the lazy clip ``counts`` of ``result`` (in place; returns ``result``).

    Examples
    --------
    >>> import xarray as xr
    >>> data, counts = clip_negative_lazy(dsa.from_array(np.array([-1.0, 1.0]), chunks=1))
    >>> result = attach_counts(xr.DataArray(data, dims="x"), counts)
    >>> lazy_counts(result) is counts
    True
    """
    result.encoding[COUNTS_KEY] = (counts, tuple(result.shape))
    return result


def lazy_counts(var: xr.DataArray | xr.Variable) -> dsa.Array | None:
    """The lazy clip counts of ``var``, if recorded for an array of this shape.

    Examples
    --------
    >>> import xarray as xr
    >>> data, counts = clip_negative_lazy(dsa.from_array(np.array([-1.0, 1.0]), chunks=1))
    >>> result = attach_counts(xr.DataArray(data, dims="x"), counts)
    >>> lazy_counts(result).compute().tolist(), lazy_counts(result[:1]) is None
    ([[1, 1], [0, 1]], True)
    """
    entry: Any = var.encoding.get(COUNTS_KEY)
    if entry is None:
        return None
    counts, shape = entry
    return counts if tuple(shape) == tuple(var.shape) else None


def compute_clipped(result: xr.DataArray) -> xr.DataArray:
    """Compute ``result`` and its clip counts together; set :data:`CLIP_ATTR`.

    A result without recorded counts is simply computed.

    Examples
    --------
    >>> import xarray as xr
    >>> data, counts = clip_negative_lazy(dsa.from_array(np.array([-1.0, 1.0, 2.0, 3.0]), chunks=2))
    >>> result = attach_counts(xr.DataArray(data, dims="x"), counts)
    >>> compute_clipped(result).attrs[CLIP_ATTR]
    0.25
    """
    counts = lazy_counts(result)
    if counts is None:
        return result.compute()
    data, cnt = dask.compute(result.data, counts)
    out = result.copy(data=data)
    out.encoding.pop(COUNTS_KEY, None)
    out.attrs[CLIP_ATTR] = clipped_fraction(cnt)
    return out
