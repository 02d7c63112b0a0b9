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
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from esmscale.errors import EsmscaleError
from esmscale.models.consistency import ConsistencyModel
from esmscale.models.sampler import DEFAULT_BATCH, SAMPLERS, field_noise

__all__ = ["Sampling", "TileGrid", "denoise_region", "fixed_threads"]


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
    """Denoise the output ``region`` of one member from the whole-domain fields ``fine``.

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
    member
        Ensemble member (noise identity).
    time_index
        Global time index of each field (noise identity).

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
    acc = np.zeros((nt, y1 - y0, x1 - x0), dtype=np.float64)
    wsum = np.zeros((y1 - y0, x1 - x0), dtype=np.float64)
    windows = [(iy, ix) for iy in tys for ix in txs]
    idx = {
        (iy, ix): (grid.indices(iy, ny, False, 0), grid.indices(ix, nx, grid.wrap_x, 1))
        for iy, ix in windows
    }
    # batch all (window, time) pairs; the batch size is fixed, so results do not depend on
    # which pairs share a batch
    pairs = [(w, t) for w in windows for t in range(nt)]
    x_in = np.stack([fine[t][np.ix_(*idx[w])] for w, t in pairs]) if pairs else None
    if x_in is None:
        return acc.astype(np.float32)
    noise = np.stack(
        [
            np.stack([grid.noise(seed, member, int(time_index[t]), s, *idx[w]) for w, t in pairs])
            for s in range(spec.draws(steps))
        ]
    )
    y_out = spec.run(model, x_in, t_star, noise, batch_size=sampling.batch_size)
    for k, (w, t) in enumerate(pairs):
        iy, ix = w
        ry, rx = idx[w]
        span_y = np.arange(*grid._span(iy, 0))
        span_x = np.arange(*grid._span(ix, 1))
        # keep cells whose unwrapped position is in the domain and whose index is in the region
        oky = (span_y >= 0) & (span_y < ny) & (ry >= y0) & (ry < y1)
        if grid.wrap_x:
            okx = (rx >= x0) & (rx < x1)
        else:
            okx = (span_x >= 0) & (span_x < nx) & (rx >= x0) & (rx < x1)
        sy, sx = np.flatnonzero(oky), np.flatnonzero(okx)
        ww = np.outer(w1[sy], w1x[sx])
        acc[t][np.ix_(ry[sy] - y0, rx[sx] - x0)] += ww * y_out[k][np.ix_(sy, sx)]
        if t == 0:
            wsum[np.ix_(ry[sy] - y0, rx[sx] - x0)] += ww
    return (acc / wsum[None]).astype(np.float32)
