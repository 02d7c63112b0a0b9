"""Spatial verification: the fractions skill score (FSS, Roberts & Lean 2008) via ``scores``.

``FSS = 1 - sum (P_f - P_o)^2 / (sum P_f^2 + sum P_o^2)``, where ``P`` are the fractions of
cells at or above a threshold in each ``n x n`` window, the sums running over all windows that
fit inside the grid and over all times (the aggregated FSS of :func:`scores.spatial.fss_2d`).
FSS is 1 for a perfect forecast and 0 for no skill; it rises with the window as displacement
errors are forgiven. For an ensemble, the FSS of each member is computed and averaged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from esmscale.errors import EsmscaleError
from esmscale.metrics.checks import MEMBER, align_to_obs

__all__ = ["fractions_skill_score"]

DEFAULT_THRESHOLDS: tuple[float, ...] = (1.0, 10.0)
DEFAULT_WINDOWS: tuple[int, ...] = (1, 3, 5, 7, 9)


def fractions_skill_score(
    result: xr.DataArray,
    obs: xr.DataArray,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    windows: Sequence[int] = DEFAULT_WINDOWS,
) -> xr.DataArray:
    """FSS per threshold (in the observations' units, events ``>= threshold``) and window size.

    Cells where the observations (or the result) are NaN, such as sea, count as no event in
    both fields. Result and observations are checked and aligned first (same grid, calendar
    and units; common times).

    Parameters
    ----------
    result
        Downscaled field(s), dims ``(member?, time, lat, lon)``.
    obs
        Observations ``(time, lat, lon)``.
    thresholds
        Event thresholds, e.g. ``(1, 10)`` mm day-1.
    windows
        Window sizes in cells (odd sizes centre the window on a cell); each must fit the grid.

    Returns
    -------
    xarray.DataArray
        Dims ``(threshold, window)``; computed (numpy-backed).

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(16, 16, 3).pr
    >>> fss = fractions_skill_score(obs, obs, thresholds=[1.0], windows=[1, 3])
    >>> fss.values.round(6).tolist()
    [[1.0, 1.0]]
    """
    from scores.spatial import fss_2d

    r, o = align_to_obs(result, obs)
    lat, lon = str(o.dims[-2]), str(o.dims[-1])
    ny, nx = int(o.sizes[lat]), int(o.sizes[lon])
    bad = [w for w in windows if not 1 <= int(w) <= min(ny, nx)]
    if bad:
        raise EsmscaleError(
            f"FSS window sizes {bad} do not fit the {ny}x{nx} grid; use sizes from 1 to "
            f"{min(ny, nx)} cells."
        )
    missing = o.isnull() | (r.isnull().any(MEMBER) if MEMBER in r.dims else r.isnull())
    o_f = o.where(~missing, 0.0).load()
    r_f = r.where(~missing, 0.0).load()
    if MEMBER not in r_f.dims:
        r_f = r_f.expand_dims({MEMBER: 1})
    out = np.empty((len(thresholds), len(windows)))
    for i, thr in enumerate(thresholds):
        for j, w in enumerate(windows):
            per_member = fss_2d(
                r_f,
                o_f,
                event_threshold=float(thr),
                window_size=(int(w), int(w)),
                spatial_dims=(lat, lon),
                preserve_dims=[MEMBER],
                threshold_operator=np.greater_equal,
            )
            out[i, j] = float(per_member.mean())
    return xr.DataArray(
        out,
        dims=("threshold", "window"),
        coords={"threshold": np.asarray(thresholds, float), "window": np.asarray(windows, int)},
        name="fss",
        attrs={"threshold_units": str(o.attrs.get("units", ""))},
    )
