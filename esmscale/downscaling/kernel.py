"""The tile kernel: the one place where fields meet the network.

:func:`run_block` turns fine-grid fields in model units into one member's output over a region
of the grid: transform into the network's space, fill NaN cells, noise and denoise every tile
window touching the region through the sampler registry (:func:`~esmscale.downscaling.tiling.
denoise_region`), clip below the transform's floor, transform back and put NaN back. The Dask
graph of :func:`esmscale.downscale` runs it once per output chunk; :func:`sample_fine` runs it
over the whole domain for the plain-array API, the calibration's t* searches and the
benchmarks. Same spec, member, time index and tile: same field, whichever entry point.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np

from esmscale.devices import autocast, model_on
from esmscale.downscaling.restore import reach, restore_large_scales, smooth_perturbation
from esmscale.downscaling.spec import BlockSpec
from esmscale.downscaling.tiling import denoise_members, fixed_threads
from esmscale.errors import EsmscaleError
from esmscale.io.model_cache import cached_model
from esmscale.models.consistency import ConsistencyModel

__all__ = ["TIME_CHUNK", "block_task", "run_block", "run_members", "sample_fine"]

#: Fields per kernel call in :func:`sample_fine` (bounds memory; results do not depend on it).
TIME_CHUNK = 16


def _model(spec: BlockSpec) -> ConsistencyModel:
    """The spec's model on the spec's device (loaded once per process, copied once per device)."""
    model = spec.model if isinstance(spec.model, ConsistencyModel) else cached_model(spec.model)
    return model_on(model, spec.device)


def run_block(
    spec: BlockSpec,
    fine: np.ndarray,
    region: tuple[slice, slice],
    member: int,
    time_index: np.ndarray,
) -> np.ndarray:
    """One member over ``region`` of the grid, from whole-domain fields.

    Parameters
    ----------
    spec
        The run's settings (model, tile grid, t*, seed, steps, sampler, threads).
    fine
        ``(time, ny, nx)`` fields on the whole fine grid in the model's units; NaN cells
        (e.g. sea) stay NaN in the output.
    region
        ``(y slice, x slice)`` of the grid to produce.
    member
        Ensemble member (noise identity).
    time_index
        Global time index of each field (noise identity).

    Returns
    -------
    numpy.ndarray
        ``(time, region ny, region nx)`` float32 in the model's units.

    Examples
    --------
    >>> from esmscale.downscaling.tiling import TileGrid
    >>> from esmscale.models import ConsistencyConfig, ConsistencyModel
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16), patch_size=8))
    >>> spec = BlockSpec.for_model(m, TileGrid(16, 16, tile=8, halo=4), t_star=0.2)
    >>> fine = np.full((2, 16, 16), 3.0, dtype="float32")
    >>> fine[:, :4, :4] = np.nan  # e.g. sea cells
    >>> out = run_block(spec, fine, (slice(0, 8), slice(0, 16)), 0, np.arange(2))
    >>> out.shape, bool(np.isnan(out[:, :4, :4]).all()), bool(np.isfinite(out[:, 4:]).all())
    ((2, 8, 16), True, True)
    >>> whole = run_block(spec, fine, (slice(0, 16), slice(0, 16)), 0, np.arange(2))
    >>> bool(np.array_equal(whole[:, :8], out, equal_nan=True))  # a region is the same field
    True
    """
    return run_members(spec, fine, region, (member,), time_index)[0]


def run_members(
    spec: BlockSpec,
    fine: np.ndarray,
    region: tuple[slice, slice],
    members: Sequence[int],
    time_index: np.ndarray,
) -> np.ndarray:
    """Several members over ``region`` of the grid, their network inputs batched together.

    Each member is the field :func:`run_block` gives for it alone (the network's batches have
    a fixed size, and the noise is drawn per member, time index and tile); together they fill
    the batches that one member of a few fields would pad with zeros.

    Returns
    -------
    numpy.ndarray
        ``(member, time, region ny, region nx)`` float32 in the model's units.

    Examples
    --------
    >>> from esmscale.downscaling.tiling import TileGrid
    >>> from esmscale.models import ConsistencyConfig, ConsistencyModel
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16), patch_size=8))
    >>> spec = BlockSpec.for_model(m, TileGrid(16, 16, tile=8, halo=4), t_star=0.2)
    >>> fine = np.full((3, 16, 16), 2.0, dtype="float32")
    >>> ens = run_members(spec, fine, (slice(0, 16), slice(0, 8)), (0, 1, 2), np.arange(3))
    >>> ens.shape
    (3, 3, 16, 8)
    >>> alone = run_block(spec, fine, (slice(0, 16), slice(0, 8)), 2, np.arange(3))
    >>> bool(np.array_equal(ens[2], alone))
    True
    """
    fine = np.asarray(fine, dtype=np.float32)
    time_index = np.asarray(time_index)
    if fine.ndim != 3 or time_index.shape != fine.shape[:1]:
        raise EsmscaleError(
            f"run_members: fields of shape {fine.shape} and time_index of shape "
            f"{time_index.shape}; give (time, ny, nx) fields and one index per field."
        )
    if len(members) < 1:
        raise EsmscaleError("run_members: no members; give at least one member index.")
    tr = spec.transform
    y = np.asarray(tr.forward(fine), dtype=np.float32)
    nan = ~np.isfinite(y)
    y[nan] = tr.fill_value
    wide, inner = _widened(spec, region)
    threads = contextlib.nullcontext() if spec.threads is None else fixed_threads(spec.threads)
    with threads, autocast(spec.device, spec.precision):
        z = denoise_members(
            _model(spec), y, spec.grid, wide, spec.sampling, members=members, time_index=time_index
        )
    if tr.kind == "log":
        z = np.clip(z, -1.0, None)
    out = np.asarray(tr.inverse(z), dtype=np.float32)
    out[:, nan[:, wide[0], wide[1]]] = np.nan
    if spec.restore is not None:
        ref = fine[:, wide[0], wide[1]]
        out = np.stack(
            [_restore(spec, out[k], ref, wide, int(m), time_index) for k, m in enumerate(members)]
        )
    return out[:, :, inner[0], inner[1]]


def _widened(
    spec: BlockSpec, region: tuple[slice, slice]
) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """The region the restore's low-pass reads (``wide``) and ``region`` within it."""
    if spec.restore is None:
        n = (region[0].stop - region[0].start, region[1].stop - region[1].start)
        return region, (slice(0, n[0]), slice(0, n[1]))
    r, g = reach(spec.restore), spec.grid
    y0, y1 = max(0, region[0].start - r), min(g.ny, region[0].stop + r)
    # a periodic (global) grid: the whole ring, filtered with wrap-around
    x0, x1 = (0, g.nx) if g.wrap_x else (max(0, region[1].start - r), min(g.nx, region[1].stop + r))
    wide = (slice(y0, y1), slice(x0, x1))
    inner = (
        slice(region[0].start - y0, region[0].stop - y0),
        slice(region[1].start - x0, region[1].stop - x0),
    )
    return wide, inner


def _restore(
    spec: BlockSpec,
    out: np.ndarray,
    ref: np.ndarray,
    wide: tuple[slice, slice],
    member: int,
    time_index: np.ndarray,
) -> np.ndarray:
    """The member-wise large-scale restore and its spread (:mod:`esmscale.downscaling.restore`)."""
    assert spec.restore is not None
    mult = spec.transform.kind == "log"
    res = restore_large_scales(out, ref, spec.restore, multiplicative=mult, wrap_x=spec.grid.wrap_x)
    if spec.spread > 0:
        a = spec.spread
        shape = (spec.grid.ny, spec.grid.nx)
        for i, t in enumerate(np.asarray(time_index).tolist()):
            # drawn over the whole grid, so the field does not depend on the region
            z = smooth_perturbation(shape, spec.spread_length, (spec.seed, member, int(t), 7))
            z = z[wide[0], wide[1]]
            res[i] = res[i] * np.exp(a * z - 0.5 * a * a) if mult else res[i] + a * z
    if mult:
        res = np.maximum(res, 0.0)
    return np.asarray(res, dtype=np.float32)


def block_task(
    spec: BlockSpec,
    fine: np.ndarray,
    region: tuple[slice, slice],
    members: Sequence[int],
    time_index: np.ndarray,
) -> np.ndarray:
    """:func:`run_members`: one Dask task of the pipeline's graph, all members of a chunk.

    Examples
    --------
    >>> from esmscale.downscaling.tiling import TileGrid
    >>> from esmscale.models import ConsistencyConfig, ConsistencyModel
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16), patch_size=8))
    >>> spec = BlockSpec.for_model(m, TileGrid(16, 16, tile=8, halo=4), t_star=0.2)
    >>> region = (slice(0, 8), slice(8, 16))
    >>> block_task(spec, np.ones((3, 16, 16)), region, (0, 1), np.arange(3)).shape
    (2, 3, 8, 8)
    """
    return run_members(spec, fine, region, members, time_index)


def sample_fine(
    spec: BlockSpec,
    fine: np.ndarray,
    members: int,
    time_index: np.ndarray | None = None,
) -> np.ndarray:
    """An ensemble over the whole domain: :func:`run_block` per member and chunk of time.

    Returns
    -------
    numpy.ndarray
        ``(members, time, ny, nx)`` float32 in the model's units.

    Examples
    --------
    >>> from esmscale.downscaling.tiling import TileGrid
    >>> from esmscale.models import ConsistencyConfig, ConsistencyModel
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16), patch_size=8))
    >>> spec = BlockSpec.for_model(m, TileGrid(16, 16, tile=8, halo=4), t_star=0.2)
    >>> fine = np.ones((20, 16, 16), dtype="float32")  # two chunks of TIME_CHUNK fields
    >>> ens = sample_fine(spec, fine, members=2)
    >>> ens.shape
    (2, 20, 16, 16)
    >>> member1 = run_block(spec, fine[16:], (slice(0, 16), slice(0, 16)), 1, np.arange(16, 20))
    >>> bool(np.array_equal(ens[1, 16:], member1))  # member and time index fix the noise
    True
    """
    fine = np.asarray(fine, dtype=np.float32)
    if fine.ndim != 3:
        raise EsmscaleError(f"expected (time, ny, nx) fields, got shape {fine.shape}.")
    if members < 1:
        raise EsmscaleError(f"members={members} must be >= 1.")
    nt = fine.shape[0]
    tidx = np.arange(nt) if time_index is None else np.asarray(time_index)
    if tidx.shape != (nt,):
        raise EsmscaleError(f"time_index has shape {tidx.shape}; expected ({nt},).")
    whole = (slice(0, spec.grid.ny), slice(0, spec.grid.nx))
    out = np.empty((members, *fine.shape), dtype=np.float32)
    for t0 in range(0, nt, TIME_CHUNK):
        sl = slice(t0, t0 + TIME_CHUNK)
        out[:, sl] = run_members(spec, fine[sl], whole, range(members), tidx[sl])
    return out
