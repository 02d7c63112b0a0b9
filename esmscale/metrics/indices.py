"""ETCCDI precipitation indices through xclim: per period, per member, lazily.

The nine indices of the field's standard set (Zhang et al. 2011, ETCCDI), each computed with
:mod:`xclim.indices` on daily precipitation in mm day-1 (converted from any known units):

========  =====================================================  ==========
name      meaning                                                units
========  =====================================================  ==========
rx1day    largest 1-day amount                                   mm
rx5day    largest 5-day amount                                   mm
sdii      mean amount on wet days (>= 1 mm)                      mm day-1
r10mm     days with >= 10 mm                                     days
r20mm     days with >= 20 mm                                     days
cdd       longest run of dry days (< 1 mm)                       days
cwd       longest run of wet days (>= 1 mm)                      days
r95ptot   share of the total from days above the base period's   %
          95th percentile of wet days
prcptot   total on wet days (>= 1 mm)                            mm
========  =====================================================  ==========

Data with gaps in time (e.g. winters only, as in a DJF archive) are put on a complete daily
axis first, the missing days NaN, so that 5-day sums and runs never bridge a gap; periods
(``freq``) without any data are dropped. Indices of a series with a ``member`` dim are
computed per member. Nothing is computed until ``.compute()``. Spells (CDD, CWD) are counted
within the whole series and assigned to the period where they end (xclim's
``resample_before_rl=False``, four times faster here); with gaps NaN a spell never spans them.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from esmscale.errors import EsmscaleError
from esmscale.metrics.checks import align_to_obs, calendar_of, latlon_dims, time_dim
from esmscale.prepare.units import linear_factors, quantity
from esmscale.registry import Registry

__all__ = [
    "INDICES",
    "climate_indices",
    "index_bias",
    "index_change",
    "wet_day_percentile",
]

WET = 1.0  # mm day-1, the ETCCDI wet-day threshold


@dataclass(frozen=True)
class ClimateIndex:
    """One index: how to compute it from daily mm day-1 and what its values are."""

    name: str
    long_name: str
    units: str
    compute: Callable[[xr.DataArray, str, xr.DataArray | None], xr.DataArray]
    needs_base: bool = False


INDICES: Registry[ClimateIndex] = Registry("climate index")


def _register(name: str, long_name: str, units: str, needs_base: bool = False) -> Callable:
    def deco(fn: Callable[[xr.DataArray, str, xr.DataArray | None], xr.DataArray]) -> Callable:
        INDICES.register(name, ClimateIndex(name, long_name, units, fn, needs_base))
        return fn

    return deco


def _xi() -> Any:
    import xclim.indices as xi  # heavy import, only when indices are asked for

    return xi


@_register("rx1day", "largest 1-day precipitation", "mm")
def _rx1day(pr: xr.DataArray, freq: str, _: xr.DataArray | None) -> xr.DataArray:
    return _xi().max_1day_precipitation_amount(pr, freq=freq)


@_register("rx5day", "largest 5-day precipitation", "mm")
def _rx5day(pr: xr.DataArray, freq: str, _: xr.DataArray | None) -> xr.DataArray:
    return _xi().max_n_day_precipitation_amount(pr, window=5, freq=freq)


@_register("sdii", "simple daily intensity (mean on wet days)", "mm day-1")
def _sdii(pr: xr.DataArray, freq: str, _: xr.DataArray | None) -> xr.DataArray:
    return _xi().daily_pr_intensity(pr, thresh=f"{WET} mm/day", freq=freq)


@_register("r10mm", "days with >= 10 mm", "days")
def _r10mm(pr: xr.DataArray, freq: str, _: xr.DataArray | None) -> xr.DataArray:
    return _xi().wetdays(pr, thresh="10 mm/day", freq=freq, op=">=")


@_register("r20mm", "days with >= 20 mm", "days")
def _r20mm(pr: xr.DataArray, freq: str, _: xr.DataArray | None) -> xr.DataArray:
    return _xi().wetdays(pr, thresh="20 mm/day", freq=freq, op=">=")


@_register("cdd", "longest dry spell (< 1 mm)", "days")
def _cdd(pr: xr.DataArray, freq: str, _: xr.DataArray | None) -> xr.DataArray:
    return _xi().maximum_consecutive_dry_days(
        pr, thresh=f"{WET} mm/day", op="<", freq=freq, resample_before_rl=False
    )


@_register("cwd", "longest wet spell (>= 1 mm)", "days")
def _cwd(pr: xr.DataArray, freq: str, _: xr.DataArray | None) -> xr.DataArray:
    return _xi().maximum_consecutive_wet_days(
        pr, thresh=f"{WET} mm/day", op=">=", freq=freq, resample_before_rl=False
    )


@_register("r95ptot", "share of the wet-day total above the base 95th percentile", "%",
           needs_base=True)  # fmt: skip
def _r95ptot(pr: xr.DataArray, freq: str, per: xr.DataArray | None) -> xr.DataArray:
    assert per is not None
    frac = _xi().fraction_over_precip_thresh(pr, per, thresh=f"{WET} mm/day", freq=freq, op=">")
    return 100.0 * frac


@_register("prcptot", "total on wet days (>= 1 mm)", "mm")
def _prcptot(pr: xr.DataArray, freq: str, _: xr.DataArray | None) -> xr.DataArray:
    wet = pr.where(pr >= WET, 0.0).where(pr.notnull())
    return wet.resample(time=freq).sum(min_count=1).assign_attrs(units="mm")


DEFAULT_INDICES: tuple[str, ...] = tuple(INDICES.available())


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hide the libraries' noise that says nothing about the user's data.

    Cells without a single wet day (sea, deserts) make the wet-day percentile an all-NaN
    slice, which is the intended NaN; xclim's calendar code trips a pandas deprecation.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
        warnings.filterwarnings("ignore", module="xclim")
        yield


def _to_mm_day(pr: xr.DataArray, name: str) -> xr.DataArray:
    units = pr.attrs.get("units")
    if quantity(units, name) != "precipitation":
        raise EsmscaleError(
            f"variable {name!r} has units {units!r}, not a precipitation rate; the climate "
            "indices (rx1day, ..., prcptot) are defined for daily precipitation."
        )
    scale, offset = linear_factors(units, "mm day-1", name)
    out = pr if (scale, offset) == (1.0, 0.0) else pr * scale + offset
    return out.assign_attrs({**pr.attrs, "units": "mm/d"})


def _daily_contiguous(pr: xr.DataArray, t: str, name: str, indices: Sequence[str]) -> Any:
    """``pr`` on a complete daily axis (missing days NaN); errors for non-daily data."""
    idx = pr.indexes[t]
    if len(idx) < 2:
        raise EsmscaleError(f"variable {name!r} has {len(idx)} time step; indices need a series.")
    steps = np.diff(np.asarray([(v - idx[0]).total_seconds() for v in idx], dtype=np.float64))
    step_days = float(np.median(steps)) / 86400.0
    if abs(step_days - 1.0) > 0.01:
        kind = "monthly" if 27 <= step_days <= 32 else f"a time step of {step_days:g} days"
        raise EsmscaleError(
            f"indices {list(indices)} need daily data, but {name!r} is {kind}; give daily "
            "precipitation (these ETCCDI indices are defined on daily amounts)."
        )
    cal = calendar_of(pr[t])
    use_cftime = isinstance(idx, xr.CFTimeIndex)
    full = xr.date_range(
        idx[0], idx[-1], freq="D", calendar=cal if use_cftime else "standard",
        use_cftime=use_cftime,
    )  # fmt: skip
    if len(full) == len(idx):
        return pr
    return pr.reindex({t: full})


def wet_day_percentile(base: xr.DataArray, q: float = 0.95, name: str = "base") -> xr.DataArray:
    """Per-cell ``q`` quantile of wet days (>= 1 mm day-1) of ``base``, for R95pTOT.

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> per = wet_day_percentile(synthetic_precip(8, 8, 60).pr)
    >>> per.dims, per.attrs["units"]
    (('lat', 'lon'), 'mm/d')
    """
    b = _to_mm_day(base, name)
    lat, lon = latlon_dims(b, name)
    t = time_dim(b, lat, lon, name)
    if t is None:
        raise EsmscaleError(f"{name!r} has no time dimension; a percentile needs a series.")
    if b.chunks is not None:
        b = b.chunk({t: -1})
    with _quiet():  # a cell without wet days has no percentile: NaN, as intended
        per = b.where(b >= WET).quantile(q, dim=t, skipna=True).drop_vars("quantile")
    return per.assign_attrs(units="mm/d")


def climate_indices(
    pr: xr.DataArray,
    indices: Sequence[str] | None = None,
    *,
    freq: str = "YS",
    base: xr.DataArray | None = None,
    name: str | None = None,
) -> xr.Dataset:
    """ETCCDI precipitation indices of a daily series, one variable per index.

    Parameters
    ----------
    pr
        Daily precipitation, dims ``(member?, time, lat, lon)``, with known ``units``.
    indices
        Names from :data:`INDICES` (default: all nine).
    freq
        Period of each index value (pandas offset: ``"YS"`` years, ``"QS-DEC"`` seasons, whose
        DJF values are the winters). Periods without data are dropped.
    base
        Series whose wet-day 95th percentile defines R95pTOT's threshold (default: ``pr``
        itself, the ETCCDI convention; give the historical run to measure a change).
    name
        Name used in error messages (default ``pr.name``).

    Returns
    -------
    xarray.Dataset
        ``(member?, time, lat, lon)`` per index, ``time`` the period starts; lazy for Dask input.

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> pr = synthetic_precip(8, 8, 365).pr
    >>> ix = climate_indices(pr, ["rx1day", "r10mm"])
    >>> sorted(ix.data_vars), ix.rx1day.attrs["units"]
    (['r10mm', 'rx1day'], 'mm')
    >>> bool((ix.rx1day == pr.max("time")).all())
    True
    """
    nm = str(name or pr.name or "pr")
    chosen = list(DEFAULT_INDICES if indices is None else indices)
    specs = [INDICES.get(i) for i in chosen]
    p = _to_mm_day(pr, nm)
    lat, lon = latlon_dims(p, nm)
    t = time_dim(p, lat, lon, nm)
    if t is None:
        raise EsmscaleError(f"variable {nm!r} has no time dimension; indices need a series.")
    if t != "time":
        p = p.rename({t: "time"})
    present = xr.ones_like(p["time"], dtype=np.float64)
    p = _daily_contiguous(p, "time", nm, chosen)
    if p.chunks is not None:
        p = p.chunk({"time": -1})
    days = present.reindex(time=p["time"]).resample(time=freq).count()
    keep = days.values > 0
    per = None
    if any(s.needs_base for s in specs):
        per = wet_day_percentile(pr if base is None else base, name=f"{nm} (base)")
    has_data = p.notnull().any("time")  # cells never observed (e.g. sea) stay NaN
    out = {}
    with _quiet():
        for s in specs:
            v = s.compute(p, freq, per).isel(time=keep).where(has_data)
            out[s.name] = v.assign_attrs(units=s.units, long_name=s.long_name)
    return xr.Dataset(out)


def _mean_over(ix: xr.Dataset, valid: xr.DataArray | None) -> dict[str, float]:
    """Mean of each index over members, periods and (valid) cells."""
    ds = ix if valid is None else ix.where(valid)
    with _quiet():
        means = ds.mean().compute()
    return {str(k): float(v) for k, v in means.data_vars.items()}


def index_bias(
    result: xr.DataArray,
    obs: xr.DataArray,
    indices: Sequence[str] | None = None,
    *,
    freq: str = "YS",
) -> dict[str, float]:
    """Relative bias of each index: ``mean(index(result)) / mean(index(obs)) - 1``.

    Means run over members, periods and the cells where the observations exist. Result and
    observations are first checked and aligned (:func:`~esmscale.metrics.align_to_obs`: same
    grid, calendar and units; common days only). R95pTOT uses each dataset's own wet-day 95th
    percentile (the ETCCDI convention).

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(8, 8, 365).pr
    >>> bias = index_bias(obs * 1.1, obs, ["prcptot", "r95ptot"])
    >>> round(bias["prcptot"], 2) >= 0.1, abs(bias["r95ptot"]) < 0.05
    (True, True)
    """
    r, o = align_to_obs(result, obs)
    valid = o.notnull().any(str(o.dims[0])) if o.ndim == 3 else None
    mr = _mean_over(climate_indices(r, indices, freq=freq, name="result"), valid)
    mo = _mean_over(climate_indices(o, indices, freq=freq, name="obs"), valid)
    return {k: (mr[k] / mo[k] - 1.0) if mo[k] != 0 else float("nan") for k in mr}


def index_change(
    future: xr.DataArray,
    past: xr.DataArray,
    indices: Sequence[str] | None = None,
    *,
    freq: str = "YS",
    valid: xr.DataArray | None = None,
    per_cell: bool = False,
) -> dict[str, float]:
    """Relative change of each index between two periods: ``mean(fut) / mean(past) - 1``.

    R95pTOT of both periods uses the past period's wet-day 95th percentile (a fixed base, so
    the index measures the change in heavy-day totals). ``valid`` (a lat/lon mask) restricts
    the cells averaged. ``per_cell``: the mean over cells of each cell's relative change
    (every cell counts alike) instead of the change of the domain mean, in which wet cells
    weigh most; a bias correction that reshapes the climatology map changes the second even
    where it keeps every cell's change.

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> past = synthetic_precip(8, 8, 365).pr
    >>> ch = index_change(past * 1.2, past, ["rx1day", "prcptot"])
    >>> round(ch["rx1day"], 3)
    0.2
    >>> wet_east = past * xr.DataArray(np.linspace(1.0, 3.0, 8), dims="lon")
    >>> east_up = wet_east * xr.DataArray([1.0] * 4 + [1.4] * 4, dims="lon")
    >>> round(index_change(east_up, wet_east, ["rx1day"], per_cell=True)["rx1day"], 3)
    0.2
    >>> round(index_change(east_up, wet_east, ["rx1day"])["rx1day"], 2)  # wet cells weigh more
    0.27
    """
    fi = climate_indices(future, indices, freq=freq, base=past, name="future")
    pi = climate_indices(past, indices, freq=freq, base=past, name="past")
    if per_cell:
        grid = latlon_dims(past, "past")
        other = [d for d in fi.dims if d not in grid]
        with _quiet():
            rel = (fi.mean(other) / pi.mean(other) - 1.0).compute()
        return _mean_over(rel, valid)
    mf, mp = _mean_over(fi, valid), _mean_over(pi, valid)
    return {k: (mf[k] / mp[k] - 1.0) if mp[k] != 0 else float("nan") for k in mf}
