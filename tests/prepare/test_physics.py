from __future__ import annotations

import dask
import dask.array as dsa
import numpy as np
import pytest
import xarray as xr

from esmscale.datasets import synthetic_esm, synthetic_precip, synthetic_temperature
from esmscale.errors import EsmscaleError, EsmscaleWarning, PhysicalCheckError
from esmscale.prepare import check_field, check_values, clip_negative, compute_clipped, rule_for
from esmscale.prepare.clipping import CLIP_ATTR, attach_counts, clip_negative_lazy
from esmscale.prepare.rules import is_nonnegative


def _raise(*args, **kwargs):
    raise AssertionError("something was computed before .compute()")


@pytest.fixture(scope="module")
def negative_pr():
    """A coarse precipitation input that is mostly negative (minimum -4.7 mm/day)."""
    esm = synthetic_esm(synthetic_precip(48, 80, 7, seed=1))
    return (esm.pr - 5.0).assign_attrs(esm.pr.attrs)


def _first_bad(da, mask):
    t, y, x = np.unravel_index(int(np.argmax(mask.values)), mask.shape)
    return da.time.values[t], float(da.lat[y]), float(da.lon[x])


def test_negative_precipitation_names_count_and_first_location(negative_pr):
    bad = negative_pr.values < -0.01
    assert bad.mean() > 0.85 and negative_pr.min() < -4.6
    with pytest.raises(PhysicalCheckError) as err:
        check_field(negative_pr)
    text = str(err.value)
    time, lat, lon = _first_bad(negative_pr, negative_pr < -0.01)
    assert f"variable 'pr': {int(bad.sum())} of {bad.size} values" in text
    assert "negative beyond the tolerance of -0.01 mm day-1 (minimum -4.7 mm day-1)" in text
    assert f"time={str(time)[:10]}, lat={lat:.6g}, lon={lon:.6g}" in text
    assert "check='warn'" in text and "--check off" in text


def test_warn_and_off_modes(negative_pr):
    with pytest.warns(EsmscaleWarning, match="of 1680 values"):
        assert check_field(negative_pr, "warn") is negative_pr
    assert check_field(negative_pr, "off") is negative_pr  # no warning: they are errors here
    with pytest.raises(EsmscaleError, match="check='maybe' is not known"):
        check_field(negative_pr, "maybe")


def test_tolerance_and_unit_conversion():
    # the NCEP reanalysis has -1.2e-10 kg m-2 s-1 (-1e-5 mm/day): numerical noise, accepted
    da = xr.DataArray(
        np.array([[[-1.19e-10, 1e-5]]]), dims=("time", "lat", "lon"), name="pr"
    ).assign_attrs(units="kg m-2 s-1", standard_name="precipitation_flux")
    check_field(da)
    with pytest.raises(PhysicalCheckError, match=r"tolerance of -1.16e-07 kg m-2 s-1"):
        check_field(da - 1e-6)


def test_temperature_out_of_range_in_kelvin_and_degc():
    tas = synthetic_temperature(8, 8, 3, seed=0).tas  # K
    check_field(tas)
    mislabelled = (tas - 273.15).assign_attrs(tas.attrs)  # degC values labelled K
    with pytest.raises(PhysicalCheckError, match=r"outside the physical range 150..350 K"):
        check_field(mislabelled)
    hot = tas.copy(data=tas.values - 273.15).assign_attrs(units="degC")
    hot[1, 2, 3] = 90.0
    with pytest.raises(PhysicalCheckError) as err:
        check_field(hot)
    assert "1 of 192 values" in str(err.value)
    assert "-123.15..76.85 degC (150..350 K; minimum 90, maximum 90)" in str(err.value)
    assert f"time={str(hot.time.values[1])[:10]}" in str(err.value)


def test_infinity_and_leaked_fill_values():
    pr = synthetic_precip(8, 8, 3, seed=0).pr
    inf = pr.copy(data=pr.values.copy())
    inf[0, 0, 1] = np.inf
    with pytest.raises(PhysicalCheckError, match=r"1 of 192 values \(0.5 %\) are infinite"):
        check_field(inf)
    fill = pr.copy(data=pr.values.copy())
    fill[2, 1, 1] = 1e20
    fill[2, 3, 3] = -9999.0
    with pytest.raises(PhysicalCheckError, match=r"2 of 192 values .* fill values .* 1e"):
        check_field(fill)
    # an undecoded _FillValue in an unknown variable is found too (it has no physical rule)
    other = xr.DataArray(np.array([[1.0, -32768.0]]), dims=("y", "x"), name="foo")
    other.attrs["_FillValue"] = -32768
    with pytest.raises(PhysicalCheckError, match=r"fill values .*\(e.g. -32768\)"):
        check_field(other)
    check_field(other.where(other != -32768).assign_attrs(units="1"))


def test_rules_from_standard_name_name_and_units():
    assert rule_for("x", {"standard_name": "lwe_precipitation_rate", "units": "mm s-1"})
    assert rule_for("tp", {"units": "mm"}).quantity == "precipitation"
    assert rule_for("tasmin", {"units": "degC"}).upper == pytest.approx(76.85)
    assert rule_for("ta850", {"units": "K"}).lower == 150.0
    assert rule_for("psl", {"units": "Pa", "standard_name": "air_pressure"}) is None
    # ERA5 total precipitation in metres: no bound without known units, sign still matters
    assert rule_for("tp", {"units": "m"}).lower is None
    assert is_nonnegative("tp", {"units": "m"}) and not is_nonnegative("pr", {"units": "K"})
    xr_unknown = xr.DataArray(np.full((2, 2), -5.0), dims=("y", "x"), name="foo")
    check_field(xr_unknown)  # no rule: passes


def test_dask_input_is_checked_lazily_in_the_graph(negative_pr):
    lazy = negative_pr.chunk({"time": 3})
    with dask.config.set(scheduler=_raise):
        checked = check_field(lazy)
    assert isinstance(checked.data, dsa.Array)
    chunk = r"in the Dask chunk time=2000-01-0\d\.\.2000-01-0\d; other chunks are checked"
    with pytest.raises(PhysicalCheckError, match=chunk):
        checked.compute(scheduler="synchronous")
    # scan=True reads the chunks once and counts over all of them
    bad = int((negative_pr.values < -0.01).sum())
    with pytest.raises(PhysicalCheckError, match=f"'pr': {bad} of 1680 values"):
        check_field(lazy, scan=True)
    good = synthetic_precip(8, 8, 4, seed=0).pr.chunk({"time": 2})
    with dask.config.set(scheduler="synchronous"):
        np.testing.assert_array_equal(check_field(good).values, good.values)


def test_numpy_values_location_by_index():
    with pytest.raises(PhysicalCheckError, match=r"the first at time index 1, y index 0, x"):
        check_values(
            np.array([[[1.0]], [[-3.0]]]),
            name="pr",
            attrs={"units": "mm day-1"},
            dims=("time", "y", "x"),
        )


def test_clip_negative_counts_eager_and_lazy():
    x = np.array([[-1.0, 2.0], [np.nan, -0.5]], dtype="float32")
    out, counts = clip_negative(x)
    assert out.dtype == np.float32 and (out[np.isfinite(out)] >= 0).all()
    assert counts.tolist() == [2, 3]
    data = dsa.from_array(np.tile(x, (3, 1, 1)), chunks=(1, 2, 2))
    da = xr.DataArray(data, dims=("t", "y", "x"), name="pr", attrs={"units": "mm day-1"})
    with dask.config.set(scheduler=_raise):
        clipped, cnt = clip_negative_lazy(da.data)
        lazy = attach_counts(da.copy(data=clipped), cnt)
    assert CLIP_ATTR not in lazy.attrs  # never a placeholder before the values exist
    done = compute_clipped(lazy)
    assert done.attrs[CLIP_ATTR] == pytest.approx(6 / 9)
    assert np.nanmin(done.values) == 0.0
