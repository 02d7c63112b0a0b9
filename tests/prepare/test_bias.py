import os
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr

from esmscale import EsmscaleWarning
from esmscale.errors import EsmscaleError
from esmscale.prepare.bias import QDMCorrector, bias_correct
from tests.conftest import sample_data

DATA = Path(
    os.environ.get("ESMSCALE_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")
)
IBERIA = DATA / "climate4r_iberia"
NY, NX, NT = 3, 4, 1500
QS = [0.5, 0.75, 0.9, 0.95, 0.99]


def field(values, units, calendar="standard", start="1980-01-01", times=None):
    t = times
    if t is None:
        t = xr.date_range(
            start, periods=values.shape[0], freq="D", calendar=calendar, use_cftime=True
        )
    return xr.DataArray(
        values,
        dims=("time", "lat", "lon"),
        coords={
            "time": t,
            "lat": 40.0 + 0.5 * np.arange(values.shape[1]),
            "lon": -5.0 + 0.5 * np.arange(values.shape[2]),
        },
        attrs={"units": units},
        name="pr" if "m" in units else "tas",
    )


def rain(rng, n, dry=0.6):
    wet = rng.random((n, NY, NX)) > dry
    return np.where(wet, rng.gamma(0.8, 5.0, (n, NY, NX)), 0.0)


@pytest.fixture(scope="module")
def pr():
    """ref: gamma(0.8, 5) with 60 % dry days and a sea cell; hist: 0.7 * rain + 0.3 drizzle."""
    rng = np.random.default_rng(42)
    refv = rain(rng, NT)
    refv[:, 0, 0] = np.nan  # sea in the observations
    histv = 0.7 * rain(rng, NT) + 0.3 * rng.uniform(0.0, 0.5, (NT, NY, NX))
    ref = field(refv, "mm day-1")
    hist = field(histv, "mm day-1", calendar="noleap")  # ESM calendar differs from obs
    return ref, hist, QDMCorrector.train(ref, hist)


def pooled_quantiles(da):
    v = np.asarray(da.values).ravel()
    return np.quantile(v[~np.isnan(v)], QS)


def test_pr_in_sample_quantiles_match_ref(pr):
    ref, hist, qdm = pr
    assert qdm.kind == "*"
    out = qdm.adjust(hist)
    assert out.dims == hist.dims
    assert out.attrs["units"] == "mm day-1"
    np.testing.assert_allclose(pooled_quantiles(out), pooled_quantiles(ref), rtol=0.05, atol=0.05)
    # the raw model was far off (drizzle, too weak a tail)
    assert abs(pooled_quantiles(hist)[-1] / pooled_quantiles(ref)[-1] - 1) > 0.15
    # drizzle removed: dry-day frequency matches the observations
    assert abs(float((out == 0).mean()) - float((ref == 0).mean())) < 0.02


def test_pr_nonnegative_and_nan_cells(pr):
    _, hist, qdm = pr
    sim = hist.copy(data=hist.values - 0.05)  # interpolation can produce small negatives
    out = qdm.adjust(sim)
    assert float(out.min()) >= 0.0
    assert bool(out[:, 0, 0].isnull().all())
    assert int(out.isnull().sum()) == NT  # only the sea cell
    # NaN in sim: a cell without data and single missing days stay NaN, the rest is unchanged
    holes = sim.copy(data=sim.values.copy())
    holes[:, 2, 3] = np.nan
    holes[::10, 1, 1] = np.nan
    out2 = qdm.adjust(holes)
    assert bool(out2[:, 2, 3].isnull().all())
    assert int(out2[:, 1, 1].isnull().sum()) == NT // 10
    np.testing.assert_array_equal(out2[:, :, [0, 2]].values, out[:, :, [0, 2]].values)


def test_pr_relative_change_preserved(pr):
    _, hist, qdm = pr
    base = qdm.adjust(hist)
    future = qdm.adjust(hist * 1.2)
    assert float(future.mean() / base.mean()) == pytest.approx(1.2, abs=0.02)
    # per grid cell as well
    ratio = (future.mean("time") / base.mean("time")).values[~np.isnan(base[0].values)]
    np.testing.assert_allclose(ratio, 1.2, atol=0.04)


def test_plain_qdm_loses_mean_change_in_light_rain_unless_asked(pr):
    """QDM keeps per-quantile changes; they need not add up to the change in the mean."""
    ref, hist, qdm = pr
    # future: the model's drizzle days (below its 60th percentile, which QDM maps onto the
    # observations' dry days) get 0.5 mm/day more; heavier days are unchanged
    light = hist < float(hist.quantile(0.6))
    future = hist.where(~light, hist + 0.5)
    model_change = float(future.mean() / hist.mean()) - 1.0
    plain = float(qdm.adjust(future).mean() / qdm.adjust(hist).mean()) - 1.0
    assert model_change > 0.1
    assert abs(plain / model_change - 1.0) > 0.5  # the mean change is not kept by QDM alone
    kept = QDMCorrector.train(ref, hist, preserve_mean_change=True)
    assert kept.preserve_mean_change
    base, fut = kept.adjust(hist), kept.adjust(future)
    land = ~np.isnan(base[0].values)
    cell = (fut.mean("time") / base.mean("time")).values[land]
    want = (future.mean("time") / hist.mean("time")).values[land]
    np.testing.assert_allclose(cell, want, rtol=0.01)
    # the training period itself keeps the observed mean per cell
    np.testing.assert_allclose(
        base.mean("time").values[land], ref.mean("time").values[land], rtol=0.01
    )
    # the quantile shape of QDM is kept: in-sample quantiles still match the observations
    np.testing.assert_allclose(pooled_quantiles(base), pooled_quantiles(ref), rtol=0.05, atol=0.05)
    assert float(fut.min()) >= 0.0
    assert "mean change preserved" in fut.attrs["bias_adjustment"]


def test_temperature_mean_change_preserved_additive():
    rng = np.random.default_rng(8)
    ref = field(rng.normal(280.0, 5.0, (NT, NY, NX)), "K")
    hist = field(rng.gamma(2.0, 2.0, (NT, NY, NX)), "degC")
    qdm = QDMCorrector.train(ref, hist, nquantiles=50, preserve_mean_change=True)
    skewed = hist + hist**2 / 20.0  # a change that differs by quantile
    change = (skewed - hist).mean("time").values
    out = (qdm.adjust(skewed) - qdm.adjust(hist)).mean("time").values
    np.testing.assert_allclose(out, change, rtol=1e-4, atol=1e-4)


def test_temperature_additive_change_preserved():
    rng = np.random.default_rng(7)
    ref = field(rng.normal(280.0, 5.0, (NT, NY, NX)), "K")
    hist = field(rng.normal(4.0, 3.0, (NT, NY, NX)), "degC", calendar="360_day")
    qdm = QDMCorrector.train(ref, hist, nquantiles=50)
    assert qdm.kind == "+"
    base = qdm.adjust(hist)
    warmer = qdm.adjust(hist + 2.0)
    assert base.attrs["units"] == "K"
    assert float(base.mean()) == pytest.approx(280.0, abs=0.3)
    assert float(base.std()) == pytest.approx(5.0, abs=0.2)
    np.testing.assert_allclose((warmer - base).mean("time").values, 2.0, atol=0.05)


def test_save_load_roundtrip_mean_change(pr, tmp_path):
    ref, hist, _ = pr
    qdm = QDMCorrector.train(ref, hist, preserve_mean_change=True)
    qdm.save(tmp_path / "q.nc")
    back = QDMCorrector.load(tmp_path / "q.nc")
    assert back.preserve_mean_change
    np.testing.assert_array_equal(qdm.adjust(hist * 0.9).values, back.adjust(hist * 0.9).values)
    # a file that claims the option but lacks the means is refused with the fix
    ds = xr.open_dataset(tmp_path / "q.nc").load()
    ds.drop_vars(["ref_mean", "hist_mean"]).to_netcdf(tmp_path / "bad.nc")
    with pytest.raises(EsmscaleError, match="retrain"):
        QDMCorrector.load(tmp_path / "bad.nc")


def test_bias_correct_names(pr):
    ref, hist, _ = pr
    with pytest.raises(EsmscaleError, match="'qdm' or 'qdm-mean'"):
        bias_correct(hist, "qm", units="mm day-1", reference=ref, historical=hist)
    with pytest.raises(EsmscaleError, match="needs reference="):
        bias_correct(hist, "qdm-mean", units="mm day-1")
    out = bias_correct(hist * 0.8, "qdm-mean", units="mm s-1", reference=ref, historical=hist)
    assert out.attrs["units"] == "mm s-1"
    assert "mean change preserved" in out.attrs["bias_adjustment"]


def test_save_load_roundtrip(pr, tmp_path):
    _, hist, qdm = pr
    path = tmp_path / "qdm.nc"
    qdm.save(path)
    back = QDMCorrector.load(path)
    assert (back.kind, back.group, back.units, back.nquantiles) == ("*", "time", "mm day-1", 100)
    a, b = qdm.adjust(hist * 1.1), back.adjust(hist * 1.1)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.attrs == b.attrs
    with path.open("rb") as f:
        assert f.read(4) == b"\x89HDF"  # NetCDF4 file, not a pickle


def test_units_converted_to_ref_units(pr):
    ref, hist, qdm = pr
    hist_si = (hist / 86400.0).assign_attrs(units="kg m-2 s-1")
    qdm_si = QDMCorrector.train(ref, hist_si)
    out_si = qdm_si.adjust(hist_si * 1.2)
    np.testing.assert_allclose(out_si.values, qdm.adjust(hist * 1.2).values, rtol=1e-6, atol=1e-9)
    assert out_si.attrs["units"] == "mm day-1"
    # output follows ref's units
    ref_si = (ref / 86400.0).assign_attrs(units="kg m-2 s-1")
    out2 = QDMCorrector.train(ref_si, hist).adjust(hist)
    assert out2.attrs["units"] == "kg m-2 s-1"
    np.testing.assert_allclose(out2.values * 86400.0, qdm.adjust(hist).values, rtol=1e-6, atol=1e-9)


def test_dask_sim_stays_lazy(pr):
    _, hist, qdm = pr
    sim = (hist * 1.2).chunk({"time": 100, "lat": 2})

    def refuse(*args, **kwargs):
        raise AssertionError("adjust() computed something")

    with dask.config.set(scheduler=refuse):
        out = qdm.adjust(sim)
    assert out.chunks is not None
    np.testing.assert_allclose(out.values, qdm.adjust(hist * 1.2).values, rtol=1e-12)


def djf(calendar, start_year, n_winters):
    t = xr.date_range(
        f"{start_year}-01-01",
        f"{start_year + n_winters}-02-28",
        freq="D",
        calendar=calendar,
        use_cftime=True,
    )
    return t[np.isin(t.month, [12, 1, 2])]


def test_djf_only_different_calendars_and_month_group():
    rng = np.random.default_rng(3)
    t_ref, t_hist, t_sim = (
        djf("standard", 1983, 12),
        djf("noleap", 1983, 12),
        djf("360_day", 2070, 5),
    )
    assert t_ref.size != t_hist.size
    ref = field(rain(rng, t_ref.size), "mm day-1", times=t_ref)
    hist = field(0.5 * rain(rng, t_hist.size), "mm day-1", times=t_hist)
    # a 20 % wetter future in a 360_day calendar: hist's first winters, scaled
    base = field(hist.values[: t_sim.size], "mm day-1", times=t_sim)
    sim = base * 1.2
    for group in ("time", "time.month"):
        qdm = QDMCorrector.train(ref, hist, nquantiles=50, group=group)
        out = qdm.adjust(sim)
        assert out.sizes == sim.sizes
        assert not bool(out.isnull().any())
        assert float(out.mean() / qdm.adjust(base).mean()) == pytest.approx(1.2, abs=0.02)
        # and the adjusted historical run looks like the observations
        assert float(qdm.adjust(hist).mean()) == pytest.approx(float(ref.mean()), rel=0.05)
    # a month that was not trained cannot be adjusted
    t_jun = xr.date_range("2070-06-01", periods=30, freq="D", calendar="360_day", use_cftime=True)
    with pytest.raises(EsmscaleError, match=r"groups \[6\]"):
        qdm.adjust(field(rain(rng, 30), "mm day-1", times=t_jun))
    # 360_day hist with monthly groups: 30 Feb etc. do not exist in ref's calendar
    hist360 = field(0.5 * rain(rng, t_sim.size), "mm day-1", times=djf("360_day", 1983, 5))
    ref5 = ref.sel(time=slice(None, "1988-02-28"))
    with pytest.warns(EsmscaleWarning, match="do not exist in ref's calendar"):
        QDMCorrector.train(ref5, hist360, nquantiles=20, group="time.month")


def test_errors(pr, tmp_path):
    ref, hist, qdm = pr
    with pytest.raises(EsmscaleError, match=r"grid \{'lat': 2, 'lon': 4\}.*'lat': 3"):
        QDMCorrector.train(ref, hist.isel(lat=slice(0, 2)))
    with pytest.raises(EsmscaleError, match="'lon' coordinate"):
        qdm.adjust(hist.assign_coords(lon=hist.lon + 0.25))
    with pytest.raises(EsmscaleError, match="'time' dimension"):
        qdm.adjust(hist.isel(time=0))
    with pytest.raises(EsmscaleError, match="no datetime coordinate"):
        qdm.adjust(hist.assign_coords(time=np.arange(NT)))
    with pytest.raises(EsmscaleError, match="unknown"):
        QDMCorrector.train(ref, hist.assign_attrs(units="furlongs"))
    with pytest.raises(EsmscaleError, match="no 'units'"):
        qdm.adjust(hist.drop_attrs())
    with pytest.raises(EsmscaleError, match="fewer than nquantiles=100"):
        QDMCorrector.train(ref.isel(time=slice(0, 60)), hist)
    with pytest.raises(EsmscaleError, match="precipitation"):
        qdm.adjust(hist.assign_attrs(units="K"))
    with pytest.raises(EsmscaleError, match="not supported"):
        QDMCorrector.train(ref, hist, group="time.dayofyear")
    bogus = tmp_path / "x.nc"
    xr.Dataset({"a": ("x", [1.0])}).to_netcdf(bogus)
    with pytest.raises(EsmscaleError, match="not an esmscale QDM state"):
        QDMCorrector.load(bogus)


def open_pr(name):
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    with xr.open_dataset(IBERIA / name, engine="netcdf4", decode_times=coder) as ds:
        return ds["pr"].load()


def winters(da, first, last):
    year = da.time.dt.year + (da.time.dt.month == 12)  # Dec belongs to next year's winter
    return da.isel(time=((year >= first) & (year <= last)).values)


@pytest.mark.data
@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")  # quantiles over sea cells
def test_iberia_eobs_cmip5():
    sample_data("climate4r_iberia/EOBS_Iberia_pr.nc")
    obs = open_pr("EOBS_Iberia_pr.nc")  # mm day-1, 0.5 deg, NaN over sea
    esm = open_pr("CMIP5_Iberia_pr.nc")  # kg m-2 s-1, 1.4 deg
    # the ESM grid stops short of E-OBS's northern row: extrapolate linearly there
    esm = esm.interp(lat=obs.lat, lon=obs.lon, kwargs={"fill_value": "extrapolate"})
    qdm = QDMCorrector.train(winters(obs, 1983, 1997), winters(esm, 1983, 1997))
    sim = winters(esm, 1998, 2002).chunk({"time": 90})
    out = qdm.adjust(sim).compute()
    ref = winters(obs, 1998, 2002)
    sea = obs.isnull().all("time")
    np.testing.assert_array_equal(out.isnull().values, np.broadcast_to(sea.values, out.shape))
    assert float(out.min()) >= 0.0
    assert out.attrs["units"] == "mm day-1"

    def p95_bias(x):
        return float(abs(x.quantile(0.95, "time") - ref.quantile(0.95, "time")).mean())

    raw, adj = p95_bias(sim * 86400.0), p95_bias(out)
    assert adj < 0.8 * raw, (raw, adj)


def test_iberia_rcp85_mean_change_kept_only_with_preserve_mean_change():
    """CNRM-CM5's winter drying sits in light rain: plain QDM loses a third of it."""
    sample_data("climate4r_iberia/CMIP5_Iberia_pr_rcp85.nc")
    obs = open_pr("EOBS_Iberia_pr.nc")
    grid = {"lat": obs.lat, "lon": obs.lon, "kwargs": {"fill_value": "extrapolate"}}
    hist = open_pr("CMIP5_Iberia_pr.nc").interp(**grid)
    fut = open_pr("CMIP5_Iberia_pr_rcp85.nc").interp(**grid)
    land = obs.notnull().any("time")
    esm_change = float(fut.where(land).mean() / hist.where(land).mean()) - 1.0
    assert esm_change < -0.05

    def kept(corrector):
        f, h = corrector.adjust(fut), corrector.adjust(hist)
        return (float(f.mean() / h.mean()) - 1.0) / esm_change

    ref, train = winters(obs, 1983, 1997), winters(hist, 1983, 1997)
    plain = kept(QDMCorrector.train(ref, train))
    mean_kept = kept(QDMCorrector.train(ref, train, preserve_mean_change=True))
    assert plain < 0.8, plain
    # per cell the change is exact; the domain mean weights cells by the observed climatology
    assert 0.95 <= mean_kept <= 1.15, mean_kept


def test_single_time_step_is_refused_not_nan(pr):
    _, hist, qdm = pr
    with pytest.raises(EsmscaleError, match=r"1 time step.*whole period"):
        qdm.adjust(hist.isel(time=[0]))
    two = qdm.adjust(hist.isel(time=[0, 1]))
    assert int(two.notnull().sum()) > 0
