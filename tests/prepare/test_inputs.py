import numpy as np
import pytest
import xarray as xr

from esmscale.errors import EsmscaleError
from esmscale.prepare.inputs import field_values, grid_spacing, open_dataset, select_variable


def _da(name="pr", units="kg m-2 s-1", shape=(3, 4, 5), dtype=np.float64, spacing=0.5):
    t, h, w = shape
    values = np.arange(t * h * w, dtype=np.float64).reshape(shape).astype(dtype)
    return xr.DataArray(
        values,
        dims=("time", "lat", "lon"),
        coords={"lat": 10 + spacing * np.arange(h), "lon": spacing * np.arange(w)},
        name=name,
        attrs={"units": units} if units is not None else {},
    )


def _ds():
    return xr.Dataset({"pr": _da(), "tas": _da("tas", "K"), "time_bnds": ("time", np.zeros(3))})


def test_select_variable_by_name():
    assert select_variable(_ds(), "tas").name == "tas"


def test_select_variable_missing_lists_variables():
    with pytest.raises(EsmscaleError, match="'psl'") as info:
        select_variable(_ds(), "psl")
    assert "['pr', 'tas', 'time_bnds']" in str(info.value)


def test_select_variable_several_candidates():
    with pytest.raises(EsmscaleError, match="2 gridded variables") as info:
        select_variable(_ds())
    assert "'pr'" in str(info.value)
    assert "'tas'" in str(info.value)
    assert "variable=" in str(info.value)


def test_select_variable_single_candidate_ignores_1d():
    ds = xr.Dataset({"pr": _da(), "time_bnds": ("time", np.zeros(3))})
    assert select_variable(ds).name == "pr"


def test_select_variable_no_candidate():
    with pytest.raises(
        EsmscaleError, match=r"latitude and longitude dims \('x' has dims \('t',\)\)"
    ):
        select_variable(xr.Dataset({"x": ("t", np.zeros(3))}))
    with pytest.raises(EsmscaleError, match="it has no data variables"):
        select_variable(xr.Dataset())


def test_select_variable_dataarray():
    da = _da()
    assert select_variable(da) is da
    assert select_variable(da, "pr") is da
    with pytest.raises(EsmscaleError, match="'tas'"):
        select_variable(da, "tas")


def test_field_values_converts_kg_m2_s():
    da = _da() * 1e-5
    da.attrs["units"] = "kg m-2 s-1"
    out = field_values(da, "mm day-1")
    assert out.dtype == np.float32
    assert out.shape == (3, 4, 5)
    np.testing.assert_allclose(out, da.values * 86400.0, rtol=1e-6)


def test_field_values_2d_gets_time_axis():
    da = _da(units="mm day-1").isel(time=0)
    out = field_values(da, "mm day-1")
    assert out.shape == (1, 4, 5)
    np.testing.assert_array_equal(out[0], da.values.astype(np.float32))


def test_field_values_integer_ok():
    out = field_values(_da(units="K", dtype=np.int16), "K")
    assert out.dtype == np.float32


@pytest.mark.parametrize("dtype", [bool, np.complex64, "U3"])
def test_field_values_wrong_dtype(dtype):
    da = _da(units="mm day-1")
    da = da.copy(data=np.zeros(da.shape, dtype=dtype))
    with pytest.raises(EsmscaleError, match="dtype"):
        field_values(da, "mm day-1")


def test_field_values_missing_units_names_variable():
    with pytest.raises(EsmscaleError, match=r"'precip'.*no 'units'"):
        field_values(_da("precip", units=None), "mm day-1")


def test_field_values_wrong_quantity():
    with pytest.raises(EsmscaleError, match="cannot convert"):
        field_values(_da("tas", units="K"), "mm day-1")


def test_field_values_wrong_rank():
    da = xr.DataArray(
        np.zeros((2, 2, 3, 3)), dims=("m", "t", "y", "x"), name="pr", attrs={"units": "mm day-1"}
    )
    with pytest.raises(EsmscaleError, match=r"\(time, y, x\)"):
        field_values(da, "mm day-1")


def test_grid_spacing():
    assert grid_spacing(_da(spacing=0.25)) == pytest.approx(0.25)
    irregular = _da().assign_coords(lon=[0.0, 1.0, 3.0, 4.0, 9.0])
    assert grid_spacing(irregular) is None
    assert grid_spacing(_da().drop_vars("lon")) is None


def test_open_dataset_missing_path(tmp_path):
    with pytest.raises(EsmscaleError, match="does not exist"):
        open_dataset(tmp_path / "nope.nc")
    with pytest.raises(EsmscaleError, match="no file matches"):
        open_dataset(str(tmp_path / "nope_*.nc"))


def test_open_dataset_netcdf(tmp_path):
    ds = xr.Dataset({"pr": _da()})
    ds = ds.assign_coords(
        time=("time", np.arange(3.0), {"units": "days since 2000-01-01", "calendar": "noleap"})
    )
    path = tmp_path / "pr.nc"
    ds.to_netcdf(path, engine="netcdf4")
    with open_dataset(path) as opened:
        da = select_variable(opened)
        assert da.name == "pr"
        assert da.attrs["units"] == "kg m-2 s-1"
        np.testing.assert_array_equal(da.values, ds["pr"].values)
        assert type(opened.time.values[0]).__module__.startswith("cftime")
        out = field_values(da, "mm day-1")
    np.testing.assert_allclose(out, ds["pr"].values * 86400.0, rtol=1e-6)


def test_open_dataset_glob(tmp_path):
    ds = xr.Dataset({"pr": _da()})
    ds = ds.assign_coords(time=("time", np.arange(3.0), {"units": "days since 2000-01-01"}))
    ds.isel(time=[0]).to_netcdf(tmp_path / "pr_0.nc")
    ds.isel(time=[1, 2]).to_netcdf(tmp_path / "pr_1.nc")
    with open_dataset(str(tmp_path / "pr_*.nc")) as opened:
        assert opened.sizes["time"] == 3
        np.testing.assert_array_equal(opened["pr"].values, ds["pr"].values)
