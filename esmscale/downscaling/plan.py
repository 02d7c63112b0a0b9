"""Plan the tiles and the output chunks of a run (pure numpy).

The tile grid depends on the fine grid and the network alone, never on Dask chunks, so every
entry point that plans with :func:`plan_grid` gets the same tiles, hence the same noise.
"""

from __future__ import annotations

import warnings

import numpy as np

from esmscale.downscaling.tiling import TileGrid
from esmscale.errors import EsmscaleWarning

__all__ = ["DEFAULT_HALO", "DEFAULT_TILE", "is_global", "plan_grid", "spacing", "spatial_chunks"]

DEFAULT_TILE = 64
DEFAULT_HALO = 16


def spacing(values: np.ndarray) -> float:
    """Mean absolute spacing of 1-D coordinate values."""
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


def plan_grid(
    ny: int,
    nx: int,
    multiple: int,
    *,
    tile: int | None = None,
    halo: int | None = None,
    wrap_x: bool = False,
) -> TileGrid:
    """The tile grid of a ``ny x nx`` fine grid for a network whose sides are ``multiple``-s.

    ``tile`` (default 64) is rounded down to a multiple of ``multiple``, ``halo`` (default
    ``min(16, tile // 4)``) down to a multiple of ``multiple // 2``, so every window is a
    size the network takes.

    Examples
    --------
    >>> g = plan_grid(100, 130, 8, tile=50)
    >>> g.tile, g.halo, g.window
    (48, 12, 72)
    """
    core = tile or DEFAULT_TILE
    core = max(multiple, core - core % multiple)
    hal = halo if halo is not None else min(DEFAULT_HALO, core // 4)
    hal = hal - hal % max(multiple // 2, 1)
    return TileGrid(ny, nx, tile=core, halo=hal, wrap_x=wrap_x)


def spatial_chunks(n: int, size: int | None, halo: int, dim: str) -> tuple[int, ...]:
    """Output chunk sizes along a spatial dim of length ``n`` (at least ``halo`` each)."""
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
