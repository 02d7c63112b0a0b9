"""Tests for the synthetic perfect-model world (esmscale.datasets.synthetic)."""

from __future__ import annotations

import cftime
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import gaussian_filter

from esmscale.datasets.synthetic import (
    _gaussian_fields,
    synthetic_esm,
    synthetic_precip,
    synthetic_temperature,
)


@pytest.fixture(scope="module")
def pr_default() -> xr.Dataset:
    return synthetic_precip(seed=3)


def _spectral_slope(fields: np.ndarray) -> float:
    """Log-log slope of the radially averaged, time-mean |FFT|^2 of (t, y, x) fields."""
    ny, nx = fields.shape[-2:]
    anom = fields - fields.mean(axis=(-2, -1), keepdims=True)
    psd = (np.abs(np.fft.fft2(anom)) ** 2).mean(axis=0)
    k = np.hypot(np.fft.fftfreq(ny)[:, None] * ny, np.fft.fftfreq(nx)[None, :] * nx)
    kbin = np.rint(k).astype(int).ravel()
    radial = np.bincount(kbin, psd.ravel()) / np.maximum(np.bincount(kbin), 1)
    ks = np.arange(1, min(ny, nx) // 2)
    return float(np.polyfit(np.log(ks), np.log(radial[ks]), 1)[0])


def _lag1(pr: np.ndarray) -> float:
    series = pr.mean(axis=(1, 2), dtype=np.float64)
    series = series - series.mean()
    return float(np.corrcoef(series[:-1], series[1:])[0, 1])


# --------------------------------------------------------------------------- precipitation
def test_reproducible_and_seeds_differ() -> None:
    a = synthetic_precip(16, 20, 40, seed=7)
    b = synthetic_precip(16, 20, 40, seed=7)
    c = synthetic_precip(16, 20, 40, seed=8)
    xr.testing.assert_identical(a, b)
    assert not np.array_equal(a.pr.values, c.pr.values)


def test_structure_and_cf_metadata(pr_default: xr.Dataset) -> None:
    ds = pr_default
    assert ds.pr.dims == ("time", "lat", "lon")
    assert ds.pr.shape == (365, 64, 64)
    assert ds.pr.dtype == np.float32
    assert ds.pr.attrs["units"] == "mm day-1"
    assert ds.pr.attrs["standard_name"] == "lwe_precipitation_rate"
    assert ds.pr.attrs["cell_methods"] == "time: mean"
    assert ds.lat.attrs == {"units": "degrees_north", "standard_name": "latitude", "axis": "Y"}
    assert ds.lon.attrs == {"units": "degrees_east", "standard_name": "longitude", "axis": "X"}
    np.testing.assert_allclose(ds.lat.values[:2], [35.125, 35.375])
    np.testing.assert_allclose(ds.lon.values[:2], [-9.875, -9.625])
    assert np.all(np.diff(ds.lat.values) > 0)
    assert ds.time.dtype.kind == "M"
    assert str(ds.time.values[0])[:10] == "2000-01-01"
    assert np.all(np.diff(ds.time.values) == np.timedelta64(1, "D"))
    assert ds.time.attrs["standard_name"] == "time"
    assert ds.time.encoding["calendar"] == "standard"
    assert ds.attrs["Conventions"] == "CF-1.8"
    assert ds.attrs["source"] == "esmscale.datasets.synthetic_precip"
    for key in ("seed", "slope", "dry_fraction", "autocorrelation", "mean_wet", "calendar"):
        assert key in ds.attrs


def test_precip_statistics(pr_default: xr.Dataset) -> None:
    pr = pr_default.pr.values
    assert np.all(np.isfinite(pr))
    assert pr.min() >= 0
    assert abs(float(np.mean(pr == 0)) - 0.6) < 0.03
    wet_mean = float(pr[pr > 0].mean())
    assert 4.5 < wet_mean < 7.5
    q99 = float(np.quantile(pr, 0.99))
    assert 20.0 < q99 < 60.0
    assert q99 > 3 * wet_mean


@pytest.mark.parametrize("dry", [0.3, 0.8])
def test_dry_fraction_parameter(dry: float) -> None:
    pr = synthetic_precip(48, 48, 200, seed=1, dry_fraction=dry).pr.values
    assert abs(float(np.mean(pr == 0)) - dry) < 0.03


def test_temporal_autocorrelation() -> None:
    correlated = synthetic_precip(32, 32, 365, seed=2, autocorrelation=0.7).pr.values
    white = synthetic_precip(32, 32, 365, seed=2, autocorrelation=0.0).pr.values
    assert _lag1(correlated) > 0.35
    assert abs(_lag1(white)) < 0.2


def test_spectral_slope() -> None:
    g = _gaussian_fields(64, 64, 100, 3.0, 0.5, np.random.default_rng(0))
    assert abs(_spectral_slope(g) - (-3.0)) < 0.4
    assert abs(float(g.mean())) < 1e-4
    assert abs(float(g.std()) - 1.0) < 1e-4
    pr = synthetic_precip(64, 64, 100, seed=0).pr.values
    assert -3.5 < _spectral_slope(pr) < -1.5


@settings(max_examples=12, deadline=None)
@given(ny=st.integers(4, 23), nx=st.integers(4, 23), ndays=st.integers(1, 6))
def test_any_size_works(ny: int, nx: int, ndays: int) -> None:
    ds = synthetic_precip(ny, nx, ndays, seed=ny * nx)
    assert ds.pr.shape == (ndays, ny, nx)
    assert ds.sizes == {"time": ndays, "lat": ny, "lon": nx}
    assert np.all(np.isfinite(ds.pr.values))
    assert ds.pr.values.min() >= 0


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="ny, nx >= 4"):
        synthetic_precip(3, 8, 5)
    with pytest.raises(ValueError, match="dry_fraction"):
        synthetic_precip(8, 8, 5, dry_fraction=1.0)
    with pytest.raises(ValueError, match="autocorrelation"):
        synthetic_precip(8, 8, 5, autocorrelation=1.0)


@pytest.mark.parametrize(
    ("calendar", "cls"),
    [("noleap", cftime.DatetimeNoLeap), ("360_day", cftime.Datetime360Day)],
)
def test_cftime_calendars(calendar: str, cls: type) -> None:
    ds = synthetic_precip(8, 8, 400, calendar=calendar, start="2001-02-27")
    times = ds.time.values
    assert all(isinstance(t, cls) for t in times)
    assert ds.time.encoding["calendar"] == calendar
    assert times[0] == cls(2001, 2, 27)
    assert times[2] == (cls(2001, 3, 1) if calendar == "noleap" else cls(2001, 2, 29))


# --------------------------------------------------------------------------- temperature
def test_temperature() -> None:
    ds = synthetic_temperature(32, 24, 365, seed=4)
    tas = ds.tas
    assert tas.dims == ("time", "lat", "lon") and tas.dtype == np.float32
    assert tas.attrs["units"] == "K" and tas.attrs["standard_name"] == "air_temperature"
    assert ds.time.encoding["calendar"] == "standard"
    assert float(tas.min()) > 260.0 and float(tas.max()) < 310.0
    seasonal = tas.mean(("lat", "lon")).values
    assert seasonal[180:220].mean() - seasonal[:30].mean() > 10.0  # summer warmer (8 K amp.)
    merid = tas.mean(("time", "lon")).values
    assert merid[0] - merid[-1] == pytest.approx(0.5 * (ds.lat[-1] - ds.lat[0]), abs=1.0)
    noleap = synthetic_temperature(8, 8, 30, calendar="360_day")
    assert noleap.time.encoding["calendar"] == "360_day"


# --------------------------------------------------------------------------- synthetic_esm
def test_esm_precip_biases() -> None:
    obs = synthetic_precip(32, 32, 60, seed=5)
    esm = synthetic_esm(obs, factor=4)
    assert esm.pr.shape == (60, 8, 8)
    assert esm.pr.dims == obs.pr.dims and esm.pr.attrs == obs.pr.attrs
    np.testing.assert_allclose(esm.lat.values, obs.lat.values.reshape(8, 4).mean(axis=1))
    np.testing.assert_allclose(esm.lon.values, obs.lon.values.reshape(8, 4).mean(axis=1))
    assert esm.lat.attrs["units"] == "degrees_north"
    xr.testing.assert_equal(esm.time, obs.time)
    coarse = obs.pr.values.reshape(60, 8, 4, 8, 4).mean(axis=(2, 4))
    smooth = gaussian_filter(coarse, sigma=(0, 0.7, 0.7), mode="nearest")
    np.testing.assert_allclose(esm.pr.values, 0.8 * smooth + 0.3, rtol=1e-5, atol=1e-5)
    assert float(esm.pr.min()) >= 0.3  # drizzle bias: no dry cells at all
    assert np.quantile(esm.pr.values, 0.99) < np.quantile(coarse, 0.99)  # intensity bias
    assert esm.attrs["factor"] == 4 and esm.attrs["intensity_bias"] == 0.8
    assert esm.attrs["drizzle"] == 0.3 and esm.attrs["smoothing"] == 0.7


def test_esm_temperature_warm_bias() -> None:
    obs = synthetic_temperature(16, 16, 20, seed=1, calendar="noleap")
    esm = synthetic_esm(obs, factor=2, smoothing=0.0)
    coarse = obs.tas.values.reshape(20, 8, 2, 8, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(esm.tas.values, coarse + 1.5, rtol=1e-6)
    assert esm.attrs["warm_bias"] == 1.5
    assert esm.time.encoding["calendar"] == "noleap"


def test_esm_variable_selection() -> None:
    both = xr.merge([synthetic_precip(8, 8, 3), synthetic_temperature(8, 8, 3)])
    with pytest.raises(ValueError, match=r"\['pr', 'tas'\]"):
        synthetic_esm(both, factor=2)
    with pytest.raises(ValueError, match="'rain'"):
        synthetic_esm(both, factor=2, variable="rain")
    assert list(synthetic_esm(both, factor=2, variable="tas").data_vars) == ["tas"]
    with pytest.raises(ValueError, match="crop or pad"):
        synthetic_esm(both, factor=3, variable="pr")
