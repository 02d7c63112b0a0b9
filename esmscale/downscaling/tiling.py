"""Fixed tiles of the global target grid, with halos and blended overlaps (pure numpy/torch).

The fine grid ``(ny, nx)`` is split into cores of ``tile x tile`` cells. Each core is run through
the network inside a window extended by ``halo`` cells on every side (padded by reflection at
the domain edges, or wrapped across the dateline for global longitudes). Overlapping windows
are blended with linear ramps of width ``2 * halo`` (a partition of unity). Noise is a function
of the global cell position (blocks of ``tile`` cells keyed by ``(seed, member, time, block)``),
so two windows see the same noisy values where they overlap.

Because tiles, noise and batch sizes are fixed by the global grid alone, the value of every
output cell is the same whichever region of the grid is asked for: the Dask layer can chunk the
output in any way and get bitwise-identical results.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from esmscale.errors import EsmscaleError
from esmscale.models.consistency import ConsistencyModel
from esmscale.models.sampler import DEFAULT_BATCH, SAMPLERS, field_noise

__all__ = ["SLAB", "Sampling", "TileGrid", "denoise_members", "denoise_region", "fixed_threads"]


@contextlib.contextmanager
def fixed_threads(n: int) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads (results depend on the thread count on CPU).

    Examples
    --------
    >>> before = torch.get_num_threads()
    >>> with fixed_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before  # restored on exit
    True
    """
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@dataclass(frozen=True)
class TileGrid:
    """Tiling of a global ``ny x nx`` grid into cores of ``tile`` cells with ``halo`` context.

    Cores are ``tile x tile`` cells, or ``tile x tile_x`` when ``tile_x`` is given (a
    rectangular core, e.g. one window over a whole regional grid).

    Examples
    --------
    >>> g = TileGrid(100, 130, tile=64, halo=16)
    >>> g.shape, g.window, g.work_ratio
    ((2, 3), 96, 4.2535)
    >>> g.tiles_for(slice(0, 10), slice(120, 130))
    ([0], [1, 2])
    >>> TileGrid(100, 130, tile=104, halo=0, tile_x=136).work_ratio
    1.088
    """

    ny: int
    nx: int
    tile: int = 64
    halo: int = 16
    wrap_x: bool = False
    tile_x: int | None = None

    def __post_init__(self) -> None:
        if self.tile_x is None:
            object.__setattr__(self, "tile_x", self.tile)
        for name, t in (("tile", self.tile), ("tile_x", self.tile_x)):
            if int(t or 0) < 1 or self.halo < 0:
                raise EsmscaleError(f"{name}={t} must be >= 1 and halo={self.halo} >= 0.")
            if 2 * self.halo > int(t or 0):
                raise EsmscaleError(
                    f"halo={self.halo} is more than half of {name}={t}; use halo <= {name} / 2 "
                    "(e.g. tile=64, halo=16)."
                )

    @property
    def tiles(self) -> tuple[int, int]:
        """Core size along y and x."""
        return self.tile, int(self.tile_x or self.tile)

    @property
    def shape(self) -> tuple[int, int]:
        """Number of tiles along y and x."""
        ty, tx = self.tiles
        return -(-self.ny // ty), -(-self.nx // tx)

    @property
    def window(self) -> int:
        """Side (along y) of the window fed to the network."""
        return self.tile + 2 * self.halo

    @property
    def windows(self) -> tuple[int, int]:
        """Window size along y and x."""
        ty, tx = self.tiles
        return ty + 2 * self.halo, tx + 2 * self.halo

    @property
    def work_ratio(self) -> float:
        """Network cells computed per output cell (1.0: no halo and no padding)."""
        (a, b), (wy, wx) = self.shape, self.windows
        return round(a * b * wy * wx / (self.ny * self.nx), 4)

    def _span(self, i: int, axis: int = 0) -> tuple[int, int]:
        """Unwrapped index range of window ``i`` along ``axis`` (0: y, 1: x)."""
        t = self.tiles[axis]
        return i * t - self.halo, (i + 1) * t + self.halo

    def tiles_for(self, ys: slice, xs: slice) -> tuple[list[int], list[int]]:
        """Tile indices whose windows touch the region ``[ys, xs]``."""

        def along(sl: slice, n_tiles: int, n: int, wrap: bool, axis: int) -> list[int]:
            lo, hi = sl.start or 0, n if sl.stop is None else sl.stop
            out = []
            for i in range(n_tiles):
                a, b = self._span(i, axis)
                shifts = (-n, 0, n) if wrap else (0,)
                if any(a + s < hi and b + s > lo for s in shifts):
                    out.append(i)
            return out

        ty, tx = self.shape
        return along(ys, ty, self.ny, False, 0), along(xs, tx, self.nx, self.wrap_x, 1)

    def indices(self, i: int, n: int, wrap: bool, axis: int = 0) -> np.ndarray:
        """Grid indices of window ``i`` along an axis of length ``n`` (reflected or wrapped)."""
        a, b = self._span(i, axis)
        idx = np.arange(a, b)
        if wrap:
            return idx % n
        if n == 1:
            return np.zeros_like(idx)
        period = 2 * (n - 1)
        idx = np.abs(idx) % period
        return np.where(idx >= n, period - idx, idx)

    def weights(self, axis: int = 0) -> np.ndarray:
        """1-D blending ramp over a window (linear over ``2 * halo`` cells at each side)."""
        w = np.ones(self.windows[axis], dtype=np.float64)
        if self.halo:
            ramp = (np.arange(2 * self.halo) + 0.5) / (2 * self.halo)
            w[: 2 * self.halo] = ramp
            w[-2 * self.halo :] = ramp[::-1]
        return w

    def noise(
        self, seed: int, member: int, time_index: int, step: int, ry: np.ndarray, rx: np.ndarray
    ) -> np.ndarray:
        """Global noise at the cells ``ry x rx`` (domain indices), from per-block draws."""
        ty, tx = self.tiles
        out = np.empty((ry.size, rx.size), dtype=np.float32)
        by, bx = ry // ty, rx // tx
        for yb in np.unique(by):
            for xb in np.unique(bx):
                block = field_noise(
                    seed, member, time_index, (ty, tx), tile=(int(yb), int(xb)), step=step
                )
                sy, sx = np.flatnonzero(by == yb), np.flatnonzero(bx == xb)
                out[np.ix_(sy, sx)] = block[np.ix_(ry[sy] % ty, rx[sx] % tx)]
        return out


@dataclass(frozen=True)
class Sampling:
    """How a region is sampled: noise level, noise seed, steps, batch size and sampler name.

    ``steps`` are network calls per field (``sampler="consistency"``) or Euler-Maruyama steps
    (``sampler="bridge"``, a diffusion denoiser; the paper's baseline uses 500); ``sampler`` is a
    name registered in :data:`esmscale.models.sampler.SAMPLERS`.

    Examples
    --------
    >>> Sampling(t_star=0.25, seed=1).sampler
    'consistency'
    """

    t_star: float
    seed: int = 0
    steps: int = 1
    batch_size: int = DEFAULT_BATCH
    sampler: str = "consistency"


def denoise_region(
    model: ConsistencyModel,
    fine: np.ndarray,
    grid: TileGrid,
    region: tuple[slice, slice],
    sampling: Sampling,
    *,
    member: int,
    time_index: np.ndarray,
) -> np.ndarray:
    """Denoise the output ``region`` of one member: :func:`denoise_members` for ``(member,)``.

    Returns
    -------
    numpy.ndarray
        ``(time, region_ny, region_nx)`` float32 in the network's space.

    Examples
    --------
    >>> from esmscale.models import ConsistencyConfig, ConsistencyModel
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16), patch_size=8))
    >>> grid = TileGrid(16, 16, tile=8, halo=4)
    >>> fine = np.zeros((2, 16, 16), dtype=np.float32)
    >>> kw = dict(member=0, time_index=np.arange(2))
    >>> z = denoise_region(m, fine, grid, (slice(0, 16), slice(0, 16)), Sampling(0.3), **kw)
    >>> z.shape, z.dtype
    ((2, 16, 16), dtype('float32'))
    >>> corner = denoise_region(m, fine, grid, (slice(0, 8), slice(8, 16)), Sampling(0.3), **kw)
    >>> bool(np.allclose(corner, z[:, :8, 8:], atol=1e-6))  # a region of the same field
    True
    """
    return denoise_members(
        model, fine, grid, region, sampling, members=(member,), time_index=time_index
    )[0]


#: Network inputs stacked at once by :func:`denoise_members` (a multiple of any batch size
#: that divides it; bounds memory whatever the number of members, fields and windows).
SLAB = 512


def denoise_members(
    model: ConsistencyModel,
    fine: np.ndarray,
    grid: TileGrid,
    region: tuple[slice, slice],
    sampling: Sampling,
    *,
    members: Sequence[int],
    time_index: np.ndarray,
) -> np.ndarray:
    """Denoise the output ``region`` of several members from the whole-domain fields ``fine``.

    All (member, window, time) inputs share the network's fixed-size batches, so a call for
    several members fills batches that one member alone would pad with zeros (10 fields of one
    window each fill 10 of 16 slots of two batches of 8; 4 members fill 40 of 40). Each
    member's field is the same as when it is denoised alone: its noise is drawn from (seed,
    member, time index, tile) and the batch size is fixed, so results do not depend on which
    inputs share a batch.

    Parameters
    ----------
    fine
        ``(time, ny, nx)`` float32 fields in the network's space (finite: fill masked cells).
    grid
        The global tiling.
    region
        ``(y slice, x slice)`` of the output to produce.
    sampling
        Noise level, seed, steps, batch size and sampler (:class:`Sampling`).
    members
        Ensemble members (noise identities).
    time_index
        Global time index of each field (noise identity).

    Returns
    -------
    numpy.ndarray
        ``(member, time, region_ny, region_nx)`` float32 in the network's space.

    Examples
    --------
    >>> from esmscale.models import ConsistencyConfig, ConsistencyModel
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16), patch_size=8))
    >>> grid = TileGrid(16, 16, tile=8, halo=4)
    >>> fine = np.zeros((2, 16, 16), dtype=np.float32)
    >>> whole = (slice(0, 16), slice(0, 16))
    >>> z = denoise_members(m, fine, grid, whole, Sampling(0.3), members=(0, 1),
    ...                     time_index=np.arange(2))
    >>> z.shape
    (2, 2, 16, 16)
    >>> one = denoise_region(m, fine, grid, whole, Sampling(0.3), member=1, time_index=np.arange(2))
    >>> bool(np.array_equal(z[1], one))  # member 1 alone: the same field
    True
    """
    spec = SAMPLERS.get(sampling.sampler)
    t_star, seed, steps = sampling.t_star, sampling.seed, sampling.steps
    nt, ny, nx = fine.shape
    if (ny, nx) != (grid.ny, grid.nx):
        raise EsmscaleError(f"fields are {ny}x{nx} but the tile grid is {grid.ny}x{grid.nx}.")
    ys, xs = region
    y0, y1 = ys.start or 0, ny if ys.stop is None else ys.stop
    x0, x1 = xs.start or 0, nx if xs.stop is None else xs.stop
    tys, txs = grid.tiles_for(slice(y0, y1), slice(x0, x1))
    w1, w1x = grid.weights(0), grid.weights(1)
    acc = np.zeros((len(members), nt, y1 - y0, x1 - x0), dtype=np.float64)
    wsum = np.zeros((y1 - y0, x1 - x0), dtype=np.float64)
    windows = [(iy, ix) for iy in tys for ix in txs]
    idx = {
        (iy, ix): (grid.indices(iy, ny, False, 0), grid.indices(ix, nx, grid.wrap_x, 1))
        for iy, ix in windows
    }
    # where each window's cells go in the region, and their blending weights
    place = {}
    for w in windows:
        ry, rx = idx[w]
        span_y = np.arange(*grid._span(w[0], 0))
        span_x = np.arange(*grid._span(w[1], 1))
        # keep cells whose unwrapped position is in the domain and whose index is in the region
        oky = (span_y >= 0) & (span_y < ny) & (ry >= y0) & (ry < y1)
        if grid.wrap_x:
            okx = (rx >= x0) & (rx < x1)
        else:
            okx = (span_x >= 0) & (span_x < nx) & (rx >= x0) & (rx < x1)
        sy, sx = np.flatnonzero(oky), np.flatnonzero(okx)
        place[w] = (np.ix_(ry[sy] - y0, rx[sx] - x0), np.ix_(sy, sx), np.outer(w1[sy], w1x[sx]))
        wsum[place[w][0]] += place[w][2]
    # all (member, window, time) inputs in fixed-size batches, SLAB inputs at a time
    triples = [(k, w, t) for k in range(len(members)) for w in windows for t in range(nt)]
    if not triples:
        return acc.astype(np.float32)
    draws = spec.draws(steps)
    slab = max(sampling.batch_size, SLAB - SLAB % sampling.batch_size)
    for s0 in range(0, len(triples), slab):
        part = triples[s0 : s0 + slab]
        x_in = np.stack([fine[t][np.ix_(*idx[w])] for _, w, t in part])
        noise = np.stack(
            [
                np.stack(
                    [
                        grid.noise(seed, int(members[k]), int(time_index[t]), s, *idx[w])
                        for k, w, t in part
                    ]
                )
                for s in range(draws)
            ]
        )
        y_out = spec.run(model, x_in, t_star, noise, batch_size=sampling.batch_size)
        for (k, w, t), y in zip(part, y_out, strict=True):
            dst, src, ww = place[w]
            acc[k, t][dst] += ww * y[src]
    return (acc / wsum).astype(np.float32)
