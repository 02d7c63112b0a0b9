"""Keep the ESM's change signal: a per-cell quantile-delta step after the network.

A downscaled scenario run should change, cell by cell, as the ESM does. The network and the
bias correction before it reshape each cell's distribution, so the change of its quantiles,
and with them of intense-day indices (Rx1day, R95pTOT), drifts from the ESM's (issue 11).
:func:`keep_change` maps each cell of the downscaled future onto quantiles that carry the
ESM's change:

``T(tau) = Q_past(tau) * D(tau)``, ``D(tau) = (E_fut(tau) + eps) / (E_past(tau) + eps)``

for precipitation-like fields (``kind="*"``; ``T = Q_past + E_fut - E_past`` for ``"+"``),
with ``Q_past`` the downscaled past's quantiles, ``E_*`` the ESM's (on the same grid) and
``eps`` one percent of the ESM's past mean at that cell (dry quantiles keep ``D = 1``). Each
future value at rank ``tau = F_fut(x)`` becomes ``T(tau)`` (linear between the nodes; beyond
the outermost nodes scaled, or shifted, as the node is): the order of days, members and cells'
values is the network's, only the values at each rank move; zeros stay zeros. The quantiles
pool the members with the time axis (they share one climate).

It keeps the change of every quantile, not of every statistic: the mean weighs each
quantile by its value. Measured on Iberia DJF precipitation (docs/benchmarks.md, real Iberia
benchmark, section c), much of CNRM-CM5's mean change sits in its drizzle, which is dry in
E-OBS, and the step lost most of the mean change. Use it for fields without a dry mass
(temperature) or where the change of the intense end matters more than the mean's.

The kernel :func:`map_to_quantiles` is pure numpy (cells by samples).
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from esmscale.errors import EsmscaleError
from esmscale.prepare.units import linear_factors, quantity

__all__ = ["keep_change", "map_to_quantiles", "target_quantiles"]

#: ``eps`` of the ratios, as a fraction of each cell's mean.
EPS_FRACTION = 0.01


def target_quantiles(
    q_past: np.ndarray,
    e_past: np.ndarray,
    e_fut: np.ndarray,
    *,
    multiplicative: bool,
    eps: np.ndarray | float = 0.0,
) -> np.ndarray:
    """The downscaled past's quantiles with the ESM's change per quantile.

    All arrays are ``(..., nquantiles)``; ``eps`` broadcasts against them (``(..., 1)``).

    Examples
    --------
    >>> q = np.array([[0.0, 2.0, 10.0]])
    >>> target_quantiles(q, np.array([[0.0, 1.0, 4.0]]), np.array([[0.0, 1.5, 2.0]]),
    ...                  multiplicative=True).tolist()
    [[0.0, 3.0, 5.0]]
    """
    if multiplicative:
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = (e_fut + eps) / (e_past + eps)
        delta = np.where(e_past + eps > 0, delta, 1.0)
        return np.asarray(q_past * delta)
    return np.asarray(q_past + (e_fut - e_past))


def map_to_quantiles(
    x: np.ndarray, q_from: np.ndarray, q_to: np.ndarray, *, multiplicative: bool
) -> np.ndarray:
    """Move each cell's values from quantiles ``q_from`` to ``q_to``, keeping their order.

    Parameters
    ----------
    x
        ``(cells, samples)``; NaN stays NaN.
    q_from, q_to
        ``(cells, nquantiles)``: the quantiles of ``x`` at equally spaced probabilities
        (non-decreasing), and the quantiles wanted there (made non-decreasing).
    multiplicative
        Beyond the outermost nodes, values are scaled by that node's ratio (else shifted by
        its difference); zeros stay zero (no wet day is made from a dry one).

    Returns
    -------
    numpy.ndarray
        ``(cells, samples)``: each value at its rank, linearly between the nodes, on ``q_to``.
        Monotone in ``x`` per cell.

    Examples
    --------
    >>> x = np.array([[0.0, 1.0, 2.0, 3.0, 4.0]])
    >>> map_to_quantiles(x, x, 2 * x, multiplicative=True).tolist()
    [[0.0, 2.0, 4.0, 6.0, 8.0]]
    >>> map_to_quantiles(x, x[:, 1:4], x[:, 1:4] + 1, multiplicative=False).tolist()
    [[1.0, 2.0, 3.0, 4.0, 5.0]]
    """
    x = np.asarray(x, dtype=np.float64)
    q_from, q_to = np.asarray(q_from, np.float64), np.asarray(q_to, np.float64)
    if x.ndim != 2 or q_from.shape != q_to.shape or q_from.shape[0] != x.shape[0]:
        raise EsmscaleError(
            f"map_to_quantiles: values {x.shape} must be (cells, samples) and both quantile "
            f"arrays (cells, nquantiles); got {q_from.shape} and {q_to.shape}."
        )
    nodes = np.arange(q_from.shape[1], dtype=np.float64)
    out = np.full_like(x, np.nan)
    for c in range(x.shape[0]):
        qf, ok = q_from[c], np.isfinite(x[c])
        if not ok.any() or not (np.isfinite(qf).all() and np.isfinite(q_to[c]).all()):
            continue
        qt = np.maximum.accumulate(q_to[c])
        v = x[c, ok]
        y = np.interp(np.interp(v, qf, nodes), nodes, qt)
        for end, outside in ((0, v < qf[0]), (-1, v > qf[-1])):
            if multiplicative and qf[end] > 0:
                y[outside] = v[outside] * (qt[end] / qf[end])
            else:
                y[outside] = v[outside] + (qt[end] - qf[end])
        if multiplicative:
            y[v == 0] = 0.0
        out[c, ok] = y
    return out


def _same_grid(a: xr.DataArray, b: xr.DataArray, name_a: str, name_b: str) -> None:
    sa = {d: n for d, n in a.sizes.items() if d not in ("time", "member")}
    sb = {d: n for d, n in b.sizes.items() if d not in ("time", "member")}
    if sa != sb:
        raise EsmscaleError(
            f"keep_change: {name_a} has grid {sa} but {name_b} has {sb}; give the ESM on the "
            "output's grid (esmscale.prepare.regrid(esm, target=output)) and both periods on "
            "the same grid."
        )


def _kind(units: str | None, kind: str | None) -> str:
    if kind is not None:
        if kind not in ("*", "+"):
            raise EsmscaleError(f"keep_change: kind={kind!r}; use '*' (ratios) or '+' (shifts).")
        return kind
    if units is None:
        raise EsmscaleError(
            "keep_change: the output has no 'units' attribute, so whether the change is a "
            "ratio or a shift is unknown; give kind='*' (precipitation) or kind='+'."
        )
    return "*" if quantity(units, "future") == "precipitation" else "+"


def keep_change(
    future: xr.DataArray,
    past: xr.DataArray,
    esm_future: xr.DataArray,
    esm_past: xr.DataArray,
    *,
    nquantiles: int = 100,
    kind: str | None = None,
) -> xr.DataArray:
    """The downscaled ``future`` with each cell's quantiles changed as the ESM's are.

    Parameters
    ----------
    future, past
        Downscaled output of the two periods (dims ``time``, optionally ``member``, and the
        grid), same grid and units.
    esm_future, esm_past
        The ESM's fields of the same periods on the same grid (regridded, before any bias
        correction or after it: the change of what is given is kept).
    nquantiles
        Quantile nodes at probabilities ``(k + 0.5) / nquantiles``.
    kind
        ``"*"`` (relative change; the default for precipitation) or ``"+"`` (absolute).

    Returns
    -------
    xarray.DataArray
        ``future``'s dims, coordinates and attributes; lazy when the inputs are.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> t = xr.date_range("2000-01-01", periods=400, freq="D", use_cftime=True)
    >>> def field(x):
    ...     return xr.DataArray(x.reshape(400, 1, 2), dims=("time", "lat", "lon"),
    ...                         coords={"time": t}, attrs={"units": "mm day-1"})
    >>> e_past = field(rng.gamma(0.5, 4.0, 800))
    >>> past = field(rng.gamma(0.5, 6.0, 800))          # the downscaled past, wetter
    >>> fut = field(rng.gamma(0.5, 6.0, 800))           # the network lost the change
    >>> kept = keep_change(fut, past, e_past * 1.3, e_past)  # the ESM: +30 %
    >>> round(float(kept.mean() / past.mean()), 1)
    1.3
    """
    for name, da in (("future", future), ("past", past), ("esm_future", esm_future),
                     ("esm_past", esm_past)):  # fmt: skip
        if not isinstance(da, xr.DataArray) or "time" not in da.dims:
            raise EsmscaleError(
                f"keep_change: {name} must be an xarray.DataArray with a 'time' dimension."
            )
    if nquantiles < 2:
        raise EsmscaleError(f"keep_change: nquantiles={nquantiles}; give at least 2.")
    _same_grid(future, past, "future", "past")
    _same_grid(future, esm_future, "future", "esm_future")
    _same_grid(future, esm_past, "future", "esm_past")
    units = future.attrs.get("units")
    if past.attrs.get("units") != units:
        raise EsmscaleError(
            f"keep_change: future is in {units!r} but past in {past.attrs.get('units')!r}; "
            "give both periods in the same units."
        )
    k = _kind(units, kind)
    e_units = esm_past.attrs.get("units")
    if esm_future.attrs.get("units") != e_units:
        raise EsmscaleError(
            f"keep_change: esm_future is in {esm_future.attrs.get('units')!r} but esm_past in "
            f"{e_units!r}; give both periods in the same units."
        )
    if k == "+" and units and e_units and e_units != units:  # shifts need the output's units
        scale, _ = linear_factors(e_units, str(units), "esm")
        esm_future, esm_past = esm_future * scale, esm_past * scale
    taus = (np.arange(nquantiles) + 0.5) / nquantiles

    def quantiles(da: xr.DataArray) -> xr.DataArray:
        dims = [d for d in ("member", "time") if d in da.dims]
        if da.chunks is not None:
            da = da.chunk(dict.fromkeys(dims, -1))
        return xr.apply_ufunc(
            _nanquantiles, da, input_core_dims=[dims], output_core_dims=[["node"]],
            kwargs={"taus": taus, "nsample": len(dims)}, dask="parallelized",
            output_dtypes=[np.float64], dask_gufunc_kwargs={"output_sizes": {"node": len(taus)}},
        )  # fmt: skip

    q_fut, q_past = quantiles(future), quantiles(past)
    e_fut, e_past = quantiles(esm_future), quantiles(esm_past)
    mult = k == "*"
    # eps: one percent of each cell's ESM past mean (the mean of its quantiles; NaN cells stay
    # NaN without a warning)
    eps_esm = (
        EPS_FRACTION * e_past.mean("node", skipna=False)
        if mult
        else 0.0 * e_past.isel(node=0, drop=True)
    )

    def target(qp: np.ndarray, ep: np.ndarray, ef: np.ndarray, e: np.ndarray) -> np.ndarray:
        return target_quantiles(qp, ep, ef, multiplicative=mult, eps=np.asarray(e)[..., None])

    node = ["node"]
    q_to = xr.apply_ufunc(
        target, q_past, e_past, e_fut, eps_esm,
        input_core_dims=[node, node, node, []], output_core_dims=[node], dask="parallelized",
        output_dtypes=[np.float64],
    )  # fmt: skip
    sample: list[Hashable] = [d for d in ("member", "time") if d in future.dims]
    x = future.chunk(dict.fromkeys(sample, -1)) if future.chunks is not None else future
    out = xr.apply_ufunc(
        _map_block, x, q_fut, q_to,
        input_core_dims=[sample, node, node], output_core_dims=[sample],
        kwargs={"multiplicative": mult, "nsample": len(sample)},
        dask="parallelized", output_dtypes=[np.float64],
    )  # fmt: skip
    out = out.transpose(*future.dims).astype(future.dtype, copy=False)
    return out.assign_attrs(future.attrs).rename(future.name)


def _nanquantiles(a: np.ndarray, *, taus: np.ndarray, nsample: int) -> np.ndarray:
    """Quantiles over the last ``nsample`` axes (NaN skipped; all-NaN cells give NaN quietly)."""
    flat = a.reshape(*a.shape[: a.ndim - nsample], -1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        q = np.nanquantile(flat, taus, axis=-1)
    return np.moveaxis(q, 0, -1)


def _map_block(
    x: np.ndarray, q_from: np.ndarray, q_to: np.ndarray, *, multiplicative: bool, nsample: int
) -> np.ndarray:
    """:func:`map_to_quantiles` on a block whose core dims come last."""
    grid: Sequence[int] = x.shape[: x.ndim - nsample]
    cells = int(np.prod(grid)) if grid else 1
    flat = x.reshape(cells, -1)
    out = map_to_quantiles(
        flat, q_from.reshape(cells, -1), q_to.reshape(cells, -1), multiplicative=multiplicative
    )
    return out.reshape(x.shape)
