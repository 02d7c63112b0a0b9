"""Ensemble metrics: fair CRPS, spread-skill ratio, rank histogram (and MAE for a
deterministic result).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from scores.probability import crps_for_ensemble

from esmscale.errors import EsmscaleError
from esmscale.metrics.checks import (
    MEMBER,
    align_to_obs,
    require_members,
)


def fair_crps(result: xr.DataArray, obs: xr.DataArray) -> xr.DataArray:
    """Mean fair CRPS of the ensemble (``scores.probability.crps_for_ensemble``, "fair").

    ``CRPS = mean_i |x_i - y| - sum_ij |x_i - x_j| / (2 M (M - 1))`` per cell, averaged over
    the cells and times where the observation is finite. Needs a ``member`` dim with ``M >= 2``.

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(8, 8, 2).pr
    >>> ens = xr.concat([obs * 0, obs * 0 + 1, obs * 0 + 2], dim="member")
    >>> round(float(fair_crps(ens, obs * 0 + 2)), 6)
    0.333333
    """
    r, o = align_to_obs(result, obs)
    require_members(r, "fair CRPS")
    if r.chunks is not None:
        r = r.chunk({MEMBER: -1})
    crps = crps_for_ensemble(r, o, MEMBER, method="fair", preserve_dims="all")
    return crps.where(o.notnull()).mean().rename("crps")


def mean_absolute_error(result: xr.DataArray, obs: xr.DataArray) -> xr.DataArray:
    """``mean |result - obs|`` over members, times and cells (finite pairs only).

    For a deterministic result (no ``member`` dim) this is the MAE, which equals the CRPS of
    a one-member ensemble, so it sits in the CRPS column of the report.

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(8, 8, 2).pr
    >>> round(float(mean_absolute_error(obs - 0.25, obs)), 6)
    0.25
    """
    r, o = align_to_obs(result, obs)
    return abs(r - o).mean().rename("mae")


def _ensemble_valid(r: xr.DataArray, o: xr.DataArray) -> xr.DataArray:
    return o.notnull() & r.notnull().all(MEMBER)


def spread_skill_ratio(
    result: xr.DataArray, obs: xr.DataArray, dim: str | Sequence[str] | None = None
) -> xr.DataArray:
    """Spread-skill ratio with the finite-ensemble correction.

    ``SSR = sqrt((M + 1) / M) * sqrt(mean s^2) / sqrt(mean (xbar - y)^2)`` with ``s^2`` the
    unbiased ensemble variance (``ddof=1``) and ``xbar`` the ensemble mean, averaged over
    ``dim`` (default: times and cells). A calibrated ensemble has ``SSR ~ 1``; below 1 it is
    under-dispersive.

    Examples
    --------
    >>> coords = {"lat": [0.0, 1.0, 2.0, 3.0], "lon": [0.0]}
    >>> ens = xr.DataArray([[[[0.0], [1.0], [0.0], [1.0]]], [[[2.0], [1.0], [2.0], [1.0]]]],
    ...                    dims=("member", "time", "lat", "lon"), coords=coords)
    >>> obs = xr.DataArray([[[0.0], [2.0], [0.0], [2.0]]], dims=("time", "lat", "lon"),
    ...                    coords=coords)
    >>> round(float(spread_skill_ratio(ens, obs)), 6)
    1.224745
    """
    r, o = align_to_obs(result, obs)
    m = require_members(r, "spread-skill ratio")
    ok = _ensemble_valid(r, o)
    var = r.var(MEMBER, ddof=1).where(ok)
    sq = ((r.mean(MEMBER) - o) ** 2).where(ok)
    red = dim if dim is not None else list(o.dims)
    ssr = np.sqrt((m + 1.0) / m) * np.sqrt(var.mean(red)) / np.sqrt(sq.mean(red))
    return ssr.rename("spread_skill_ratio")


def _rank_shares(ens: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """``ens (..., M)``, ``obs (...)`` -> ``(..., M + 1)`` share of each rank per case.

    Ties share the case equally among the tied ranks; cases with a NaN count zero.
    """
    m = ens.shape[-1]
    ok = np.isfinite(obs) & np.isfinite(ens).all(axis=-1)
    o = obs[..., None]
    below = (ens < o).sum(axis=-1)
    ties = (ens == o).sum(axis=-1)
    r = np.arange(m + 1)
    inside = (r >= below[..., None]) & (r <= (below + ties)[..., None])
    share = inside / (ties[..., None] + 1.0)
    share[~ok] = 0.0
    return share


def rank_histogram(result: xr.DataArray, obs: xr.DataArray) -> xr.DataArray:
    """Rank histogram (Talagrand diagram): counts of the observation's rank in the ensemble.

    Rank ``r`` (1..M+1) is one plus the number of members below the observation; when the
    observation ties with members (e.g. dry cells in precipitation), the case is shared
    equally among the tied ranks, as in ``scores.probability.rank_histogram`` (whose
    normalised output this matches). Cases with a NaN are left out.

    Returns
    -------
    xarray.DataArray
        Dim ``rank`` (coordinate 1..M+1): (fractional) counts; divide by ``.sum()`` for
        frequencies.

    Examples
    --------
    >>> coords = {"lat": [0.0, 1.0, 2.0, 3.0], "lon": [0.0]}
    >>> ens = xr.DataArray([[[[1.0], [1.0], [1.0], [1.0]]], [[[2.0], [2.0], [2.0], [2.0]]]],
    ...                    dims=("member", "time", "lat", "lon"), coords=coords)
    >>> obs = xr.DataArray([[[0.0], [1.5], [3.0], [1.0]]], dims=("time", "lat", "lon"),
    ...                    coords=coords)
    >>> rank_histogram(ens, obs).values.tolist()
    [1.5, 1.5, 1.0]
    """
    r, o = align_to_obs(result, obs)
    m = require_members(r, "rank histogram")
    shares = xr.apply_ufunc(
        _rank_shares,
        r.chunk({MEMBER: -1}) if r.chunks is not None else r,
        o,
        input_core_dims=[[MEMBER], []],
        output_core_dims=[["rank"]],
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"rank": m + 1}},
    )
    counts = shares.sum([d for d in shares.dims if d != "rank"])
    return counts.assign_coords(rank=np.arange(1, m + 2)).rename("rank_histogram")


def rank_flatness(hist: xr.DataArray) -> xr.DataArray:
    """Flatness of a rank histogram: ``delta = sum_k (s_k - N/(M+1))^2 / (N M / (M+1))``.

    ``s_k`` are the counts of :func:`rank_histogram`, ``N = sum_k s_k`` and ``M + 1`` the
    number of ranks (Candille & Talagrand 2005); ``delta = chi^2 / M``. It is about 1 for a
    calibrated ensemble with independent cases and grows with any departure from flatness
    (spatially correlated cells inflate it, so compare methods on the same data).

    Examples
    --------
    >>> float(rank_flatness(xr.DataArray([6.0, 0.0, 0.0], dims="rank")))
    6.0
    >>> float(rank_flatness(xr.DataArray([2.0, 2.0, 2.0], dims="rank")))
    0.0
    """
    if "rank" not in hist.dims:
        raise EsmscaleError("rank_flatness: the input has no 'rank' dim; use rank_histogram.")
    k = int(hist.sizes["rank"])
    n = hist.sum("rank")
    expected = n / k
    return (((hist - expected) ** 2).sum("rank") / (n * (k - 1) / k)).rename("rank_flatness")
