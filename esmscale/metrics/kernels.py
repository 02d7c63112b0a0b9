"""Numpy metric kernels returning floats (used by calibration and the perfect-model benchmark).

They know nothing of xarray coordinates; the xarray metrics in :mod:`esmscale.metrics` check
grids, calendars and units first.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scores.probability import crps_for_ensemble

from esmscale.errors import EsmscaleError
from esmscale.prepare.interp import coarsen_block


def crps_ensemble(ensemble: np.ndarray, truth: np.ndarray) -> float:
    """Mean fair CRPS of an ensemble ``(members, ...)`` against ``truth`` ``(...)``; NaN ignored.

    Examples
    --------
    >>> float(round(crps_ensemble(np.zeros((2, 3)), np.ones(3)), 6))
    1.0
    """
    ens = np.asarray(ensemble, dtype=np.float64)
    obs = np.asarray(truth, dtype=np.float64)
    if ens.ndim != obs.ndim + 1 or ens.shape[1:] != obs.shape:
        raise EsmscaleError(
            f"crps_ensemble: ensemble shape {ens.shape} must be (members, *{obs.shape})."
        )
    if ens.shape[0] < 2:
        raise EsmscaleError("crps_ensemble: the fair CRPS needs at least 2 members.")
    valid = np.isfinite(obs) & np.isfinite(ens).all(axis=0)
    e = xr.DataArray(ens[:, valid], dims=("member", "cell"))
    o = xr.DataArray(obs[valid], dims=("cell",))
    res = crps_for_ensemble(e, o, ensemble_member_dim="member", method="fair")
    return float(res)


def mae(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error over finite cells."""
    d = np.abs(np.asarray(pred, dtype=np.float64) - np.asarray(truth, dtype=np.float64))
    return float(np.nanmean(d))


def pooled_correlation(fine: np.ndarray, coarse: np.ndarray, factor: int) -> float:
    """Pearson correlation between ``fine`` average-pooled by ``factor`` and ``coarse``.

    ``fine`` is ``(..., H, W)``; ``coarse`` is broadcastable to the pooled shape. Cells that are
    NaN in either are left out.
    """
    pooled = coarsen_block(np.asarray(fine, dtype=np.float64), factor)
    ref = np.broadcast_to(np.asarray(coarse, dtype=np.float64), pooled.shape)
    ok = np.isfinite(pooled) & np.isfinite(ref)
    return float(np.corrcoef(pooled[ok], ref[ok])[0, 1])


def quantile_error(pred: np.ndarray, truth: np.ndarray, q: float) -> float:
    """Relative error of the ``q`` quantile: ``Q_pred / Q_truth - 1`` (finite cells)."""
    qp = np.nanquantile(np.asarray(pred, dtype=np.float64), q)
    qt = np.nanquantile(np.asarray(truth, dtype=np.float64), q)
    return float(qp / qt - 1.0)


def wet_day_frequency(x: np.ndarray, threshold: float = 1.0) -> float:
    """Fraction of finite cells with ``x >= threshold`` (mm day-1)."""
    a = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(a)
    return float((a[ok] >= threshold).mean())
