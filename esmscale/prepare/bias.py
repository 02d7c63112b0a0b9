"""Quantile delta mapping (QDM) bias correction of an ESM field on the observation grid.

Wraps :class:`xsdba.QuantileDeltaMapping` (Cannon et al. 2015) for the step before neural
downscaling (as in Hess et al. 2025): the ESM field, already interpolated onto the grid of the
observations, is corrected so that its quantiles match the observations over a training period
while the model's change signal per quantile (relative for precipitation, absolute for
temperature) is preserved.

Units
    ``ref``, ``hist`` and ``sim`` may come in any units known to
    :mod:`esmscale.prepare.units`. They are converted to a canonical unit (``mm d-1`` for
    precipitation, ``K`` for temperature) before
    xsdba sees them (xsdba cannot turn ``kg m-2 s-1`` into ``mm d-1`` itself) and the corrected
    field is returned in the units of ``ref`` (the observations), with ``attrs["units"]`` set.

Dry days
    Multiplicative QDM divides reference quantiles by model quantiles, which is undefined where
    both are zero (dry days). For precipitation, training values below ``dry_threshold``
    (0.01 mm/day by default; negatives from interpolation included) in ``ref`` and ``hist`` are
    replaced by a seeded uniform noise in (0, ``dry_threshold``), the usual xsdba
    ``jitter_under_thresh`` recipe, so every adjustment factor is finite. After adjustment every
    value below ``dry_threshold`` is set to exactly 0, so the result is non-negative and dry days
    stay dry. Model drizzle is removed by the quantile mapping itself: drizzle ranks of the model
    map onto dry ranks of the observations and fall below the threshold. ``adapt_freq`` is not
    used: it only helps when the model has *too many* dry days and makes ``adjust`` random.

Calendars and time axes
    ``ref`` and ``hist`` may have different calendars, lengths and non-contiguous time axes
    (e.g. DJF winters). With ``group="time"`` (one distribution over all time steps) only the
    values matter, so both are placed on a common synthetic axis padded with NaN (xsdba's
    quantiles ignore NaN). With ``group="time.month"``, ``hist`` is
    converted to the calendar of ``ref`` (``align_on="date"``; dates that do not exist there, such
    as 30 February of a ``360_day`` calendar, are dropped with an :class:`EsmscaleWarning`) and
    both are put on the union of their dates. ``sim`` may use any calendar. Day-of-year grouping
    is not supported.

NaN
    Grid cells where ``ref`` is NaN at every time step (sea in gridded observations) get NaN
    adjustment factors and are NaN in the output, as are cells where ``sim`` is all NaN. Other
    NaN values are ignored by the quantiles and stay NaN.

Mean change
    QDM keeps the model's change *per quantile*; those changes do not in general add up to the
    model's change in the *mean* (weighted by the observed quantiles instead of the model's).
    Where a model's change is concentrated in light rain, QDM can lose a large part of the mean
    change (about a third for CNRM-CM5 RCP8.5 winters over Iberia, see ``docs/benchmarks.md``).
    With ``preserve_mean_change=True`` each cell's corrected series is then scaled
    (multiplicative) or shifted (additive) so that its mean equals the observed training mean
    times (or plus) the model's own mean change relative to its training period:
    ``mean(out) = mean(ref) * mean(sim) / mean(hist)`` (or ``mean(ref) + mean(sim) -
    mean(hist)``), the quantile shape of QDM being kept. Dry days are set after the scaling.
    A multiplicative factor is undefined where the model's training mean or QDM's output mean
    is zero (a cell that never rains); such cells are left as QDM gives them.

Limits
    Only ``group="time"`` and ``"time.month"`` (xsdba 0.7 fails on seasons missing from the
    training data; day-of-year groups clash across calendars). Every group needs at least
    ``nquantiles`` time steps. QDM is univariate per grid cell: spatial structure comes from the
    interpolated ESM field, and multiplicative factors can amplify the rare model values that
    sit at the observations' dry/wet transition.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from esmscale.errors import EsmscaleError, EsmscaleWarning
from esmscale.prepare.units import linear_factors, quantity

__all__ = ["BIAS_CORRECTIONS", "QDMCorrector", "bias_correct"]

_FORMAT = "esmscale-qdm-1"
#: names accepted by ``bias_correction=`` (besides a trained :class:`QDMCorrector`)
BIAS_CORRECTIONS = ("qdm", "qdm-mean")
_CANONICAL = {"precipitation": "mm d-1", "temperature": "K"}
_GROUPS = ("time", "time.month")
_STATE_VARS = ("af", "hist_q")
_MEAN_VARS = ("ref_mean", "hist_mean")


@contextmanager
def _quiet_xsdba() -> Iterator[None]:
    """Silence xsdba's own deprecation chatter (jsonpickle, numba) around its calls."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module="xsdba")
        warnings.filterwarnings("ignore", message="(?i)all-nan slice", category=RuntimeWarning)
        yield


def _to_units(da: xr.DataArray, src: str, dst: str, name: str) -> xr.DataArray:
    """Lazy unit conversion of ``da`` (dask arrays stay dask arrays)."""
    scale, offset = linear_factors(src, dst, name)
    out = da if (scale, offset) == (1.0, 0.0) else da * scale + offset
    return out.assign_attrs({**da.attrs, "units": dst})


def _units_of(da: xr.DataArray, name: str) -> tuple[str, str]:
    """The ``units`` attribute of ``da`` and its quantity (an esmscale error if unknown)."""
    units = da.attrs.get("units")
    kind = quantity(units, name)
    return str(units), kind


def _check_time(da: xr.DataArray, name: str) -> None:
    if not isinstance(da, xr.DataArray):
        raise EsmscaleError(f"{name} must be an xarray.DataArray, got {type(da).__name__}.")
    if "time" not in da.dims:
        raise EsmscaleError(
            f"{name} has dims {da.dims} without a 'time' dimension; rename the time dimension "
            "to 'time' (e.g. da.rename(t='time')) or add one with da.expand_dims('time')."
        )
    try:
        da["time"].dt.calendar  # noqa: B018 - raises unless time holds datetimes
    except (AttributeError, TypeError, KeyError):
        raise EsmscaleError(
            f"{name}'s 'time' dimension has no datetime coordinate; decode the times when "
            "opening the file (decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))."
        ) from None


def _grid(da: xr.DataArray) -> dict[Hashable, int]:
    return {d: int(n) for d, n in da.sizes.items() if d != "time"}


def _match_grid(
    da: xr.DataArray, grid: dict[Hashable, int], coords: dict[Hashable, np.ndarray], name: str
) -> xr.DataArray:
    """Transpose ``da`` to ``("time", *grid)`` and give it exactly the reference coordinates."""
    have = _grid(da)
    if set(have) != set(grid) or any(have[d] != n for d, n in grid.items()):
        raise EsmscaleError(
            f"{name} is on grid {have} (dims: sizes) but the reference is on grid {grid}; "
            f"interpolate {name} onto the reference grid first "
            "(e.g. da.interp(lat=ref.lat, lon=ref.lon))."
        )
    dims = list(grid)
    da = da.transpose("time", *dims)
    for d in dims:
        if d not in da.coords:
            da = da.assign_coords({d: coords[d]})
            continue
        theirs = np.asarray(da[d].values)
        ours = coords[d]
        same = (
            np.allclose(theirs, ours, rtol=0.0, atol=1e-6 * max(1.0, float(np.abs(ours).max())))
            if np.issubdtype(theirs.dtype, np.number) and np.issubdtype(ours.dtype, np.number)
            else bool(np.array_equal(theirs, ours))
        )
        if not same:
            raise EsmscaleError(
                f"{name}'s {d!r} coordinate ({theirs[0]}..{theirs[-1]}) differs from the "
                f"reference's ({ours[0]}..{ours[-1]}); interpolate {name} onto the reference grid "
                f"first (e.g. da.interp({d}=ref.{d}))."
            )
        da = da.assign_coords({d: ours})
    return da


def _group_labels(da: xr.DataArray, group: str) -> np.ndarray:
    """Group label of every time step (a single label for ``group="time"``)."""
    if group == "time":
        return np.zeros(da.sizes["time"], dtype=int)
    return np.asarray(da["time"].dt.month)


def _jitter(da: xr.DataArray, thresh: float, seed: int) -> xr.DataArray:
    """Replace values below ``thresh`` (not NaN) by uniform noise in (0, thresh), seeded."""
    low = np.nextafter(np.float32(0.0), np.float32(1.0))
    if da.chunks is not None:
        import dask.array as dsa

        noise: Any = dsa.random.RandomState(seed).uniform(
            low, thresh, size=da.shape, chunks=da.data.chunks
        )
    else:
        noise = np.random.default_rng(seed).uniform(low, thresh, size=da.shape)
    noise = noise.astype(da.dtype)
    return da.where(da.isnull() | (da >= thresh), noise)


def _one_time_chunk(da: xr.DataArray) -> xr.DataArray:
    return da.chunk({"time": -1}) if da.chunks is not None else da


def _common_axis(
    ref: xr.DataArray, hist: xr.DataArray, group: str
) -> tuple[xr.DataArray, xr.DataArray]:
    """Put ``ref`` and ``hist`` on one time axis (xsdba QDM needs identical time arrays)."""
    if group == "time":
        n = max(ref.sizes["time"], hist.sizes["time"])
        axis = xr.date_range("2000-01-01", periods=n, freq="D", calendar="noleap", use_cftime=True)
        ref = ref.assign_coords(time=axis[: ref.sizes["time"]]).reindex(time=axis)
        hist = hist.assign_coords(time=axis[: hist.sizes["time"]]).reindex(time=axis)
        return ref, hist
    cal_ref, cal_hist = ref["time"].dt.calendar, hist["time"].dt.calendar
    if cal_ref != cal_hist:
        n = hist.sizes["time"]
        hist = hist.convert_calendar(
            cal_ref,
            align_on="date",
            use_cftime=not np.issubdtype(ref["time"].dtype, np.datetime64),
        )
        if hist.sizes["time"] < n:
            warnings.warn(
                f"hist: {n - hist.sizes['time']} of {n} time steps have dates that do not exist "
                f"in ref's calendar {cal_ref!r} (hist uses {cal_hist!r}) and were left out of "
                f"training with group={group!r}; use group='time' to keep every value.",
                EsmscaleWarning,
                stacklevel=4,
            )
    ref, hist = _floor_days(ref), _floor_days(hist)
    ref, hist = xr.align(ref, hist, join="outer", exclude=[d for d in ref.dims if d != "time"])
    return ref, hist


def _floor_days(da: xr.DataArray) -> xr.DataArray:
    """Drop the time of day from daily stamps (12:00 vs 00:00) so equal days align."""
    floored = da.indexes["time"].floor("D")
    return da.assign_coords(time=floored) if floored.is_unique else da


def _make_qdm(state: xr.Dataset, group: str, kind: str, units: str) -> Any:
    """An ``xsdba.QuantileDeltaMapping`` from a trained state, without jsonpickle decoding."""
    with _quiet_xsdba():
        from xsdba import QuantileDeltaMapping
        from xsdba.base import Grouper

    qdm = QuantileDeltaMapping(
        _trained=True,
        group=Grouper(group),
        kind=kind,
        adapt_freq_thresh=None,
        max_tail_factor=None,
        hist_calendar="",
        train_units=units,
    )
    ds = state.copy()
    ds.attrs = {
        "group": group,
        "group_compute_dims": ["time"],
        "group_window": 1,
    }
    qdm.ds = ds  # not set_dataset(): that jsonpickles the object into the attrs
    return qdm


def _adjust_block(
    x: xr.DataArray, *, state: xr.Dataset, group: str, kind: str, dtype: np.dtype[Any]
) -> xr.DataArray:
    """Run xsdba's QDM adjustment on one in-memory block of ``x`` (full time axis)."""
    grid = [d for d in x.dims if d != "time"]
    sub = state[list(_STATE_VARS)].sel({d: x[d] for d in grid})
    # Cells without data (all-NaN sim, or no factors because ref was all NaN there) get dummy
    # values and are masked again below, so xsdba has nothing to warn about (warning filters
    # are process-wide and not reliable in dask's worker threads).
    empty = x.isnull().all("time")
    no_af = sub["af"].isnull().all([d for d in sub["af"].dims if d not in grid])
    if bool(empty.any()):
        x = x.where(~empty, 0.0)
    if bool(no_af.any()):
        dummy_q = sub["quantiles"].broadcast_like(sub["hist_q"]).astype(sub["hist_q"].dtype)
        sub = sub.assign(
            af=sub["af"].where(~no_af, 1.0 if kind == "*" else 0.0),
            hist_q=sub["hist_q"].where(~no_af, dummy_q),
        )
    if group == "time.month":  # xsdba needs all 12 months (e.g. DJF-only training)
        sub = sub.reindex(month=np.arange(1, 13))
    with _quiet_xsdba():
        qdm = _make_qdm(sub, group, kind, str(x.attrs["units"]))
        scen = qdm.adjust(x, interp="nearest", extrapolation="constant")
    out: xr.DataArray = scen.where(~(empty | no_af)).transpose(*x.dims).astype(dtype)
    out.attrs = dict(x.attrs)
    return out.rename(x.name)


def _check_train_args(
    ref: xr.DataArray, hist: xr.DataArray, nquantiles: Any, group: str, dry_threshold: float
) -> None:
    """Validate the arguments of :meth:`QDMCorrector.train` (errors name the fix)."""
    _check_time(ref, "ref")
    _check_time(hist, "hist")
    if isinstance(nquantiles, bool) or not isinstance(nquantiles, int | np.integer):
        raise EsmscaleError(f"nquantiles={nquantiles!r} must be an integer >= 2.")
    if nquantiles < 2:
        raise EsmscaleError(f"nquantiles={nquantiles} must be >= 2.")
    if group not in _GROUPS:
        raise EsmscaleError(
            f"group={group!r} is not supported; use one of {list(_GROUPS)} (day-of-year "
            "grouping breaks across calendars and xsdba 0.7 season grouping fails when a "
            "season is missing)."
        )
    if not dry_threshold > 0:
        raise EsmscaleError(f"dry_threshold={dry_threshold} must be positive (mm/day).")


def _train_units(ref: xr.DataArray, hist: xr.DataArray) -> tuple[str, str, str]:
    """Units of ``ref`` and ``hist`` and their common quantity (an error if they differ)."""
    ref_units, qty = _units_of(ref, "ref")
    hist_units, hist_qty = _units_of(hist, "hist")
    if hist_qty != qty:
        raise EsmscaleError(
            f"ref is {qty} ({ref_units!r}) but hist is {hist_qty} ({hist_units!r}); pass "
            "the same variable for both."
        )
    return ref_units, hist_units, qty


def _align_training_data(
    ref: xr.DataArray, hist: xr.DataArray, group: str, nquantiles: int
) -> tuple[xr.DataArray, xr.DataArray, list[Hashable]]:
    """``ref`` and ``hist`` on one grid, with enough time steps in every group."""
    ref = ref.reset_coords(drop=True)
    hist = hist.reset_coords(drop=True)
    grid = _grid(ref)
    dims = list(grid)
    ref = ref.assign_coords({d: np.arange(n) for d, n in grid.items() if d not in ref.coords})
    coords = {d: np.asarray(ref[d].values) for d in dims}
    ref = ref.transpose("time", *dims)
    hist = _match_grid(hist, grid, coords, "hist")

    ref_groups, hist_groups = _group_labels(ref, group), _group_labels(hist, group)
    if set(ref_groups.tolist()) != set(hist_groups.tolist()):
        raise EsmscaleError(
            f"with group={group!r}, ref covers groups {sorted(set(ref_groups.tolist()))} but "
            f"hist covers {sorted(set(hist_groups.tolist()))}; select the same months or "
            "months in both."
        )
    for name, labels in (("ref", ref_groups), ("hist", hist_groups)):
        values, counts = np.unique(labels, return_counts=True)
        if counts.min() < nquantiles:
            where = "" if group == "time" else f" in group {values[counts.argmin()]!r}"
            raise EsmscaleError(
                f"{name} has only {counts.min()} time steps{where}, fewer than "
                f"nquantiles={nquantiles}; use a longer training period, fewer quantiles or "
                "a coarser group."
            )
    return ref, hist, dims


def _qdm_state(ref: xr.DataArray, hist: xr.DataArray, **qdm: Any) -> xr.Dataset:
    """Train xsdba's QuantileDeltaMapping and return its (computed) state."""
    with _quiet_xsdba():
        from xsdba import QuantileDeltaMapping

        trained = QuantileDeltaMapping.train(ref, hist, **qdm)
        return trained.ds[list(_STATE_VARS)].compute()


@dataclass(frozen=True)
class QDMCorrector:
    """A trained quantile delta mapping (QDM) bias correction; see the module docstring.

    Build it with :meth:`train` or :meth:`load`, never directly.

    Attributes
    ----------
    state : xarray.Dataset
        The xsdba trained state: adjustment factors ``af`` and model quantiles ``hist_q`` per
        grid cell, group and quantile, in the canonical unit.
    kind : str
        ``"*"`` (multiplicative) or ``"+"`` (additive).
    group : str
        ``"time"`` or ``"time.month"``.
    units : str
        Units of ``ref``; :meth:`adjust` returns data in these units.
    quantity : str
        ``"precipitation"`` or ``"temperature"``.
    dry_threshold : float
        Precipitation below this (mm/day) counts as dry (unused for temperature).
    nquantiles : int
        Number of quantiles used in training.
    preserve_mean_change : bool
        Scale each cell's output so that its mean change relative to the training period is the
        model's (see the module docstring); the state then holds ``ref_mean`` and ``hist_mean``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = xr.date_range("2000-01-01", periods=200, freq="D", use_cftime=True)
    >>> def field(x, units):
    ...     return xr.DataArray(x.reshape(200, 1, 1), dims=("time", "lat", "lon"),
    ...                         coords={"time": t, "lat": [0.0], "lon": [0.0]},
    ...                         attrs={"units": units})
    >>> x = np.linspace(270.0, 290.0, 200)
    >>> qdm = QDMCorrector.train(field(x, "K"), field(x - 3.0, "K"), nquantiles=20)
    >>> qdm.kind
    '+'
    >>> out = qdm.adjust(field(x - 3.0, "K"))
    >>> round(float(out.mean() - x.mean()), 2), out.attrs["units"]
    (0.0, 'K')
    """

    state: xr.Dataset
    kind: str
    group: str
    units: str
    quantity: str
    dry_threshold: float
    nquantiles: int
    preserve_mean_change: bool = False

    @classmethod
    def train(
        cls,
        ref: xr.DataArray,
        hist: xr.DataArray,
        *,
        nquantiles: int = 100,
        group: str = "time",
        kind: str | None = None,
        dry_threshold: float = 0.01,
        seed: int = 0,
        preserve_mean_change: bool = False,
    ) -> QDMCorrector:
        """Train QDM from observations ``ref`` and the model's historical run ``hist``.

        Parameters
        ----------
        ref : xarray.DataArray
            Observations, dims ``time`` plus the grid (e.g. ``(time, lat, lon)``), with a
            ``units`` attribute. NaN cells (e.g. sea) stay NaN in every output.
        hist : xarray.DataArray
            Model output over the training period on the same grid (interpolated beforehand),
            any known units, any calendar; its time axis need not match ``ref``'s.
        nquantiles : int
            Number of equally spaced quantiles; every group needs at least this many time
            steps in both ``ref`` and ``hist``.
        group : str
            ``"time"`` (one distribution over all time steps) or ``"time.month"`` (one per
            calendar month; months absent from training, e.g. outside DJF, cannot be adjusted).
        kind : str, optional
            ``"*"`` or ``"+"``; default ``"*"`` for precipitation and ``"+"`` for temperature.
        dry_threshold : float
            Precipitation threshold in mm/day below which values count as dry (jittered in
            training, zero in the output).
        seed : int
            Seed of the jitter noise (training is reproducible).
        preserve_mean_change : bool
            Keep the model's change in each cell's mean as well as its change per quantile
            (QDM alone keeps only the latter); see the module docstring.

        Returns
        -------
        QDMCorrector
            The trained corrector (its state is computed, in memory).

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> t = xr.date_range("2000-01-01", periods=100, freq="D", use_cftime=True)
        >>> ref = xr.DataArray(np.linspace(0, 9, 100).reshape(100, 1, 1),
        ...                    dims=("time", "lat", "lon"), attrs={"units": "mm day-1"},
        ...                    coords={"time": t, "lat": [0.0], "lon": [0.0]})
        >>> hist = (ref / 86400 * 2).assign_attrs(units="kg m-2 s-1")
        >>> qdm = QDMCorrector.train(ref, hist, nquantiles=10)
        >>> qdm.kind, qdm.units
        ('*', 'mm day-1')
        """
        _check_train_args(ref, hist, nquantiles, group, dry_threshold)
        ref_units, hist_units, qty = _train_units(ref, hist)
        if kind is None:
            kind = "*" if qty == "precipitation" else "+"
        if kind not in ("*", "+"):
            raise EsmscaleError(f"kind={kind!r} must be '*' (multiplicative) or '+' (additive).")
        ref, hist, dims = _align_training_data(ref, hist, group, nquantiles)
        canon = _CANONICAL[qty]
        ref_c = _to_units(ref, ref_units, canon, "ref")
        hist_c = _to_units(hist, hist_units, canon, "hist")
        # per-cell training means (before the dry-day jitter), kept only when asked for
        means = (
            xr.Dataset({"ref_mean": ref_c.mean("time"), "hist_mean": hist_c.mean("time")})
            if preserve_mean_change
            else None
        )
        if qty == "precipitation":
            ref_c = _jitter(ref_c, dry_threshold, seed)
            hist_c = _jitter(hist_c, dry_threshold, seed + 1)
        ref_c, hist_c = _common_axis(ref_c, hist_c, group)
        ref_c = _one_time_chunk(ref_c).assign_attrs(units=canon)
        hist_c = _one_time_chunk(hist_c).assign_attrs(units=canon)
        state = _qdm_state(ref_c, hist_c, nquantiles=nquantiles, group=group, kind=kind)
        if means is not None:
            state = state.assign(means.reset_coords(drop=True).compute())
        state = state.transpose(*dims, ...)
        state.attrs = {}
        return cls(
            state=state,
            kind=kind,
            group=group,
            units=ref_units,
            quantity=qty,
            dry_threshold=float(dry_threshold),
            nquantiles=int(nquantiles),
            preserve_mean_change=bool(preserve_mean_change),
        )

    def adjust(self, sim: xr.DataArray) -> xr.DataArray:
        """Bias-correct ``sim`` (lazy if ``sim`` is dask-backed).

        Parameters
        ----------
        sim : xarray.DataArray
            Model output to correct, on the training grid, any known units and calendar.
            It may be chunked in time; it is rechunked to one time chunk (xsdba ranks each
            group over the whole series) and nothing is computed here.

        Returns
        -------
        xarray.DataArray
            The corrected field with ``sim``'s dims, coordinates and name, in the units of the
            training ``ref`` (``attrs["units"]``); NaN where ``ref`` was NaN throughout;
            precipitation is non-negative with values below ``dry_threshold`` set to 0.

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> t = xr.date_range("2000-01-01", periods=100, freq="D", use_cftime=True)
        >>> ref = xr.DataArray(np.linspace(0, 9, 100).reshape(100, 1, 1),
        ...                    dims=("time", "lat", "lon"), attrs={"units": "mm day-1"},
        ...                    coords={"time": t, "lat": [0.0], "lon": [0.0]})
        >>> qdm = QDMCorrector.train(ref, ref * 2, nquantiles=10)
        >>> out = qdm.adjust(ref * 2)
        >>> bool(abs(float(out.mean()) - float(ref.mean())) < 0.3), bool((out >= 0).all())
        (True, True)
        """
        _check_time(sim, "sim")
        if sim.sizes["time"] < 2:
            raise EsmscaleError(
                f"sim {sim.name!r} has {sim.sizes['time']} time step(s); QDM ranks each value "
                "within the series being corrected, so a single step has no rank (xsdba returns "
                "NaN). Correct a whole period at once (a season or more of days), then select "
                "the days you need."
            )
        sim_units, sim_qty = _units_of(sim, "sim")
        if sim_qty != self.quantity:
            raise EsmscaleError(
                f"sim is {sim_qty} ({sim_units!r}) but the corrector was trained on "
                f"{self.quantity} ({self.units!r}); pass the same variable."
            )
        dims = [d for d in self.state["af"].dims if d not in ("quantiles", self._prop)]
        grid = {d: int(self.state.sizes[d]) for d in dims}
        coords = {d: np.asarray(self.state[d].values) for d in dims}
        orig_dims, name, attrs = sim.dims, sim.name, dict(sim.attrs)
        coordless = [d for d in dims if d not in sim.coords]
        extra = {k: v for k, v in sim.coords.items() if k not in sim.dims}
        x = _match_grid(sim.reset_coords(drop=True), grid, coords, "sim")
        if self.group != "time":
            missing = sorted(set(_group_labels(x, self.group).tolist()) - self._trained_groups)
            if missing:
                raise EsmscaleError(
                    f"sim has groups {missing} for group={self.group!r} that were not in the "
                    f"training data ({sorted(self._trained_groups)}); select those out of sim or "
                    "train on them."
                )
        canon = _CANONICAL[self.quantity]
        x = _one_time_chunk(_to_units(x, sim_units, canon, "sim")).assign_attrs(units=canon)
        dtype = np.result_type(x.dtype, self.state["af"].dtype)
        kwargs: dict[str, Any] = {
            "state": self.state,
            "group": self.group,
            "kind": self.kind,
            "dtype": dtype,
        }
        if x.chunks is None:
            scen = _adjust_block(x, **kwargs)
        else:
            # one task per spatial chunk, so xsdba's warnings can be filtered where it runs
            scen = xr.map_blocks(_adjust_block, x, kwargs=kwargs, template=x.astype(dtype))
        if self.preserve_mean_change:
            scen = self._match_mean_change(scen, x)
        if self.quantity == "precipitation":
            scen = scen.where(scen.isnull() | (scen >= self.dry_threshold), 0.0)
        valid = self.state["af"].notnull().any([d for d in self.state["af"].dims if d not in dims])
        scen = scen.where(valid)
        scale, offset = linear_factors(canon, self.units, "output")
        if (scale, offset) != (1.0, 0.0):
            scen = scen * scale + offset
        scen = scen.drop_vars(coordless).transpose(*orig_dims).assign_coords(extra).rename(name)
        attrs.update(
            units=self.units,
            bias_adjustment=(
                f"xsdba QuantileDeltaMapping(kind={self.kind!r}, group={self.group!r}, "
                f"nquantiles={self.nquantiles}) via esmscale.prepare.bias.QDMCorrector"
                + (", mean change preserved per cell" if self.preserve_mean_change else "")
            ),
        )
        scen.attrs = attrs
        return scen

    def _match_mean_change(self, scen: xr.DataArray, sim: xr.DataArray) -> xr.DataArray:
        """Scale or shift each cell so that its mean change is the model's (canonical units)."""
        ref_mean, hist_mean = self.state["ref_mean"], self.state["hist_mean"]
        have = scen.mean("time")
        if self.kind == "*":
            want = ref_mean * sim.mean("time") / hist_mean
            factor = (want / have).where((have > 0) & (hist_mean > 0), 1.0)
            return scen * factor
        return scen + (ref_mean + sim.mean("time") - hist_mean - have)

    @property
    def _prop(self) -> str:
        return "group" if self.group == "time" else "month"

    @property
    def _trained_groups(self) -> set[Any]:
        return set(np.asarray(self.state[self._prop].values).tolist())

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the trained state and configuration to a NetCDF file (no pickle).

        Examples
        --------
        >>> import tempfile, numpy as np, xarray as xr
        >>> t = xr.date_range("2000-01-01", periods=50, freq="D", use_cftime=True)
        >>> ref = xr.DataArray(np.linspace(270, 280, 50).reshape(50, 1, 1),
        ...                    dims=("time", "lat", "lon"), attrs={"units": "K"},
        ...                    coords={"time": t, "lat": [0.0], "lon": [0.0]})
        >>> qdm = QDMCorrector.train(ref, ref - 1, nquantiles=10)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     qdm.save(f"{d}/qdm.nc")
        ...     QDMCorrector.load(f"{d}/qdm.nc").kind
        '+'
        """
        ds = self.state.copy()
        ds.attrs = {
            "esmscale_format": _FORMAT,
            "kind": self.kind,
            "group": self.group,
            "units": self.units,
            "quantity": self.quantity,
            "dry_threshold": self.dry_threshold,
            "nquantiles": self.nquantiles,
            "preserve_mean_change": int(self.preserve_mean_change),
            "method": "xsdba.QuantileDeltaMapping (Cannon et al. 2015)",
        }
        p = Path(path)
        if p.parent and not p.parent.exists():
            raise EsmscaleError(f"cannot save to {str(p)!r}: folder {str(p.parent)!r} is missing.")
        ds.to_netcdf(p, engine="netcdf4")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> QDMCorrector:
        """Read a corrector written by :meth:`save`.

        Examples
        --------
        See :meth:`save`.
        """
        p = Path(path)
        if not p.is_file():
            raise EsmscaleError(f"QDM state {str(p)!r} does not exist; write it with .save().")
        with xr.open_dataset(p, engine="netcdf4") as opened:
            ds = opened.load()
        attrs = dict(ds.attrs)
        if attrs.get("esmscale_format") != _FORMAT or any(v not in ds for v in _STATE_VARS):
            raise EsmscaleError(
                f"{str(p)!r} is not an esmscale QDM state (format {_FORMAT!r}); write it with "
                "QDMCorrector.save()."
            )
        preserve = bool(int(attrs.get("preserve_mean_change", 0)))
        if preserve and any(v not in ds for v in _MEAN_VARS):
            raise EsmscaleError(
                f"{str(p)!r} says preserve_mean_change but lacks {list(_MEAN_VARS)}; "
                "retrain and save it again with QDMCorrector.train(..., preserve_mean_change=True)."
            )
        ds.attrs = {}
        return cls(
            state=ds,
            kind=str(attrs["kind"]),
            group=str(attrs["group"]),
            units=str(attrs["units"]),
            quantity=str(attrs["quantity"]),
            dry_threshold=float(attrs["dry_threshold"]),
            nquantiles=int(attrs["nquantiles"]),
            preserve_mean_change=preserve,
        )


def bias_correct(
    fine: xr.DataArray,
    bias_correction: Any,
    *,
    units: str,
    reference: xr.DataArray | xr.Dataset | None = None,
    historical: xr.DataArray | xr.Dataset | None = None,
    variable: str | None = None,
    regrid_method: str = "bilinear",
) -> xr.DataArray:
    """Apply QDM to ``fine`` (already on the target grid); the result is in ``units``.

    ``bias_correction`` is ``"qdm"`` (trained here on ``reference``, the observations, and
    ``historical``, the ESM's historical run regridded onto the reference grid), ``"qdm-mean"``
    (the same with ``preserve_mean_change=True``) or a trained :class:`QDMCorrector`. Used by
    :func:`esmscale.downscaling.pipeline.downscale` and the ``"qdm-bilinear"`` baseline so that
    both train and apply QDM the same way.

    Examples
    --------
    A model 3 K too cold over the training period, then 2 K warmer: after QDM the run is
    2 K warmer than the observations.

    >>> t = xr.date_range("2000-01-01", periods=120, freq="D", use_cftime=True)
    >>> def field(x):
    ...     return xr.DataArray(np.repeat(x, 4).reshape(120, 2, 2), dims=("time", "lat", "lon"),
    ...                         coords={"time": t, "lat": [40.0, 41.0], "lon": [0.0, 1.0]},
    ...                         attrs={"units": "K"}, name="tas")
    >>> x = np.linspace(270.0, 290.0, 120)  # observed mean: 280 K
    >>> obs, hist, run = field(x), field(x - 3.0), field(x - 1.0)
    >>> out = bias_correct(run, "qdm", units="degC", reference=obs, historical=hist)
    >>> round(float(out.mean()), 2), out.attrs["units"]  # 282 K
    (8.85, 'degC')
    >>> bias_correct(run, "qdm", units="K")
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: bias_correction='qdm' needs reference= (observations on ...
    """
    from esmscale.prepare.inputs import select_variable
    from esmscale.prepare.regrid import regrid

    def pick(obj: xr.DataArray | xr.Dataset) -> xr.DataArray:
        keep = isinstance(obj, xr.Dataset) and variable in obj
        return select_variable(obj, variable if keep else None)

    corrector = bias_correction
    if isinstance(corrector, str):
        if corrector not in BIAS_CORRECTIONS:
            raise EsmscaleError(
                f"bias_correction={corrector!r} is not known; use None, "
                f"{' or '.join(map(repr, BIAS_CORRECTIONS))} or a trained QDMCorrector."
            )
        if reference is None or historical is None:
            raise EsmscaleError(
                f"bias_correction={corrector!r} needs reference= (observations on the target grid) "
                "and historical= (the ESM's historical run), or a trained QDMCorrector."
            )
        ref = pick(reference)
        corrector = QDMCorrector.train(
            ref,
            regrid(pick(historical), ref, method=regrid_method, mask=True),
            preserve_mean_change=corrector == "qdm-mean",
        )
    if not isinstance(corrector, QDMCorrector):
        raise EsmscaleError(
            "bias_correction must be None, 'qdm', 'qdm-mean' or a QDMCorrector, got "
            f"{type(corrector).__name__}."
        )
    out = corrector.adjust(fine)
    scale, offset = linear_factors(out.attrs.get("units"), units, str(fine.name))
    return (out * scale + offset).assign_attrs(units=units)
