"""Plan the tiles and the output chunks of a run (pure numpy).

The tile grid depends on the fine grid and the network alone, never on Dask chunks, so every
entry point that plans with :func:`plan_grid` gets the same tiles, hence the same noise.
"""

from __future__ import annotations

import warnings

import numpy as np

from esmscale.downscaling.tiling import TileGrid
from esmscale.errors import EsmscaleWarning

__all__ = [
    "DEFAULT_HALO",
    "DEFAULT_TILE",
    "MAX_WINDOW",
    "is_global",
    "plan_grid",
    "spacing",
    "spatial_chunks",
]

#: Core size that an explicit ``halo`` without ``tile`` used to default to (kept for callers).
DEFAULT_TILE = 64
#: Halo of planned tiles (cells of context on every side of a core).
DEFAULT_HALO = 16
#: Largest window side the planner uses (a 512x512 field through the UNet fits in memory on
#: CPUs and GPUs alike, so the plan, hence the noise, is the same on every device).
MAX_WINDOW = 512


def spacing(values: np.ndarray) -> float:
    """Mean absolute spacing of 1-D coordinate values.

    Examples
    --------
    >>> spacing(np.array([40.0, 39.75, 39.5, 39.25]))  # descending latitudes
    0.25
    """
    return float(np.abs(np.diff(np.asarray(values, dtype=np.float64))).mean())


def is_global(lon: np.ndarray) -> bool:
    """Whether longitudes ``lon`` go once around the globe (tiles then wrap at the dateline).

    Examples
    --------
    >>> is_global(np.arange(0.0, 360.0, 10.0)), is_global(np.arange(0.0, 100.0, 10.0))
    (True, False)
    """
    d = spacing(lon)
    return bool(abs(lon.size * d - 360.0) < 0.5 * d)


def _axis_tile(n: int, multiple: int, halo: int, max_window: int) -> tuple[int, float]:
    """The core size along an axis of ``n`` cells with the least network work per cell."""
    best: tuple[float, int] | None = None
    lo = max(multiple, 2 * halo, 1)
    lo += -lo % multiple
    hi = max(lo, max_window - 2 * halo)
    for t in range(lo, hi + 1, multiple):
        ratio = -(-n // t) * (t + 2 * halo) / n
        if best is None or ratio < best[0] - 1e-12:
            best = (ratio, t)
        if t >= n:
            break
    assert best is not None
    return best[1], best[0]


def plan_grid(
    ny: int,
    nx: int,
    multiple: int,
    *,
    tile: int | None = None,
    halo: int | None = None,
    wrap_x: bool = False,
    max_window: int = MAX_WINDOW,
) -> TileGrid:
    """The tile grid of a ``ny x nx`` fine grid for a network whose sides are ``multiple``-s.

    With ``tile=None`` (the default) the tiles waste as little network work as the grid
    allows: a regional grid whose sides fit in ``max_window`` cells runs as one window with
    no halo (no seams at all; work ratio 1 up to rounding to ``multiple``); a larger or
    global grid gets a halo of 16 and, along each axis, the core size (windows of at most
    ``max_window`` cells) with the least work, e.g. 2.25x the output area for 64-cell tiles
    becomes 1.2x on a 1024x2048 global grid. The plan depends on the grid alone, never on the
    device or on Dask chunks, so a member is the same field wherever it runs; devices differ
    only in how many windows share a network call.

    An explicit ``tile`` is rounded down to a multiple of ``multiple`` and ``halo`` (default
    ``min(16, tile // 4)``) down to a multiple of ``multiple // 2``, so every window is a
    size the network takes.

    Examples
    --------
    >>> g = plan_grid(100, 130, 8, tile=50)
    >>> g.tile, g.halo, g.window
    (48, 12, 72)
    >>> g = plan_grid(100, 130, 8)
    >>> g.tiles, g.halo, g.work_ratio
    ((104, 136), 0, 1.088)
    >>> g = plan_grid(1024, 2048, 8, wrap_x=True)
    >>> g.tiles, g.halo, g.work_ratio <= 1.3
    ((344, 416), 16, True)
    """
    step = max(multiple // 2, 1)
    if tile is None:
        hal = DEFAULT_HALO if halo is None else halo
        hal -= hal % step
        ry, rx = ny + -ny % multiple, nx + -nx % multiple
        if not wrap_x and max(ry, rx) <= max_window and halo in (None, 0):
            return TileGrid(ny, nx, tile=ry, halo=0, wrap_x=False, tile_x=rx)
        ty, _ = _axis_tile(ny, multiple, hal, max_window)
        tx, _ = _axis_tile(nx, multiple, hal, max_window)
        return TileGrid(ny, nx, tile=ty, halo=hal, wrap_x=wrap_x, tile_x=tx)
    core = max(multiple, tile - tile % multiple)
    hal = halo if halo is not None else min(DEFAULT_HALO, core // 4)
    hal = hal - hal % step
    return TileGrid(ny, nx, tile=core, halo=hal, wrap_x=wrap_x)


def spatial_chunks(n: int, size: int | None, halo: int, dim: str) -> tuple[int, ...]:
    """Output chunk sizes along a spatial dim of length ``n`` (at least ``halo`` each).

    Examples
    --------
    >>> spatial_chunks(100, None, 16, "lat"), spatial_chunks(100, 40, 16, "lat")
    ((100,), (40, 40, 20))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     spatial_chunks(40, 8, 16, "lon")  # chunks below the halo are widened to it
    (16, 16, 8)
    >>> caught[0].category.__name__
    'EsmscaleWarning'
    """
    if size is None or size >= n:
        return (n,)
    if size < halo:
        warnings.warn(
            f"output chunk size {size} along {dim!r} is smaller than the tile halo ({halo}); "
            f"every chunk would recompute whole tiles, so chunks of {halo} are used instead. "
            f"Ask for chunks of at least {halo} cells (or a smaller halo=).",
            EsmscaleWarning,
            stacklevel=3,
        )
        size = halo
    return tuple([size] * (n // size) + ([n % size] if n % size else []))
