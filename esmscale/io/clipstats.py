"""Clip counts of a lazy result, persisted while :func:`esmscale.io.zarr.write_zarr` writes.

A result whose variables carry lazy clip counts (:mod:`esmscale.prepare.clipping`) gets, for
each such variable, a small Zarr array ``esmscale_clip/<name>`` of ``(clipped, finite)`` pairs,
one row per Dask chunk of the counts, filled with -1 until written. Each row is written by its
own task in the same ``dask.compute`` as the data chunks, so the model runs once for both. A
resumed write computes only the rows still missing. When the store is sealed, a variable whose
rows are all present gets the attribute ``esmscale_clipped_fraction``; the sub-group is not a
data variable, so ``xr.open_zarr`` does not show it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import dask
import numpy as np
import xarray as xr
import zarr

from esmscale.prepare.clipping import CLIP_ATTR, clipped_fraction, lazy_counts

if TYPE_CHECKING:
    from dask.delayed import Delayed

__all__ = ["GROUP", "plan_counts", "seal_counts"]

GROUP = "esmscale_clip"


def _save(counts: np.ndarray, store: str, name: str, row: int) -> None:
    """Write the ``(1, 2)`` counts of one chunk into row ``row`` (one task per row)."""
    arr = zarr.open_array(store, path=f"{GROUP}/{name}", mode="r+", zarr_format=3)
    arr[row : row + 1] = np.asarray(counts, dtype=np.int64).reshape(1, 2)


def _rows(path: Path, name: str, n: int, resume: bool) -> tuple[zarr.Array, np.ndarray]:
    """The counts array of ``name`` (created if needed) and the rows still missing."""
    group = zarr.open_group(path, mode="r+", zarr_format=3).require_group(GROUP)
    if resume and name in group:
        arr = group[name]
        if isinstance(arr, zarr.Array) and arr.shape == (n, 2):
            return arr, np.flatnonzero((arr[:] < 0).any(axis=1))
        del group[name]
    arr = group.create_array(name, shape=(n, 2), chunks=(1, 2), dtype="int64", fill_value=-1)
    return arr, np.arange(n)


def plan_counts(path: Path, ds: xr.Dataset, names: list[str], resume: bool) -> list[Delayed]:
    """Tasks that write the missing clip-count rows of every variable of ``ds`` that has any.

    On a fresh write (``resume=False``) earlier counts are removed first.
    """
    if not resume:
        shutil.rmtree(path / GROUP, ignore_errors=True)
    tasks: list[Delayed] = []
    for name in names:
        counts = lazy_counts(ds[name])
        if counts is None:
            continue
        blocks = counts.to_delayed().ravel()
        _, missing = _rows(path, name, len(blocks), resume)
        for row in missing:
            tasks.append(dask.delayed(_save, pure=False)(blocks[row], str(path), name, int(row)))
    return tasks


def seal_counts(path: Path, ds: xr.Dataset, names: list[str]) -> None:
    """Set ``esmscale_clipped_fraction`` on each variable whose counts are all written."""
    root = zarr.open_group(path, mode="r+", zarr_format=3)
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
