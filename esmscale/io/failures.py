"""Name a failed tile by its coordinates: a task that kept killing its workers becomes an error
that says which member, times, latitudes and longitudes it covers, and how to go on.

The tile tasks of the pipeline have keys ``("esmscale-block-<token>", member chunk, time
chunk, y chunk, x chunk)`` (:mod:`esmscale.downscaling.graph`), and the array layers fused with them
keep that block index; :func:`tile_error` maps such a key to the coordinates of that block of
the result.

>>> import numpy as np, xarray as xr
>>> da = xr.DataArray(np.zeros((1, 4, 2, 2), "f4"), dims=("member", "time", "lat", "lon"),
...     coords={"time": [0, 1, 2, 3], "lat": [40.0, 41.0], "lon": [-3.0, -2.0]}, name="pr")
>>> describe_block(da.chunk({"time": 2}), (0, 1, 0, 0))
'member 0, time 2 .. 3, lat 40.0 .. 41.0, lon -3.0 .. -2.0'
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from esmscale.errors import EsmscaleError

__all__ = ["block_index", "describe_block", "tile_error"]


def block_index(key: Any) -> tuple[int, ...] | None:
    """The block index in a task key ``(name, i, j, ...)``, or ``None`` for any other key.

    Dask's blockwise fusion can merge a tile task into the array layers that follow it (the
    key then reads e.g. ``("concatenate-truediv-<token>", 1, 1, 1, 0)``); those layers keep
    the block index of the output, so any such key names the same tile.

    Examples
    --------
    >>> block_index(("tile-0a1b", 0, 2, 1, 1))
    (0, 2, 1, 1)
    >>> block_index("finalize-0a1b") is None
    True
    """
    if not (isinstance(key, tuple) and len(key) > 1 and isinstance(key[0], str)):
        return None
    if not all(isinstance(i, int | np.integer) for i in key[1:]):
        return None
    return tuple(int(i) for i in key[1:])


def _span(values: np.ndarray) -> str:
    first, last = values[0], values[-1]
    if isinstance(first, np.datetime64):
        return (
            f"{np.datetime_as_string(first, unit='D')} .. {np.datetime_as_string(last, unit='D')}"
        )
    return f"{first} .. {last}"


def describe_block(var: xr.DataArray, index: tuple[int, ...]) -> str:
    """``member m, time a .. b, lat c .. d, lon e .. f`` of block ``index`` of ``var``.

    Examples
    --------
    >>> var = xr.DataArray(np.zeros((4, 6)), dims=("lat", "lon"), name="pr",
    ...                    coords={"lat": np.arange(4.0), "lon": np.arange(6.0)}).chunk(2)
    >>> describe_block(var, (1, 2))
    'lat 2.0 .. 3.0, lon 4.0 .. 5.0'
    """
    if var.chunks is None or len(index) != var.ndim:
        raise EsmscaleError(f"block {index} does not index the chunks of {var.name!r}.")
    parts = []
    for dim, chunks, i in zip(var.dims, var.chunks, index, strict=True):
        if not 0 <= i < len(chunks):
            raise EsmscaleError(f"block {index} is outside the chunks of {var.name!r}.")
        start = int(sum(chunks[:i]))
        sl = slice(start, start + chunks[i])
        if dim in var.coords:
            values = np.asarray(var[dim].values[sl])
            parts.append(f"{dim} {_span(values) if values.size > 1 else values[0]}")
        else:
            parts.append(
                f"{dim} {sl.start}" if chunks[i] == 1 else f"{dim} {sl.start}..{sl.stop - 1}"
            )
    return ", ".join(parts)


def tile_error(err: BaseException, ds: xr.Dataset, store: str) -> EsmscaleError | None:
    """An error naming the tile behind ``err`` (a ``KilledWorker`` of a tile task), or ``None``.

    The message gives the tile's coordinates (not a Dask key), how many workers died running
    it, and how to go on: skip the tile (write the rest with a selection that leaves it out)
    or fix its input, then resume the store.

    Examples
    --------
    >>> from distributed.scheduler import KilledWorker
    >>> da = xr.DataArray(np.zeros((1, 4, 2, 2), "f4"), dims=("member", "time", "lat", "lon"),
    ...     coords={"time": [0, 1, 2, 3], "lat": [40.0, 41.0], "lon": [-3.0, -2.0]}, name="pr")
    >>> ds = da.chunk({"time": 2}).to_dataset()
    >>> killed = KilledWorker(("esmscale-block-0a1b", 0, 1, 0, 0), "tcp://10.0.0.5:4000", 2)
    >>> print(tile_error(killed, ds, "out.zarr"))  # doctest: +NORMALIZE_WHITESPACE
    the tile at member 0, time 2 .. 3, lat 40.0 .. 41.0, lon -3.0 .. -2.0 killed 3 workers in a
    row ... chunks already written are kept in 'out.zarr': then call write_zarr(..., resume=True)
    with the same result.
    >>> tile_error(MemoryError(), ds, "out.zarr") is None  # not a killed worker
    True
    """
    if type(err).__name__ != "KilledWorker":
        return None
    key = err.args[0] if err.args else None
    index = block_index(key)
    if index is None:
        return None
    where = None
    for var in ds.data_vars.values():
        if var.chunks is not None and var.ndim == len(index):
            try:
                where = describe_block(var, index)
                break
            except EsmscaleError:
                continue
    if where is None:
        where = f"output block {index}"
    tries = err.args[2] + 1 if len(err.args) > 2 and isinstance(err.args[2], int) else "several"
    return EsmscaleError(
        f"the tile at {where} killed {tries} workers in a row (each died while computing it, "
        "e.g. out of memory or a crash in the network), so the run was stopped. Fix the input "
        "of that tile (look for extreme or corrupt values there), or give the workers more "
        "memory, or skip it by writing a selection that leaves these times out; chunks "
        f"already written are kept in {store!r}:",
        python="then call write_zarr(..., resume=True) with the same result.",
        cli="then run the same command with --resume.",
    )
