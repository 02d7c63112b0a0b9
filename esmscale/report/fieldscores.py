"""The field's own scores in the evaluation report: ETCCDI indices (xclim) and the FSS.

Precipitation is judged by its climate indices and by spatial verification, not only by
point-wise errors. :func:`field_scores` computes, for every method, the relative bias of each
index of :data:`esmscale.metrics.INDICES` against the observations
(:func:`esmscale.metrics.index_bias`) and the fractions skill score at 1 and 10 mm day-1 over
windows of 1 to 9 cells (:func:`esmscale.metrics.fractions_skill_score`). Both are defined for
daily precipitation only: for any other variable or time step the report says why they are
absent (``skipped``) instead of leaving them out silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import xarray as xr

from esmscale import metrics as M
from esmscale.errors import EsmscaleError
from esmscale.metrics.indices import _daily_contiguous, _to_mm_day
from esmscale.metrics.spatial import DEFAULT_THRESHOLDS, DEFAULT_WINDOWS

__all__ = ["field_scores"]


def _applicable(o: xr.DataArray, tdim: str | None) -> str | None:
    """None if the indices apply to ``o``, else the reason they do not."""
    if tdim is None:
        return "the observations have no time axis (indices need a daily series)"
    try:
        _daily_contiguous(_to_mm_day(o, "obs"), tdim, "obs", ["indices"])
    except EsmscaleError as err:
        return str(err)
    return None


def field_scores(
    aligned: Mapping[str, tuple[xr.DataArray, xr.DataArray]],
    obs: xr.DataArray,
    tdim: str | None,
    *,
    indices: bool = True,
    fss: bool = True,
) -> dict[str, Any]:
    """Index biases and FSS per method, or the reason they do not apply.

    Parameters
    ----------
    aligned
        Method name -> ``(result, observations)`` as aligned by
        :func:`esmscale.metrics.align_to_obs`.
    obs
        The observations (for the applicability check).
    tdim
        Name of the time dimension of ``obs``, or None.
    indices, fss
        Compute the index biases / the FSS.

    Returns
    -------
    dict
        ``{"index_bias": {method: {index: relative bias}}, "fss": {method: {threshold:
        {window: FSS}}}, "fss_thresholds_units": "mm day-1", "skipped": reason or None}``.

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(12, 12, 40).pr
    >>> out = field_scores({"same": (obs, obs)}, obs, "time")
    >>> out["skipped"], round(out["index_bias"]["same"]["rx1day"], 6), out["fss"]["same"]["1"]["3"]
    (None, 0.0, 1.0)
    """
    out: dict[str, Any] = {"index_bias": {}, "fss": {}, "fss_thresholds_units": "mm day-1"}
    out["skipped"] = _applicable(obs, tdim) if (indices or fss) else "not requested"
    if out["skipped"] is not None:
        return out
    for name, (r, o) in aligned.items():
        rm, om = _to_mm_day(r, name), _to_mm_day(o, "obs")
        rm.attrs["units"] = om.attrs["units"] = "mm day-1"
        if indices:
            out["index_bias"][name] = M.index_bias(rm, om)
        if fss:
            ny, nx = om.shape[-2:]
            wins = [w for w in DEFAULT_WINDOWS if w <= min(ny, nx)]
            f = M.fractions_skill_score(rm, om, DEFAULT_THRESHOLDS, wins)
            out["fss"][name] = {
                f"{thr:g}": {str(w): float(f.sel(threshold=thr, window=w)) for w in wins}
                for thr in DEFAULT_THRESHOLDS
            }
    return out
