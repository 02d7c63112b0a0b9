"""Failure-tolerant Zarr writes of lazy (dask-backed) ensembles.

A store is written in three steps, so that an interrupted write can be resumed:

1. **Template.** All metadata and coordinates are written first (``compute=False``), with one Zarr
   chunk per Dask chunk, the CF dataset attributes ``Conventions`` (``"CF-1.8"`` unless the
   result has its own), ``title`` and ``history`` (the result's, else a line for the write),
   and the root attributes ``esmscale_store = "esmscale-zarr-v1"`` (the marker that the store
   is ours), ``esmscale_complete = False`` and ``esmscale_variables`` (the data variables,
   checked on resume).
2. **Regions.** Each Dask block of each data variable is written with
   ``to_zarr(region=...)``. Blocks and Zarr chunks coincide, so no two tasks touch the same Zarr
   chunk and every chunk file present in the store is a finished block (the local store writes a
   temporary file and renames it into place).
3. **Seal.** Metadata are consolidated and ``esmscale_complete`` is set to ``True`` together with
   an ``esmscale_written`` UTC timestamp. A result with lazy clip counts (non-negative outputs,
   :mod:`esmscale.prepare.clipping`) gets ``esmscale_clipped_fraction`` on its variable, from
   counts computed together with the chunks and kept per chunk in the store
   (:mod:`esmscale.io.clipstats`), so that a resumed write is counted in full.

With ``resume=True`` the chunk keys already present in the store are listed (a missing chunk
would silently read back as the fill value, so presence is checked in the store itself) and only
the missing blocks are computed.

Chunks equal to the fill value are always written (Zarr's ``write_empty_chunks`` is set to
``True`` for the template and for every region write), so a missing chunk always means
"not written yet".

Dask chunks must be uniform along each dimension except for a smaller last chunk; irregular
chunks are refused with an error that gives the ``.chunk(...)`` call to fix them (rechunking
silently could change the cost of the computation by a lot).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import itertools
import math
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import dask
import dask.array
import numpy as np
import xarray as xr
import zarr
from dask.diagnostics import ProgressBar
from xarray.conventions import encode_cf_variable

from esmscale._version import __version__
from esmscale.errors import EsmscaleError
from esmscale.io.blockwrite import BlockWrite, store_blocks
from esmscale.io.clipstats import plan_counts, seal_counts
from esmscale.io.failures import tile_error
from esmscale.io.retry import RetryingTarget
from esmscale.io.stores import Location, StoreLike, open_location

if TYPE_CHECKING:
    import distributed
    from dask.delayed import Delayed

__all__ = [
    "STORE_FORMAT",
    "WriteSummary",
    "chunk_counts",
    "existing_chunks",
    "is_complete",
    "is_ours",
    "write_zarr",
]

STORE_FORMAT = "esmscale-zarr-v1"
"""Value of the ``esmscale_store`` root attribute that marks a store written by esmscale."""

_MARKER = "esmscale_store"
_COMPLETE = "esmscale_complete"
_WRITTEN = "esmscale_written"
_VARIABLES = "esmscale_variables"
_DATAARRAY_NAME = "__xarray_dataarray_variable__"  # what xarray names an unnamed DataArray
_ZARR_FILES = ("zarr.json", ".zgroup", ".zarray", ".zattrs", ".zmetadata")
# Encoding keys carried over from a variable's own ``.encoding``; chunking keys are replaced and
# backend-specific keys (netCDF ``zlib``, Zarr v2 ``compressor``, ...) are dropped.
_KEPT_ENCODING = (
    "dtype",
    "_FillValue",
    "fill_value",
    "missing_value",
    "scale_factor",
    "add_offset",
    "units",
    "calendar",
    "compressors",
    "filters",
    "serializer",
)

_State = Literal["absent", "empty_dir", "file", "other_dir", "foreign_zarr", "ours"]


@dataclass(frozen=True)
class WriteSummary:
    """What :func:`write_zarr` did.

    Attributes
    ----------
    store : pathlib.Path or str
        The store written: its path, or its URL (user information masked).
    variables : tuple of str
        Data variables written, in store order.
    n_chunks_total : int
        Chunks of all data variables in the store.
    n_chunks_written : int
        Chunks computed and written by this call.
    n_chunks_skipped : int
        Chunks already present (``resume=True``) and therefore not computed.
    seconds : float
        Wall-clock duration of the call.
    bytes_written : int
        Approximate bytes written: the uncompressed size of the blocks computed by this call
        (the files on disk are smaller when compressed).
    complete : bool
        Whether the store is complete (``esmscale_complete`` is ``True``).

    Examples
    --------
    >>> import tempfile
    >>> import dask.array as da
    >>> import xarray as xr
    >>> result = xr.DataArray(da.zeros((4, 6), chunks=(2, 3)), dims=("time", "x"), name="pr")
    >>> summary = write_zarr(result, f"{tempfile.mkdtemp()}/out.zarr", progress=False)
    >>> summary.variables, summary.n_chunks_total, summary.n_chunks_written, summary.complete
    (('pr',), 4, 4, True)
    """

    store: Path | str
    variables: tuple[str, ...]
    n_chunks_total: int
    n_chunks_written: int
    n_chunks_skipped: int
    seconds: float
    bytes_written: int
    complete: bool


def _root_attrs(path: Location) -> dict[str, Any] | None:
    """Attributes of a Zarr v3 root group, read from ``zarr.json`` without opening the store."""
    meta = path.read_json("zarr.json")
    if meta is None:
        return None
    attrs = meta.get("attributes", {})
    return attrs if isinstance(attrs, dict) else {}


def _state(path: Location) -> _State:
    """Classify what lies at ``path``; reads only, never modifies."""
    if path.isfile():
        return "file"
    children = path.children()
    if not children:
        return "empty_dir" if path.isdir() else "absent"
    if not any(name in children for name in _ZARR_FILES):
        return "other_dir"
    attrs = _root_attrs(path)
    if attrs is not None and attrs.get(_MARKER) == STORE_FORMAT:
        return "ours"
    return "foreign_zarr"


def is_ours(store: StoreLike, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether ``store`` is a Zarr store written by :func:`write_zarr` (complete or not).

    Examples
    --------
    >>> import tempfile
    >>> import xarray as xr
    >>> tmp = tempfile.mkdtemp()
    >>> _ = write_zarr(xr.DataArray([1.0, 2.0], dims="x", name="v"), f"{tmp}/a.zarr",
    ...                progress=False)
    >>> _ = xr.Dataset({"v": ("x", [1.0])}).to_zarr(f"{tmp}/b.zarr", zarr_format=2)
    >>> is_ours(f"{tmp}/a.zarr"), is_ours(f"{tmp}/b.zarr"), is_ours(f"{tmp}/none.zarr")
    (True, False, False)
    """
    return _state(open_location(store, storage_options)) == "ours"


def is_complete(store: StoreLike, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether ``store`` is an esmscale Zarr store whose write finished.

    Parameters
    ----------
    store : str or os.PathLike
        Path or fsspec URL of the store.
    storage_options : mapping, optional
        Options of a URL's filesystem (:func:`esmscale.io.stores.open_location`).

    Returns
    -------
    bool
        ``True`` only for a store written by :func:`write_zarr` whose root attribute
        ``esmscale_complete`` is ``True``; ``False`` for anything else, including a missing path.

    Examples
    --------
    >>> import tempfile
    >>> import dask.array as da
    >>> import xarray as xr
    >>> tmp = tempfile.mkdtemp()
    >>> result = xr.DataArray(da.zeros((4, 6), chunks=(2, 3)), dims=("time", "x"), name="pr")
    >>> is_complete(f"{tmp}/out.zarr")
    False
    >>> _ = write_zarr(result, f"{tmp}/out.zarr", progress=False)
    >>> is_complete(f"{tmp}/out.zarr")
    True
    """
    path = open_location(store, storage_options)
    if _state(path) != "ours":
        return False
    attrs = _root_attrs(path) or {}
    return attrs.get(_COMPLETE) is True


def _array_meta(path: Location, name: str) -> dict[str, Any]:
    """Zarr v3 metadata of array ``name`` in the store at ``path``."""
    meta = path.read_json(f"{name}/zarr.json")
    if meta is None or meta.get("node_type") != "array":
        raise EsmscaleError(
            f"no Zarr v3 array {name!r} in store {str(path)!r} ({name}/zarr.json is "
            "missing or not array metadata); check the variable name and that the store was "
            "written by esmscale.io.zarr.write_zarr (Zarr format 3)"
        )
    return meta


def _chunk_shape(meta: Mapping[str, Any]) -> tuple[int, ...]:
    grid = meta.get("chunk_grid", {})
    if grid.get("name") != "regular":
        raise EsmscaleError(
            f"unsupported Zarr chunk grid {grid.get('name')!r}; only regular chunk grids "
            "(as written by esmscale.io.zarr.write_zarr) can be listed"
        )
    return tuple(int(c) for c in grid["configuration"]["chunk_shape"])


def existing_chunks(
    store: StoreLike, name: str, storage_options: Mapping[str, Any] | None = None
) -> set[tuple[int, ...]]:
    """Chunk indices of array ``name`` that are present in the store.

    The keys are listed in the store itself (files under the array's folder, e.g.
    ``pr/c/0/1/0/0``): reading a missing chunk would silently return the fill value, so reading
    data cannot tell a missing chunk from a written one. Left-over temporary files of an
    interrupted write (``*.partial``) are not chunks and are ignored.

    Parameters
    ----------
    store : str or os.PathLike
        Path or fsspec URL of a Zarr v3 store (listed in one pass, also on object storage).
    name : str
        Name of the array (the data variable).
    storage_options : mapping, optional
        Options of a URL's filesystem (:func:`esmscale.io.stores.open_location`).

    Returns
    -------
    set of tuple of int
        One chunk-grid index per chunk present, e.g. ``{(0, 1, 0, 0), ...}``.

    Raises
    ------
    EsmscaleError
        If the array does not exist or uses an unsupported chunk layout.

    Examples
    --------
    >>> import tempfile
    >>> import dask.array as da
    >>> import xarray as xr
    >>> tmp = tempfile.mkdtemp()
    >>> result = xr.DataArray(da.ones((4, 6), chunks=(2, 3)), dims=("time", "x"), name="pr")
    >>> _ = write_zarr(result, f"{tmp}/out.zarr", progress=False)
    >>> sorted(existing_chunks(f"{tmp}/out.zarr", "pr"))
    [(0, 0), (0, 1), (1, 0), (1, 1)]
    """
    path = open_location(store, storage_options)
    meta = _array_meta(path, name)
    shape = tuple(int(s) for s in meta["shape"])
    grid = tuple(math.ceil(s / c) for s, c in zip(shape, _chunk_shape(meta), strict=True))
    encoding = meta.get("chunk_key_encoding", {"name": "default"})
    separator = encoding.get("configuration", {}).get("separator")
    if encoding.get("name") == "default":
        separator = separator or "/"
        prefix = "c"
    elif encoding.get("name") == "v2":
        separator = separator or "."
        prefix = ""
    else:
        raise EsmscaleError(
            f"array {name!r} in {str(path)!r} uses chunk key encoding {encoding.get('name')!r}; "
            "only 'default' and 'v2' can be listed. Rewrite the store with write_zarr."
        )
    found: set[tuple[int, ...]] = set()
    for key in path.files(name):
        index = _parse_chunk_key(key, prefix, separator, len(shape))
        if index is not None and all(0 <= i < n for i, n in zip(index, grid, strict=True)):
            found.add(index)
    return found


def chunk_counts(
    store: StoreLike, storage_options: Mapping[str, Any] | None = None
) -> tuple[int, int] | None:
    """Chunks written so far and in all, over the data variables of an esmscale store.

    Returns
    -------
    tuple of int or None
        ``(written, total)``; ``None`` if ``store`` holds no esmscale store (yet).

    Examples
    --------
    >>> import tempfile
    >>> import dask.array as da
    >>> import xarray as xr
    >>> tmp = tempfile.mkdtemp()
    >>> result = xr.DataArray(da.ones((4, 6), chunks=(2, 3)), dims=("time", "x"), name="pr")
    >>> _ = write_zarr(result, f"{tmp}/out.zarr", progress=False)
    >>> chunk_counts(f"{tmp}/out.zarr"), chunk_counts(f"{tmp}/none.zarr")
    ((4, 4), None)
    """
    path = open_location(store, storage_options)
    names = (_root_attrs(path) or {}).get(_VARIABLES)
    if not names:
        return None
    written = total = 0
    for name in names:
        try:
            meta = _array_meta(path, name)
        except EsmscaleError:
            return None  # the template itself was not written completely
        shape = [int(s) for s in meta["shape"]]
        total += math.prod(math.ceil(s / c) for s, c in zip(shape, _chunk_shape(meta), strict=True))
        written += len(existing_chunks(path, name))
    return written, total


def _parse_chunk_key(key: str, prefix: str, separator: str, ndim: int) -> tuple[int, ...] | None:
    """Chunk index encoded by ``key``, or ``None`` if ``key`` is not a chunk key."""
    if ndim == 0:
        return () if key == (prefix or "0") else None
    if prefix:
        if not key.startswith(prefix + separator):
            return None
        key = key[len(prefix) + len(separator) :]
    parts = key.split(separator)
    if len(parts) != ndim or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def _as_dataset(result: xr.DataArray | xr.Dataset) -> xr.Dataset:
    """The result as a Dataset whose data variables are dask-backed and coordinates in memory."""
    if isinstance(result, xr.DataArray):
        name = _DATAARRAY_NAME if result.name is None else result.name
        if name in result.coords:
            raise EsmscaleError(
                f"cannot write DataArray named {name!r}: a coordinate has the same name; "
                "rename it first, e.g. result.rename('downscaled')"
            )
        ds = result.to_dataset(name=name, promote_attrs=False)
    elif isinstance(result, xr.Dataset):
        ds = result.copy(deep=False)
    else:
        raise EsmscaleError(
            f"write_zarr expects an xarray DataArray or Dataset, got {type(result).__name__}; "
            "wrap the array in xr.DataArray(..., dims=...) first"
        )
    if not ds.data_vars:
        raise EsmscaleError(
            "the result has no data variables, so there is nothing to write; "
            "pass the downscaled DataArray/Dataset itself"
        )
    for name, var in ds.data_vars.items():
        if not isinstance(name, str):
            raise EsmscaleError(
                f"data variable name {name!r} is not a string; Zarr needs string names, "
                "rename it with result.rename(...)"
            )
        if var.ndim == 0:
            raise EsmscaleError(
                f"data variable {name!r} is a scalar; write_zarr writes gridded data by chunks. "
                "Store it as an attribute or a coordinate instead"
            )
        if var.chunks is None:  # in memory: one chunk (small by construction)
            ds[name] = var.chunk(dict.fromkeys(var.dims, -1))
    # Coordinates are written with the template, which does not compute dask arrays.
    lazy = [k for k, c in ds.coords.items() if c.chunks is not None]
    if lazy:
        ds = ds.assign_coords({k: ds.coords[k].compute() for k in lazy})
    return ds


def _zarr_chunks(ds: xr.Dataset) -> dict[str, tuple[int, ...]]:
    """Zarr chunk shape (= uniform dask chunk size) of each data variable; checks uniformity."""
    out: dict[str, tuple[int, ...]] = {}
    for name, var in ds.data_vars.items():
        assert var.chunks is not None  # ensured by _as_dataset
        sizes = []
        for dim, chunks in zip(var.dims, var.chunks, strict=True):
            if len(chunks) == 0 or chunks[0] == 0:
                raise EsmscaleError(
                    f"data variable {name!r} has an empty dimension {dim!r}; "
                    "there is nothing to write, drop the variable or select data first"
                )
            first = chunks[0]
            if any(c != first for c in chunks[:-1]) or chunks[-1] > first:
                raise EsmscaleError(
                    f"data variable {name!r} has irregular dask chunks along {dim!r}: "
                    f"{chunks}; Zarr needs equal chunks (only the last may be smaller). "
                    f"Rechunk first, e.g. result.chunk({{{str(dim)!r}: {first}}})"
                )
            sizes.append(int(first))
        out[str(name)] = tuple(sizes)
    return out


def _encoding(ds: xr.Dataset, chunks: Mapping[str, tuple[int, ...]]) -> dict[str, dict[str, Any]]:
    """Template encoding: the variables' own CF/codec settings with Zarr chunks = dask chunks.

    Coordinates keep their own settings, made CF-1.8 clean where they say nothing: no
    ``_FillValue`` (CF forbids it on coordinate variables) and times as ``float64`` (CF-1.8 has
    no 64-bit integer type, xarray's default for times).
    """
    enc: dict[str, dict[str, Any]] = {}
    for name, shape in chunks.items():
        own = ds[name].encoding
        enc[name] = {k: own[k] for k in _KEPT_ENCODING if k in own}
        enc[name]["chunks"] = shape
    for cname, coord in ds.coords.items():
        own = coord.encoding
        cenc = {k: own[k] for k in _KEPT_ENCODING if k in own}
        kind, values = coord.dtype.kind, coord.values
        if "_FillValue" not in cenc and "fill_value" not in cenc:
            cenc["_FillValue"] = None
        if "dtype" not in cenc and (kind == "M" or (kind == "O" and _is_cftime(values))):
            cenc["dtype"] = "float64"
        enc[str(cname)] = cenc
    return enc


def _is_cftime(values: np.ndarray) -> bool:
    """Whether an object array holds cftime dates."""
    first = values.flat[0] if values.size else None
    return type(first).__module__.startswith("cftime")


def _global_attrs(ds: xr.Dataset, path: Location) -> dict[str, Any]:
    """Dataset attributes of a written store: CF ``Conventions``, ``title`` and ``history``.

    ``history`` is the dataset's own, else the data variables' history lines (each once, in
    order), else one line saying when the store was written.
    """
    attrs = dict(ds.attrs)
    attrs.setdefault("Conventions", "CF-1.8")
    names = [
        f"{k} ({v.attrs['long_name']})" if "long_name" in v.attrs else str(k)
        for k, v in ds.data_vars.items()
    ]
    attrs.setdefault("title", "esmscale output: " + ", ".join(names))
    lines = [str(attrs["history"])] if attrs.get("history") else []
    if not lines:
        for var in ds.data_vars.values():
            for line in str(var.attrs.get("history", "")).splitlines():
                if line and line not in lines:
                    lines.append(line)
    if not lines:  # a result made elsewhere: at least say when and by what it was written
        now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"{now}: written by esmscale {__version__} write_zarr({path.name!r})")
    attrs["history"] = "\n".join(lines)
    return attrs


def _blocks(var: xr.DataArray) -> Iterator[tuple[tuple[int, ...], dict[str, slice]]]:
    """Block index and the matching region of every dask block of ``var``, in C order."""
    assert var.chunks is not None
    starts = [np.concatenate([[0], np.cumsum(c)]) for c in var.chunks]
    for index in itertools.product(*(range(len(c)) for c in var.chunks)):
        region = {
            str(dim): slice(int(s[i]), int(s[i + 1]))
            for dim, s, i in zip(var.dims, starts, index, strict=True)
        }
        yield index, region


def _set_root_attrs(path: Location, attrs: Mapping[str, Any]) -> None:
    group = zarr.open_group(path.zarr_store(), mode="r+", zarr_format=3)
    group.attrs.update(dict(attrs))


#: The fix when a store cannot be resumed, for Python callers and for the command line.
_START_OVER = {
    "python": "pass overwrite=True (and resume=False) to start over, or write to another path",
    "cli": "add --overwrite (instead of --resume) to start over, or write to another --output",
}


def _check_resumable(path: Location, ds: xr.Dataset, chunks: Mapping[str, tuple[int, ...]]) -> None:
    """Raise unless the store at ``path`` has the layout the new result would get."""
    attrs = _root_attrs(path) or {}
    stored = attrs.get(_VARIABLES)
    if stored is not None and list(stored) != list(chunks):
        raise EsmscaleError(
            f"cannot resume {str(path)!r}: it holds data variables {list(stored)}, the result "
            f"has {list(chunks)};",
            **_START_OVER,
        )
    for name, shape in chunks.items():
        var = ds[name]
        try:
            meta = _array_meta(path, name)
        except EsmscaleError:
            raise EsmscaleError(
                f"cannot resume {str(path)!r}: data variable {name!r} is missing from the store "
                "(the first write was probably interrupted while writing metadata);",
                **_START_OVER,
            ) from None
        got = {
            "shape": tuple(int(s) for s in meta["shape"]),
            "chunks": _chunk_shape(meta),
            "dims": tuple(meta.get("dimension_names") or ()),
        }
        want = {"shape": tuple(var.shape), "chunks": shape, "dims": tuple(map(str, var.dims))}
        for key in ("dims", "shape", "chunks"):
            if got[key] != want[key]:
                raise EsmscaleError(
                    f"cannot resume {str(path)!r}: data variable {name!r} has {key} "
                    f"{got[key]} in the store but {want[key]} in the result; resume needs the "
                    "same result (same dims, shape and dask chunks) as the interrupted write, or",
                    **_START_OVER,
                )
    _check_index_coords(path, ds)


def _check_index_coords(path: Location, ds: xr.Dataset) -> None:
    """Raise unless the stored dimension coordinates equal the result's."""
    dims = [d for d in ds.dims if d in ds.coords]
    if not dims:
        return
    stored = xr.open_zarr(
        path.zarr_store(),
        consolidated=False,
        decode_times=False,
        decode_timedelta=False,
        zarr_format=3,
    )
    for dim in dims:
        new = ds[dim].variable
        if dim not in stored.variables:
            raise EsmscaleError(
                f"cannot resume {str(path)!r}: coordinate {dim!r} is missing from the store;",
                **_START_OVER,
            )
        old = stored[dim].variable
        if new.dtype.kind == "M" or new.dtype == object:
            coder = xr.coders.CFDatetimeCoder(use_cftime=new.dtype == object)
            old = coder.decode(old, name=str(dim))
        same = old.shape == new.shape
        if same:
            try:
                same = bool(np.array_equal(np.asarray(old.values), np.asarray(new.values)))
            except (TypeError, ValueError):
                same = False
        if not same:
            raise EsmscaleError(
                f"cannot resume {str(path)!r}: coordinate {dim!r} differs between the store and "
                "the result; resume needs the same result as the interrupted write, or",
                **_START_OVER,
            )


def _remove_partial_files(path: Location, names: list[str]) -> None:
    """Delete temporary ``*.partial`` files left in array folders by a killed writer."""
    for name in names:
        for key in path.files(name):
            if key.endswith(".partial"):
                path.remove(f"{name}/{key}")


def _refuse(path: Location, state: _State, *, resume: bool, overwrite: bool) -> None:
    """Raise when the existing content at ``path`` must not be written to (nothing is touched)."""
    where = str(path)
    if resume and overwrite:
        raise EsmscaleError(
            f"{where!r}: resume and overwrite were both asked for; choose one:",
            python="resume=True to finish an interrupted write, overwrite=True to start over",
            cli="--resume to finish an interrupted write, --overwrite to start over",
        )
    if state == "file":
        raise EsmscaleError(
            f"{where!r} exists and is a file, not a Zarr store; it is left untouched. "
            "Choose another path or remove the file yourself"
        )
    if state == "other_dir":
        raise EsmscaleError(
            f"{where!r} is a non-empty folder that is not a Zarr store; it is left untouched. "
            "Choose another path or empty the folder yourself"
        )
    if state == "foreign_zarr" and not overwrite:
        tail = (" (it cannot be resumed)" if resume else "") + " or choose another path"
        raise EsmscaleError(
            f"{where!r} is a Zarr store that was not written by esmscale (no {_MARKER!r} "
            "attribute); it is left untouched.",
            python=f"Pass overwrite=True to replace it{tail}",
            cli=f"Add --overwrite to replace it{tail}",
        )
    if resume and state in ("absent", "empty_dir"):
        raise EsmscaleError(
            f"cannot resume {where!r}: no store exists there;",
            python="call write_zarr without resume=True to start the write",
            cli="run the command without --resume to start the write",
        )
    if state == "ours" and not resume and not overwrite:
        done = is_complete(path)
        raise EsmscaleError(
            f"{where!r} already holds a {'complete' if done else 'partly written'} esmscale "
            "store; it is left untouched.",
            python="Pass overwrite=True to replace it"
            + ("" if done else " or resume=True to finish it"),
            cli="Add --overwrite to replace it" + ("" if done else " or --resume to finish it"),
        )


def _check_all_present(path: Location, names: list[str]) -> None:
    """Raise, before the store is sealed, if a chunk is missing after all writes ran.

    A missing chunk would read back silently as the fill value. This happens when the writes
    went elsewhere, e.g. a ``memory://`` store written by worker processes (each has its own
    memory); the store is left unsealed, so it can be resumed.
    """
    for name in names:
        meta = _array_meta(path, name)
        shape = [int(s) for s in meta["shape"]]
        chunk = _chunk_shape(meta)
        total = math.prod(math.ceil(s / c) for s, c in zip(shape, chunk, strict=True))
        found = len(existing_chunks(path, name))
        if found != total:
            raise EsmscaleError(
                f"{str(path)!r}: after all writes, data variable {name!r} has {found} of {total} "
                "chunks in the store, so it is left unsealed (esmscale_complete=False). A "
                "memory:// store is visible only to the process that writes it: use a local "
                "path or object storage with worker processes. Resume with write_zarr(..., "
                "resume=True) (esmscale downscale ... --resume)"
            )


def _compute(writes: list[Delayed], *, progress: bool, client: distributed.Client | None) -> None:
    """Run the region writes, on ``client`` if given, else on dask's default scheduler."""
    if not writes:
        return
    restricted = False  # tile tasks restricted to workers with resources (needs distributed)
    if "distributed" in sys.modules:
        from esmscale.downscaling.engine import active_client, resource_table

        restricted = bool(resource_table(*writes))
        if client is None and restricted:
            client = active_client()  # keep the restriction: run on the active client
    if not restricted:
        writes = [fuse_writes(w) for w in writes]
    if client is not None:
        from esmscale.downscaling.engine import compute_on

        # fused writes are submitted as they are; restricted ones keep their resources
        futures = (
            compute_on(client, writes)
            if restricted
            else list(client.compute(writes, optimize_graph=False))
        )
        if progress:
            from distributed import progress as show_progress

            show_progress(futures)
        client.gather(futures)
    else:
        with ProgressBar() if progress else contextlib.nullcontext():
            dask.compute(*writes, optimize_graph=restricted)


def fuse_writes(write: Delayed) -> Delayed:
    """``write`` with its graph optimised as an array graph: each chunk's chain in one task.

    A write (:func:`esmscale.io.blockwrite.store_blocks`) is a ``Delayed``, which dask only
    culls; the array layers under it (reading, regridding, the tile task, units, clipping,
    the chunk's write) stay one task each. Blockwise and linear fusion, as
    ``dask.array.store`` applies them, make each chunk's linear chain one task: fewer tasks
    for a distributed scheduler to send, track and report (for the scaling benchmark's job,
    from 14 tasks per time chunk to 6). Values are unchanged: fusion only merges tasks.

    Examples
    --------
    >>> import numpy as np
    >>> from esmscale.io.blockwrite import store_blocks
    >>> x = (dask.array.arange(4, chunks=2) + 1) * 2
    >>> out = np.zeros(4)
    >>> w = store_blocks([(x, (i,), out, (slice(2 * i, 2 * i + 2),)) for i in (0, 1)])
    >>> len(w.__dask_graph__()) > len(fuse_writes(w).__dask_graph__())
    True
    >>> dask.compute(fuse_writes(w), optimize_graph=False)[0], out.tolist()
    (2, [2.0, 4.0, 6.0, 8.0])
    """
    from dask.array.optimization import optimize as array_optimize
    from dask.delayed import Delayed

    return Delayed(write.key, array_optimize(write.__dask_graph__(), [write.key]))


def _region_writes(
    path: Location, ds: xr.Dataset, names: list[str], resume: bool
) -> tuple[list[Delayed], int, int, int]:
    """Writes of the blocks not yet in the store (one graph layer:
    :func:`esmscale.io.blockwrite.store_blocks`, each chunk write retried on transient errors:
    :mod:`esmscale.io.retry`); counts of blocks and bytes.
    """
    blocks: list[BlockWrite] = []
    n_total = n_skipped = n_bytes = 0
    store = path.zarr_store()
    for name in names:
        present = existing_chunks(path, name) if resume else set()
        var = ds[name].variable.copy(deep=False)
        var.encoding = {k: v for k, v in var.encoding.items() if k in _KEPT_ENCODING}
        data = encode_cf_variable(var, name=name).data  # as the template encoded it
        arr = zarr.open_array(store, path=name, mode="r+", zarr_format=3)
        target = RetryingTarget(arr.with_config({"write_empty_chunks": True}), label=name)
        for index, region in _blocks(ds[name]):
            n_total += 1
            if index in present:
                n_skipped += 1
                continue
            shape = [r.stop - r.start for r in region.values()]
            n_bytes += int(np.prod(shape)) * data.dtype.itemsize
            blocks.append((data, index, target, tuple(region.values())))
    if not blocks:
        return [], n_total, n_skipped, n_bytes
    return [store_blocks(blocks, "esmscale-write")], n_total, n_skipped, n_bytes


def write_zarr(
    result: xr.DataArray | xr.Dataset,
    store: StoreLike,
    *,
    storage_options: Mapping[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    client: distributed.Client | None = None,
) -> WriteSummary:
    """Write a lazy result to a Zarr v3 store so that an interrupted write can be resumed.

    Metadata and coordinates are written first, then every dask block of every data variable
    is written to its own Zarr chunk, and last the metadata are consolidated and the root
    attribute ``esmscale_complete`` is set to ``True`` (see the module docstring).

    Parameters
    ----------
    result : xarray.DataArray or xarray.Dataset
        The result, usually dask-backed, e.g. with dims ``(member, time, lat, lon)``. Dask chunks
        must be uniform per dimension (the last may be smaller); they become the Zarr chunks.
        In-memory data variables are written as one chunk. An unnamed DataArray is stored as
        ``__xarray_dataarray_variable__`` (what ``xr.open_dataarray`` expects).
    store : str or os.PathLike
        Path of the local store to write, or an fsspec URL: ``s3://bucket/out.zarr`` (needs
        ``s3fs``, ``pip install 'esmscale[s3]'``; credentials from ``AWS_ACCESS_KEY_ID``,
        ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ...; another server through
        ``AWS_ENDPOINT_URL``), ``memory://out.zarr`` (this process only), ``gs://``, ``az://``.
        The same template, region writes, completion mark and resume apply.
    storage_options : mapping, optional
        Options of the URL's fsspec filesystem, e.g. ``{"endpoint_url": ...}``
        (:func:`esmscale.io.stores.open_location`); not allowed with a local path.
    resume : bool, default False
        Finish an interrupted write: the store must be an esmscale store with the same data
        variables, dims, shape, chunks and dimension coordinates; only chunks missing from it
        are computed.
    overwrite : bool, default False
        Replace an existing Zarr store at ``store`` (ours or not). A path that is a file or a
        non-empty folder without Zarr metadata is never replaced.
    progress : bool, default True
        Show a progress bar (``distributed.progress`` with a client, else
        ``dask.diagnostics.ProgressBar``).
    client : distributed.Client, optional
        Run the writes on this client; by default dask's current scheduler is used.

    Returns
    -------
    WriteSummary
        Counts of chunks written and skipped, duration and approximate bytes.

    Raises
    ------
    EsmscaleError
        If the path holds something that must not be replaced (see ``overwrite``), if
        ``resume`` does not match the store, or if the dask chunks are irregular. Nothing at the
        path is modified when an error is raised before writing starts.

    Examples
    --------
    >>> import tempfile
    >>> import dask.array as da
    >>> import xarray as xr
    >>> tmp = tempfile.mkdtemp()
    >>> data = da.arange(2 * 4 * 6, dtype="f4").reshape(2, 4, 6).rechunk((1, 2, 6))
    >>> result = xr.DataArray(data, dims=("member", "time", "x"), name="pr")
    >>> summary = write_zarr(result, f"{tmp}/out.zarr", progress=False)
    >>> summary.n_chunks_total, summary.n_chunks_written, summary.complete
    (4, 4, True)
    >>> again = write_zarr(result, f"{tmp}/out.zarr", resume=True, progress=False)
    >>> again.n_chunks_written, again.n_chunks_skipped
    (0, 4)
    """
    start = time.perf_counter()
    path = open_location(store, storage_options)
    ds = _as_dataset(result)
    chunks = _zarr_chunks(ds)
    names = list(chunks)
    state = _state(path)
    _refuse(path, state, resume=resume, overwrite=overwrite)

    if resume:
        _check_resumable(path, ds, chunks)
        _set_root_attrs(path, {_COMPLETE: False})
        _remove_partial_files(path, names)
    else:
        template = ds.copy(deep=False)
        template.attrs = {
            **_global_attrs(ds, path),
            _MARKER: STORE_FORMAT,
            _COMPLETE: False,
            _VARIABLES: names,
        }
        template.attrs.pop(_WRITTEN, None)
        template.to_zarr(
            path.zarr_store(),
            mode="w",
            compute=False,
            encoding=_encoding(ds, chunks),
            consolidated=False,
            write_empty_chunks=True,
            zarr_format=3,
        )

    # Region writes: each dask block, CF-encoded as in the template, into its own Zarr chunk.
    # variables with clip counts (non-negative results) are written with their counts
    counted, handled, n_total, n_skipped, n_bytes = plan_counts(
        path, ds, names, resume, existing_chunks
    )
    others = [n for n in names if n not in handled]
    writes, n_other, n_skip_other, n_bytes_other = _region_writes(path, ds, others, resume)
    n_total, n_skipped = n_total + n_other, n_skipped + n_skip_other
    n_bytes += n_bytes_other
    n_written = n_total - n_skipped
    writes += counted
    try:
        _compute(writes, progress=progress, client=client)
    except BaseException as err:
        tile = tile_error(err, ds, str(path))  # a tile that kept killing its workers
        if tile is not None:
            raise tile from err
        err.add_note(
            f"esmscale: the Zarr store {str(path)!r} is incomplete; fix the cause and call "
            "write_zarr(..., resume=True) with the same result to write the missing chunks"
        )
        raise

    _check_all_present(path, names)
    with warnings.catch_warnings():
        # Zarr warns that consolidated metadata are not part of the v3 specification yet.
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata", module="zarr")
        seal_counts(path, ds, names)
        zarr.consolidate_metadata(path.zarr_store(), zarr_format=3)
    stamp = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    _set_root_attrs(path, {_COMPLETE: True, _WRITTEN: stamp})
    return WriteSummary(
        store=path.path,
        variables=tuple(names),
        n_chunks_total=n_total,
        n_chunks_written=n_written,
        n_chunks_skipped=n_skipped,
        seconds=time.perf_counter() - start,
        bytes_written=int(n_bytes),
        complete=is_complete(path),
    )
