"""esmscale.metrics: hand-computed values, laziness on Dask input, and errors that teach."""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scores.probability import rank_histogram as scores_rank_histogram

from esmscale import metrics as M
from esmscale.datasets import synthetic_precip
from esmscale.errors import EsmscaleError
from esmscale.spectra import rapsd


def field(values, *, member: bool = False, start="2000-01-01", calendar="standard", res=1.0):
    """Wrap ``(time, lat, lon)`` or ``(member, time, lat, lon)`` values with coordinates."""
    v = np.asarray(values, dtype=np.float64)
    dims = ("member", "time", "lat", "lon") if member else ("time", "lat", "lon")
    nt, ny, nx = v.shape[-3:]
    if calendar == "standard":
        times = pd.date_range(start, periods=nt, freq="D")
    else:
        times = xr.date_range(start, periods=nt, freq="D", calendar=calendar, use_cftime=True)
    coords = {
        "time": times,
        "lat": 40.0 + res * np.arange(ny),
        "lon": -5.0 + res * np.arange(nx),
    }
    if member:
        coords["member"] = np.arange(v.shape[0])
    return xr.DataArray(v, dims=dims, coords=coords, attrs={"units": "mm day-1"})


def raise_on_compute(*args, **kwargs):
    raise AssertionError("a metric computed while its graph was being built")


# --- spectra --------------------------------------------------------------------------------


def test_radial_psd_of_one_wave_by_hand():
    # cos(2 pi 2 j / 8) along lon: two FFT peaks |F|^2 / N = 32^2 / 64 = 16 at |k| = 2/8;
    # the k = 0.25 shell holds 12 modes -> 32 / 12; every other shell is 0
    j = np.arange(8)
    wave = np.cos(2 * np.pi * 2 * j / 8)[None, None, :].repeat(8, axis=1)
    psd = M.radial_psd(field(wave))
    np.testing.assert_allclose(psd["wavenumber"], [0.125, 0.25, 0.375, 0.5])
    np.testing.assert_allclose(psd.values, [0.0, 32 / 12, 0.0, 0.0], atol=1e-12)


def test_radial_psd_is_in_cycles_per_degree_and_comparable_across_grids():
    # issue 13: a field and its exact 4x block average have equal power at shared large scales
    obs = synthetic_precip(64, 64, 30, seed=2).pr  # 0.25-degree grid
    coarse = obs.coarsen(lat=4, lon=4).mean()  # 1-degree grid, exact block means
    pf, pc = M.radial_psd(obs), M.radial_psd(coarse)
    assert pf["wavenumber"].attrs["units"] == "cycles per degree"
    assert pf.attrs["units"] == "(mm day-1)2 degree2"
    assert float(pf["wavenumber"].max()) == 2.0 and float(pc["wavenumber"].max()) == 0.5
    shared = pf.sel(wavenumber=pc["wavenumber"])
    np.testing.assert_array_equal(shared["wavenumber"], pc["wavenumber"])
    ratio = (pc / shared).values
    # k <= 1/4 of the coarse Nyquist: the block mean keeps > 0.9 of the power (16x off before)
    np.testing.assert_allclose(ratio[:2], 1.0, atol=0.1)
    assert np.all((ratio > 0.3) & (ratio < 1.1)), ratio
    # a Calibration's k* (cycles per fine cell) in the spectra's units
    assert M.per_degree(0.125, obs) == 0.5
    assert M.grid_spacing(coarse) == (1.0, 1.0)


def test_radial_psd_needs_an_evenly_spaced_grid():
    x = field(np.zeros((1, 8, 8)))
    uneven = x.assign_coords(lat=[0.0, 1, 2, 3, 5, 6, 7, 8])
    with pytest.raises(EsmscaleError, match=r"'lat' is not evenly spaced.*regrid"):
        M.radial_psd(uneven)


def test_radial_psd_averages_fields_and_respects_the_mask():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 12, 12))
    mask = rng.random((12, 12)) > 0.2
    psd = M.radial_psd(field(x, member=True), mask=mask)
    _, ref = rapsd(x.reshape(-1, 12, 12), mask=mask)
    np.testing.assert_allclose(psd.values, ref, rtol=1e-12)
    # NaN cells are masked cells
    y = x.copy()
    y[..., ~mask] = np.nan
    np.testing.assert_allclose(M.radial_psd(field(y, member=True)).values, ref, rtol=1e-12)


def test_psd_error_over_a_band_by_hand():
    k = {"wavenumber": [0.1, 0.2, 0.3, 0.4]}
    p = xr.DataArray([5.0, 10.0, 100.0, 0.1], dims="wavenumber", coords=k)
    ref = xr.DataArray([5.0, 1.0, 1.0, 1.0], dims="wavenumber", coords=k)
    assert float(M.psd_error(p, ref)) == pytest.approx((0 + 1 + 2 + 1) / 4)
    assert float(M.psd_error(p, ref, k_min=0.15, k_max=0.35)) == pytest.approx(1.5)
    with pytest.raises(EsmscaleError, match="no wavenumber"):
        M.psd_error(p, ref, k_min=0.45)


# --- distributions --------------------------------------------------------------------------


def test_quantile_errors_by_hand():
    obs = field(np.arange(1.0, 101.0).reshape(4, 5, 5))
    err = M.quantile_errors(2 * obs, obs, [0.5, 0.999])
    # linear interpolation of 1..100: Q(0.5) = 50.5, Q(0.999) = 99 + 0.901 = 99.901
    np.testing.assert_allclose(err.values, [50.5, 99.901])
    rel = M.quantile_errors(2 * obs, obs, [0.5, 0.999], relative=True)
    np.testing.assert_allclose(rel.values, [1.0, 1.0])
    # the array API gives the same relative error
    assert M.quantile_error(2 * obs.values, obs.values, 0.5) == pytest.approx(1.0)


def test_histogram_error_by_hand():
    obs = field([[[0.0, 0.0], [1.0, 1.0]]])
    res = field([[[0.0, 0.0], [0.0, 1.0]]])
    # 2 bins over [0, 1]: obs (0.5, 0.5), result (0.75, 0.25) -> 0.25 + 0.25
    assert float(M.histogram_error(res, obs, bins=2)) == pytest.approx(0.5)
    assert float(M.histogram_error(obs, obs, bins=500)) == 0.0


def test_wet_day_fraction_by_hand():
    x = field([[[0.0, 0.5], [1.0, 3.0]], [[np.nan, 2.0], [0.0, 0.0]]])
    assert float(M.wet_day_fraction(x)) == pytest.approx(3 / 7)
    wet_map = M.wet_day_fraction(x, dim="time")
    np.testing.assert_allclose(wet_map.values, [[0.0, 0.5], [0.5, 0.5]])
    assert M.wet_day_frequency(x.values) == pytest.approx(3 / 7)


# --- means, profiles ------------------------------------------------------------------------


def test_bias_map_and_zonal_profile_error_by_hand():
    obs = field([[[1.0, 2.0], [3.0, 4.0]], [[3.0, 2.0], [1.0, 0.0]]])  # time mean 2 everywhere
    ens = field(
        [
            [[[2.0, 2.0], [2.0, 2.0]], [[2.0, 2.0], [2.0, 2.0]]],
            [[[4.0, 4.0], [2.0, 2.0]], [[4.0, 4.0], [2.0, 2.0]]],
        ],
        member=True,
    )
    np.testing.assert_allclose(M.bias_map(ens, obs).values, [[1.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(M.zonal_mean(ens).values, [3.0, 2.0])
    # zonal means: result (3, 2), obs (2, 2) -> mean |diff| = 0.5
    assert float(M.zonal_profile_error(ens, obs)) == pytest.approx(0.5)


# --- consistency with the coarse input ------------------------------------------------------


def _coarse_and_fine():
    c = np.array([[1.0, 2.0], [3.0, 4.0]])
    coarse = field(c[None], res=2.0).assign_coords(lat=[40.5, 42.5], lon=[-4.5, -2.5])
    return c, coarse


def test_pooled_corr_by_hand():
    c, coarse = _coarse_and_fine()
    pooled = np.array([[1.0, 2.0], [3.0, 5.0]])
    fine = field(np.kron(pooled, np.ones((2, 2)))[None])
    # r of (1, 2, 3, 4) and (1, 2, 3, 5): 6.5 / sqrt(5 * 8.75)
    expected = 6.5 / np.sqrt(5 * 8.75)
    assert float(M.pooled_corr(fine, coarse)) == pytest.approx(expected)
    assert float(M.pooled_corr(fine, coarse, factor=2)) == pytest.approx(expected)
    assert M.pooled_correlation(fine.values, c[None], 2) == pytest.approx(expected)


def test_lowpass_corr_by_hand():
    c, coarse = _coarse_and_fine()
    up = np.kron(c, np.ones((2, 2)))
    checker = np.array([[1.0, -1.0], [-1.0, 1.0]])
    noisy = field((up + np.kron(np.ones((2, 2)), checker))[None])
    # no filter: the checkerboard (variance 1) is uncorrelated with the input (variance 1.25)
    assert float(M.lowpass_corr(noisy, coarse, sigma=0)) == pytest.approx(np.sqrt(1.25 / 2.25))
    # any affine copy of the input correlates perfectly, with or without the filter
    assert float(M.lowpass_corr(field(2 * up[None] + 1), coarse)) == pytest.approx(1.0)
    assert float(M.lowpass_corr(noisy, coarse, sigma=2.0)) > np.sqrt(1.25 / 2.25)


# --- ensemble metrics -----------------------------------------------------------------------


def test_fair_crps_by_hand_and_against_the_array_api():
    ens = field(np.array([0.0, 1.0, 2.0])[:, None, None, None] * np.ones((3, 1, 2, 2)), member=True)
    obs = field(np.full((1, 2, 2), 2.0))
    # mean |x - y| = 1; sum_ij |x_i - x_j| / (2 M (M - 1)) = 8 / 12
    assert float(M.fair_crps(ens, obs)) == pytest.approx(1 / 3)
    rng = np.random.default_rng(1)
    e, o = rng.gamma(1.0, size=(4, 3, 5, 5)), rng.gamma(1.0, size=(3, 5, 5))
    assert float(M.fair_crps(field(e, member=True), field(o))) == pytest.approx(
        M.crps_ensemble(e, o)
    )


def test_mean_absolute_error_by_hand():
    obs = field([[[1.0, 2.0], [3.0, 4.0]]])
    assert float(M.mean_absolute_error(obs + 0.5, obs)) == pytest.approx(0.5)
    assert M.mae(obs.values + 0.5, obs.values) == pytest.approx(0.5)


def test_spread_skill_ratio_by_hand():
    # cell A: members (0, 2), obs 0 -> var 2, error 1; cell B: members (1, 1), obs 2 -> var 0,
    # error 1. sqrt((M+1)/M) * sqrt(mean var) / RMSE = sqrt(3/2) * 1 / 1
    ens = field([[[[0.0, 1.0]]], [[[2.0, 1.0]]]], member=True)
    obs = field([[[0.0, 2.0]]])
    assert float(M.spread_skill_ratio(ens, obs)) == pytest.approx(np.sqrt(1.5))
    per_time = M.spread_skill_ratio(ens, obs, dim=["lat", "lon"])
    assert per_time.dims == ("time",)


def test_rank_histogram_by_hand_and_against_scores():
    # members (1, 2): obs 0 -> rank 1; 1.5 -> rank 2; 3 -> rank 3; 1 ties one member -> ranks
    # 1 and 2 share the case
    ens = field([[[[1.0, 1.0, 1.0, 1.0]]], [[[2.0, 2.0, 2.0, 2.0]]]], member=True)
    obs = field([[[0.0, 1.5, 3.0, 1.0]]])
    hist = M.rank_histogram(ens, obs)
    np.testing.assert_allclose(hist.values, [1.5, 1.5, 1.0])
    assert hist["rank"].values.tolist() == [1, 2, 3]
    rng = np.random.default_rng(2)
    e = np.round(rng.gamma(0.5, size=(4, 6, 5, 5)), 1)  # many ties at 0
    o = np.round(rng.gamma(0.5, size=(6, 5, 5)), 1)
    ours = M.rank_histogram(field(e, member=True), field(o))
    ref = scores_rank_histogram(field(e, member=True), field(o), "member")
    np.testing.assert_allclose((ours / ours.sum()).values, ref.values, rtol=1e-12)


def test_rank_flatness_by_hand():
    assert float(M.rank_flatness(xr.DataArray([2.0, 2.0, 2.0], dims="rank"))) == 0.0
    # N = 6, M + 1 = 3: sum (s - 2)^2 = 24, N M / (M + 1) = 4
    assert float(M.rank_flatness(xr.DataArray([6.0, 0.0, 0.0], dims="rank"))) == 6.0


# --- laziness -------------------------------------------------------------------------------


def test_metrics_stay_lazy_on_dask_input_and_match_numpy():
    obs = synthetic_precip(16, 16, 6, seed=1).pr
    coarse = obs.coarsen(lat=4, lon=4).mean()
    rng = np.random.default_rng(0)
    ens = xr.concat([obs + rng.gamma(1.0, size=obs.shape) for _ in range(3)], "member")
    mask = obs.notnull().all("time")

    def all_metrics(e, o, c):
        out = {
            "psd": M.radial_psd(e, mask=mask),
            "quantiles": M.quantile_errors(e, o),
            "hist": M.histogram_error(e, o),
            "wet": M.wet_day_fraction(e),
            "bias": M.bias_map(e, o),
            "zonal": M.zonal_profile_error(e, o),
            "pooled": M.pooled_corr(e, c),
            "lowpass": M.lowpass_corr(e, c),
            "crps": M.fair_crps(e, o),
            "mae": M.mean_absolute_error(e, o),
            "ssr": M.spread_skill_ratio(e, o),
            "rank": M.rank_histogram(e, o),
        }
        out["psd_err"] = M.psd_error(out["psd"], M.radial_psd(o), 0.1)
        out["flat"] = M.rank_flatness(out["rank"])
        return out

    lazy_in = (
        ens.chunk({"member": 1, "time": 4}),
        obs.chunk({"time": 3}),
        coarse.chunk({"time": 2}),
    )
    with dask.config.set(scheduler=raise_on_compute):
        lazy = all_metrics(*lazy_in)
    for name, value in lazy.items():
        assert isinstance(value.data, dask.array.Array), name
    got = dask.compute(lazy, scheduler="sync")[0]
    want = all_metrics(ens, obs, coarse)
    for name in want:
        np.testing.assert_allclose(
            got[name].values, want[name].values, rtol=1e-5, atol=1e-5, err_msg=name
        )


# --- comparable inputs and errors that teach ------------------------------------------------


def test_align_accepts_shifted_longitudes_converts_units_and_cuts_to_common_times():
    obs = field(np.ones((4, 2, 3)))
    res = field(np.ones((1, 3, 2, 3)) / 86400.0, member=True, start="2000-01-02")
    res = res.assign_coords(lon=res["lon"] % 360).assign_attrs(units="kg m-2 s-1")
    r, o = M.align_to_obs(res, obs)
    assert r.sizes["time"] == o.sizes["time"] == 3
    assert r.attrs["units"] == "mm day-1"
    np.testing.assert_allclose(r.values, 1.0)
    np.testing.assert_array_equal(r["lon"].values, obs["lon"].values)


def test_cftime_and_numpy_dates_of_the_standard_calendar_compare():
    obs = field(np.ones((3, 2, 2)))
    res = field(np.ones((3, 2, 2)), calendar="gregorian")
    assert float(M.mean_absolute_error(res, obs)) == 0.0


def test_different_grids_are_an_error():
    obs = field(np.ones((2, 8, 8)))
    coarse = obs.coarsen(lat=2, lon=2).mean()
    with pytest.raises(EsmscaleError, match=r"different grids.*regrid"):
        M.fair_crps(coarse.expand_dims(member=2), obs)
    with pytest.raises(EsmscaleError, match="different grids"):
        M.mean_absolute_error(obs.isel(lat=slice(None, None, -1)), obs)


def test_different_calendars_are_an_error():
    obs = field(np.ones((3, 2, 2)))
    res = field(np.ones((3, 2, 2)), calendar="noleap")
    with pytest.raises(EsmscaleError, match=r"'standard' calendar.*'noleap'.*convert_calendar"):
        M.bias_map(res, obs)


def test_no_common_time_is_an_error():
    obs = field(np.ones((3, 2, 2)))
    res = field(np.ones((3, 2, 2)), start="2001-01-01")
    with pytest.raises(EsmscaleError, match=r"no time in common.*2001-01-01"):
        M.quantile_errors(res, obs)
    shifted = obs.assign_coords(time=obs.time + pd.Timedelta(hours=12))
    with pytest.raises(EsmscaleError, match="floor"):
        M.mean_absolute_error(shifted, obs)


@pytest.mark.parametrize(
    "metric", [M.fair_crps, M.spread_skill_ratio, M.rank_histogram], ids=lambda f: f.__name__
)
def test_ensemble_metric_without_member_dim_is_an_error(metric):
    obs = field(np.ones((3, 2, 2)))
    with pytest.raises(EsmscaleError, match=r"no 'member' dimension.*members"):
        metric(obs + 1, obs)
    with pytest.raises(EsmscaleError, match="at least 2 members"):
        metric((obs + 1).expand_dims(member=1), obs)


def test_other_bad_inputs_are_errors():
    obs = field(np.ones((3, 4, 4)))
    with pytest.raises(EsmscaleError, match="extra dims"):
        M.mean_absolute_error(obs.expand_dims(level=2), obs)
    with pytest.raises(EsmscaleError, match="must be an xarray DataArray"):
        M.mean_absolute_error(obs.values, obs)
    with pytest.raises(EsmscaleError, match="numeric"):
        M.bias_map(obs.assign_coords(time=[0, 1, 2]), obs)
    with pytest.raises(EsmscaleError, match="integer factor"):
        M.pooled_corr(obs, obs.isel(lat=slice(0, 3)).coarsen(lat=3, lon=2).mean())
    with pytest.raises(EsmscaleError, match="'member' dimension"):
        M.align_to_obs(obs, obs.expand_dims(member=2))


def test_docstring_examples():
    import doctest
    import importlib
    import pkgutil

    attempted = 0
    for info in pkgutil.iter_modules(M.__path__):
        module = importlib.import_module(f"{M.__name__}.{info.name}")
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted > 20
