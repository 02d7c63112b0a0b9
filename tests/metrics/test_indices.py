"""ETCCDI indices through xclim, each hand-checked against a direct numpy computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from esmscale.errors import EsmscaleError
from esmscale.metrics.indices import INDICES, climate_indices, index_bias, index_change


def _pr(days: int = 730, seed: int = 0, start: str = "2001-01-01") -> xr.DataArray:
    rng = np.random.default_rng(seed)
    wet = rng.random((days, 3, 4)) < 0.4
    vals = np.where(wet, rng.gamma(0.8, 8.0, (days, 3, 4)), 0.0).astype(np.float32)
    vals[:, 0, 0] = np.nan  # a sea cell
    t = pd.date_range(start, periods=days, freq="D")
    return xr.DataArray(
        vals,
        dims=("time", "lat", "lon"),
        coords={"time": t, "lat": [40.0, 40.5, 41.0], "lon": [0.0, 0.5, 1.0, 1.5]},
        name="pr",
        attrs={"units": "mm day-1"},
    )


def _longest(mask: np.ndarray) -> int:
    best = run = 0
    for m in mask:
        run = run + 1 if m else 0
        best = max(best, run)
    return best


def test_each_index_matches_a_direct_computation() -> None:
    pr = _pr()
    ix = climate_indices(pr, freq="YS")
    assert sorted(ix.data_vars) == sorted(INDICES.available())
    year = pr.sel(time="2002")  # the second year, one cell
    x = year.isel(lat=1, lon=2).values.astype(np.float64)
    got = ix.sel(time="2002-01-01").isel(lat=1, lon=2)
    wet = x >= 1.0
    assert float(got.rx1day) == pytest.approx(x.max(), rel=1e-6)
    roll5 = np.convolve(x, np.ones(5), mode="valid")
    assert float(got.rx5day) == pytest.approx(roll5.max(), rel=1e-5)
    assert float(got.sdii) == pytest.approx(x[wet].mean(), rel=1e-5)
    assert int(got.r10mm) == int((x >= 10).sum())
    assert int(got.r20mm) == int((x >= 20).sum())
    assert int(got.cdd) == _longest(x < 1.0)
    assert int(got.cwd) == _longest(wet)
    assert float(got.prcptot) == pytest.approx(x[wet].sum(), rel=1e-5)
    base = pr.isel(lat=1, lon=2).values.astype(np.float64)  # the whole series is the base
    per = np.quantile(base[base >= 1.0], 0.95)
    heavy = x[(x > per) & wet].sum()
    assert float(got.r95ptot) == pytest.approx(100 * heavy / x[wet].sum(), rel=1e-4)
    # the sea cell stays NaN in every index, counts included
    assert bool(ix.isel(lat=0, lon=0).to_array().isnull().all())


def test_gaps_are_never_bridged_and_empty_periods_dropped() -> None:
    pr = _pr(days=365 * 3)
    djf = pr.isel(time=pr.time.dt.month.isin([12, 1, 2]).values)
    ix = climate_indices(djf, ["rx5day", "cwd"], freq="QS-DEC")
    assert (ix.time.dt.month == 12).all()  # only the winters, no empty quarters
    assert int(ix.sizes["time"]) == 4  # Jan-Feb 2001, then three full winters
    # the winter of 2001/02 alone, computed directly
    w = djf.sel(time=slice("2001-12-01", "2002-02-28")).isel(lat=2, lon=3).values
    got = ix.sel(time="2001-12-01").isel(lat=2, lon=3)
    assert float(got.rx5day) == pytest.approx(np.convolve(w, np.ones(5), "valid").max(), 1e-5)
    assert int(got.cwd) == _longest(w >= 1.0)


def test_members_are_indexed_each_and_dask_stays_lazy() -> None:
    pr = _pr()
    ens = xr.concat([pr, pr * 2.0], dim="member").chunk({"member": 1, "time": 100})
    ix = climate_indices(ens, ["rx1day", "r95ptot"])
    assert ix.rx1day.chunks is not None  # nothing computed yet
    one = climate_indices(pr * 2.0, ["rx1day"]).rx1day
    xr.testing.assert_allclose(ix.rx1day.isel(member=1).compute(), one)


def test_units_are_converted_to_mm_per_day() -> None:
    pr = _pr()
    si = (pr / 86400.0).assign_attrs(units="kg m-2 s-1")
    a = climate_indices(pr, ["rx1day", "r10mm"])
    b = climate_indices(si, ["rx1day", "r10mm"])
    xr.testing.assert_allclose(a, b, rtol=1e-5)


def test_bias_and_change_are_relative() -> None:
    obs = _pr()
    bias = index_bias(obs * 1.5, obs, ["rx1day", "prcptot", "sdii"])
    assert bias["rx1day"] == pytest.approx(0.5, rel=1e-5)
    assert bias["sdii"] > 0.3  # more days cross 1 mm, so not exactly 0.5
    change = index_change(obs * 1.2, obs, ["rx1day", "r95ptot"])
    assert change["rx1day"] == pytest.approx(0.2, rel=1e-5)
    # a fixed (past) base: heavier days put more of the total above the base percentile
    assert change["r95ptot"] > 0.05


def test_per_cell_change_counts_every_cell_alike() -> None:
    """A wet half unchanged and a dry half +50 %: each cell's change averaged is +25 %, while the
    domain mean, dominated by the wet half, changes less."""
    obs = _pr()
    nlon = obs.sizes["lon"]
    half = [3.0] * (nlon // 2) + [1.0] * (nlon - nlon // 2)
    past = obs * xr.DataArray(half, dims="lon")
    fut = past * xr.DataArray([1.0] * (nlon // 2) + [1.5] * (nlon - nlon // 2), dims="lon")
    cells = index_change(fut, past, ["rx1day"], per_cell=True)["rx1day"]
    valid = past.notnull().any("time").values  # the sea cell is in the wet half
    share_dry = valid[:, nlon // 2 :].sum() / valid.sum()
    assert cells == pytest.approx(0.5 * share_dry, rel=1e-5)
    assert index_change(fut, past, ["rx1day"])["rx1day"] < cells - 0.05


def test_monthly_data_is_refused_with_the_reason() -> None:
    pr = _pr().resample(time="MS").mean().assign_attrs(units="mm day-1")
    with pytest.raises(EsmscaleError, match=r"need daily data.*monthly"):
        climate_indices(pr, ["rx1day"])


def test_unknown_index_and_temperature_are_refused() -> None:
    pr = _pr()
    with pytest.raises(EsmscaleError, match=r"no climate index named 'rx2day'.*rx1day"):
        climate_indices(pr, ["rx2day"])
    with pytest.raises(EsmscaleError, match="not a precipitation rate"):
        climate_indices(pr.assign_attrs(units="K"), ["rx1day"])
