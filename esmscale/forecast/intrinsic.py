"""Intrinsic dimension of a point cloud: the Levina-Bickel kNN maximum-likelihood estimator.

For a point ``x_i`` with distances ``T_1 <= ... <= T_k`` to its ``k`` nearest neighbours, the
local estimate is ``m_k(x_i) = [ (1/(k-1)) sum_{j<k} log(T_k / T_j) ]^-1`` (Levina & Bickel,
NIPS 2004). Following MacKay & Ghahramani's correction the points are combined by averaging the
*inverse* estimates, ``m_k = [ (1/n) sum_i m_k(x_i)^-1 ]^-1``, which is less biased than the
plain mean; the final estimate is the mean of ``m_k`` over ``k = k1..k2``. Pure numpy/scipy.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from esmscale.errors import EsmscaleError

__all__ = ["intrinsic_dimension"]


def intrinsic_dimension(
    points: np.ndarray, k1: int = 10, k2: int = 20, max_points: int | None = 4000
) -> float:
    """Levina-Bickel MLE of the intrinsic dimension with the MacKay-Ghahramani correction.

    Parameters
    ----------
    points
        ``(n, d)`` array of points (rows); duplicates are dropped.
    k1, k2
        Range of neighbourhood sizes averaged over (``2 <= k1 <= k2 < n``).
    max_points
        Use at most this many points (evenly spaced rows) to bound the cost.

    Returns
    -------
    float
        The estimated dimension.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> plane = rng.standard_normal((2000, 2)) @ rng.standard_normal((2, 10))
    >>> round(intrinsic_dimension(plane))
    2
    """
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2:
        raise EsmscaleError(f"intrinsic_dimension expects an (n, d) array, got shape {x.shape}.")
    x = x[np.isfinite(x).all(axis=1)]
    if max_points is not None and x.shape[0] > max_points:
        x = x[np.linspace(0, x.shape[0] - 1, max_points).round().astype(int)]
    x = np.unique(x, axis=0)
    if not 2 <= k1 <= k2 < x.shape[0]:
        raise EsmscaleError(
            f"intrinsic_dimension needs 2 <= k1 ({k1}) <= k2 ({k2}) < number of distinct finite "
            f"points ({x.shape[0]}); give more points or smaller k."
        )
    dist, _ = cKDTree(x).query(x, k=k2 + 1)
    logd = np.log(np.maximum(dist[:, 1:], 1e-300))  # drop the point itself
    estimates = []
    for k in range(k1, k2 + 1):
        # inverse local estimate: mean_j<k log(T_k / T_j)
        inv = (logd[:, k - 1 : k] - logd[:, : k - 1]).sum(axis=1) / (k - 1)
        inv = inv[np.isfinite(inv) & (inv > 0)]
        if inv.size:
            estimates.append(1.0 / inv.mean())
    if not estimates:
        raise EsmscaleError("intrinsic_dimension: all neighbour distances are equal or zero.")
    return float(np.mean(estimates))
