"""Clip counts of a lazy result, persisted while :func:`esmscale.io.zarr.write_zarr` writes.

A result whose variables carry lazy clip counts (:mod:`esmscale.prepare.clipping`) gets, for
each such variable, a small Zarr array ``esmscale_clip/<name>`` of ``(clipped, finite)`` pairs,
one row per Dask chunk of the counts, filled with -1 until written. The rows and the variable's
chunks are written by one graph (:func:`esmscale.io.blockwrite.store_blocks`), so the model
runs once for both. A resumed write computes only the rows still missing. When the store is
sealed, a variable whose rows are all present gets the attribute ``esmscale_clipped_fraction``;
the sub-group is not a data variable, so ``xr.open_zarr`` does not show it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
import zarr
from xarray.conventions import encode_cf_variable

from esmscale.io.blockwrite import BlockWrite, store_blocks
from esmscale.io.retry import RetryingTarget
from esmscale.prepare.clipping import CLIP_ATTR, COUNTS_KEY, clipped_fraction, lazy_counts

if TYPE_CHECKING:
    from esmscale.io.stores import Location

__all__ = ["GROUP", "plan_counts", "seal_counts"]

GROUP = "esmscale_clip"


def _rows(path: Location, name: str, n: int, resume: bool) -> tuple[zarr.Array, np.ndarray]:
    """The counts array of ``name`` (created if needed) and the rows still missing."""
    group = zarr.open_group(path.zarr_store(), mode="r+", zarr_format=3).require_group(GROUP)
    if resume and name in group:
        arr = group[name]
        if isinstance(arr, zarr.Array) and arr.shape == (n, 2):
            return arr, np.flatnonzero((np.asarray(arr[:]) < 0).any(axis=1))
        del group[name]
    arr = group.create_array(name, shape=(n, 2), chunks=(1, 2), dtype="int64", fill_value=-1)
    return arr, np.arange(n)


def _blocks(chunks: tuple[tuple[int, ...], ...]) -> list[tuple[tuple[int, ...], tuple[slice, ...]]]:
    starts = [np.cumsum((0, *c)) for c in chunks]
    return [
        (idx, tuple(slice(int(s[i]), int(s[i + 1])) for s, i in zip(starts, idx, strict=True)))
        for idx in np.ndindex(*(len(c) for c in chunks))
    ]


def plan_counts(
    path: Location, ds: xr.Dataset, names: list[str], resume: bool, present: Any
) -> tuple[list[Any], list[str], int, int, int]:
    """Writes of the variables that carry clip counts: their missing chunks and count rows.

    The chunks and the count rows go into one graph so that both are optimised
    as one graph and the tasks they share (the model) run once. ``present(path, name)`` lists
    the chunks already in the store (resume). Returns the lazy writes, the variables handled,
    and the numbers of chunks in all, skipped, and bytes to write. On a fresh write
    (``resume=False``) earlier counts are removed first.

    Examples
    --------
    A clipped variable of two chunks, its metadata written (as ``write_zarr`` does first):

    >>> import tempfile
    >>> import dask
    >>> import dask.array as dsa
    >>> from esmscale.io.stores import open_location
    >>> from esmscale.prepare.clipping import attach_counts, clip_negative_lazy
    >>> x = np.array([-1.0, 2.0, -3.0, 4.0], dtype="float32")
    >>> data, counts = clip_negative_lazy(dsa.from_array(x, chunks=2))
    >>> ds = attach_counts(xr.DataArray(data, dims="x", name="pr"), counts).to_dataset()
    >>> path = open_location(f"{tempfile.mkdtemp()}/out.zarr")
    >>> _ = ds.to_zarr(path.zarr_store(), compute=False, zarr_format=3, consolidated=False)
    >>> writes, handled, n_total, n_skipped, n_bytes = plan_counts(path, ds, ["pr"], False, None)
    >>> handled, n_total, n_skipped, n_bytes, len(writes)  # one graph: 2 chunks + 2 count rows
    (['pr'], 2, 0, 16, 1)
    >>> _ = dask.compute(*writes)
    >>> zarr.open_group(path.zarr_store(), mode="r")[f"{GROUP}/pr"][:].tolist()
    [[1, 2], [1, 2]]
    """
    if not resume:
        path.remove(GROUP)
    blocks: list[BlockWrite] = []
    handled: list[str] = []
    n_total = n_skipped = n_bytes = 0
    for name in names:
        counts = lazy_counts(ds[name])
        if counts is None:
            continue
        handled.append(name)
        var = ds[name].variable.copy(deep=False)
        var.encoding = {k: v for k, v in var.encoding.items() if k != COUNTS_KEY}
        data = encode_cf_variable(var, name=name).data
        # chunks equal to the fill value are written too: a missing chunk means "not written"
        arr = zarr.open_array(path.zarr_store(), path=name, mode="r+", zarr_format=3)
        target = RetryingTarget(arr.with_config({"write_empty_chunks": True}), label=name)
        have = present(path, name) if resume else set()
        for index, region in _blocks(data.chunks):
            n_total += 1
            if index in have:
                n_skipped += 1
                continue
            n_bytes += int(np.prod([r.stop - r.start for r in region])) * data.dtype.itemsize
            blocks.append((data, index, target, region))
        rows, missing = _rows(path, name, counts.numblocks[0], resume)
        row_target = RetryingTarget(rows, label=f"{GROUP}/{name}")
        for row in missing:
            region = (slice(int(row), int(row) + 1), slice(0, 2))
            blocks.append((counts, (int(row), *([0] * (counts.ndim - 1))), row_target, region))
    if not blocks:
        return [], handled, n_total, n_skipped, n_bytes
    return [store_blocks(blocks, "esmscale-write")], handled, n_total, n_skipped, n_bytes


def seal_counts(path: Location, ds: xr.Dataset, names: list[str]) -> None:
    """Set ``esmscale_clipped_fraction`` on each variable whose counts are all written.

    Examples
    --------
    After the writes of :func:`plan_counts` (here, two of four values clipped):

    >>> import tempfile
    >>> import dask
    >>> import dask.array as dsa
    >>> from esmscale.io.stores import open_location
    >>> from esmscale.prepare.clipping import attach_counts, clip_negative_lazy
    >>> x = np.array([-1.0, 2.0, -3.0, 4.0], dtype="float32")
    >>> data, counts = clip_negative_lazy(dsa.from_array(x, chunks=2))
    >>> ds = attach_counts(xr.DataArray(data, dims="x", name="pr"), counts).to_dataset()
    >>> path = open_location(f"{tempfile.mkdtemp()}/out.zarr")
    >>> _ = ds.to_zarr(path.zarr_store(), compute=False, zarr_format=3, consolidated=False)
    >>> writes, handled, n_total, n_skipped, n_bytes = plan_counts(path, ds, ["pr"], False, None)
    >>> _ = dask.compute(*writes)
    >>> seal_counts(path, ds, ["pr"])
    >>> xr.open_zarr(path.zarr_store(), consolidated=False).pr.attrs
    {'esmscale_clipped_fraction': 0.5}
    """
    root = zarr.open_group(path.zarr_store(), mode="r+", zarr_format=3)
    if GROUP not in root:
        return
    group = root[GROUP]
    assert isinstance(group, zarr.Group)
    for name in names:
        if lazy_counts(ds[name]) is None or name not in group:
            continue
        rows = np.asarray(group[name][:])  # type: ignore[index]
        if (rows >= 0).all():
            root[name].attrs[CLIP_ATTR] = clipped_fraction(rows)
