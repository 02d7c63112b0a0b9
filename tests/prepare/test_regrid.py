import os
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esmscale.errors import EsmscaleError
from esmscale.prepare.regrid import refine_grid, regrid, target_mask, to_regular
from tests.conftest import sample_data

DATA = Path(
    os.environ.get("ESMSCALE_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")
)
METHODS = ["bilinear", "conservative"]


def _field(values, lat, lon, *, name="pr", dtype=np.float64, lat_name="lat", lon_name="lon"):
    values = np.asarray(values, dtype=dtype)
    dims = ("time", lat_name, lon_name) if values.ndim == 3 else (lat_name, lon_name)
    coords = {
        lat_name: (lat_name, np.asarray(lat, float), {"units": "degrees_north"}),
        lon_name: (lon_name, np.asarray(lon, float), {"units": "degrees_east"}),
    }
    if values.ndim == 3:
        coords["time"] = np.arange(values.shape[0])
    return xr.DataArray(values, dims=dims, coords=coords, name=name, attrs={"units": "mm/day"})


def _random(shape=(5, 8, 11), lat0=34.0, lon0=-9.8, step=1.4, seed=0, dtype=np.float64):
    _, h, w = shape
    rng = np.random.default_rng(seed)
    lat = lat0 + step * np.arange(h)
    lon = lon0 + step * np.arange(w)
    return _field(rng.random(shape), lat, lon, dtype=dtype)


def _grid(lat, lon, lat_name="lat", lon_name="lon"):
    return xr.Dataset(
        coords={
            lat_name: (lat_name, np.asarray(lat, float), {"standard_name": "latitude"}),
            lon_name: (lon_name, np.asarray(lon, float), {"standard_name": "longitude"}),
        }
    )


def _raise_if_computed(*args, **kwargs):
    raise AssertionError("dask computed something while building the graph")


# --- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_constant_field_stays_constant(method):
    da = _random() * 0 + 3.5
    out = regrid(da, refine_grid(da, 3), method=method)
    assert out.shape == (5, 24, 33)
    np.testing.assert_allclose(out.values, 3.5, rtol=1e-12)


def test_bilinear_reproduces_linear_function_in_interior():
    lat = 30 + 1.5 * np.arange(8)
    lon = -10 + 2.0 * np.arange(9)
    f = lambda la, lo: 2.0 * la - 3.0 * lo + 1.0  # noqa: E731
    da = _field(f(lat[:, None], lon[None, :]), lat, lon)
    tlat = np.linspace(lat[0], lat[-1], 23)
    tlon = np.linspace(lon[0], lon[-1], 31)
    out = regrid(da, _grid(tlat, tlon))
    np.testing.assert_allclose(out.values, f(tlat[:, None], tlon[None, :]), rtol=0, atol=1e-11)


def test_bilinear_fills_outer_half_cells_with_edge_values():
    da = _random(shape=(2, 4, 5), lat0=40.0, lon0=0.0, step=1.0)
    out = regrid(da, _grid([39.5, 39.75], [4.5]))
    np.testing.assert_array_equal(out.values[:, 0, 0], da.values[:, 0, -1])
    np.testing.assert_array_equal(out.values[:, 1, 0], da.values[:, 0, -1])


def _cell_area(lat, lon):
    dlat = np.radians(np.abs(lat[1] - lat[0]))
    dlon = np.radians(np.abs(lon[1] - lon[0]))
    band = np.sin(np.radians(lat) + dlat / 2) - np.sin(np.radians(lat) - dlat / 2)
    return band[:, None] * dlon * np.ones(lon.size)[None, :]


def test_conservative_preserves_area_weighted_mean():
    da = _random(shape=(3, 10, 12), lat0=20.0, lon0=0.0, step=2.0)
    area = _cell_area(da.lat.values, da.lon.values)
    coarse = (da * area).sum(("lat", "lon")) / area.sum()

    fine = refine_grid(da, 4)
    out = regrid(da, fine, method="conservative")
    fa = _cell_area(fine.lat.values, fine.lon.values)
    np.testing.assert_allclose((out * fa).sum(("lat", "lon")) / fa.sum(), coarse, rtol=1e-6)

    # a fine grid that is not aligned with the coarse cells (interior, 0.3 deg)
    tlat = np.arange(22.0, 36.0, 0.3)
    tlon = np.arange(2.0, 20.0, 0.3)
    sub = da.sel(lat=slice(21.0, 37.0), lon=slice(1.0, 21.0))
    out = regrid(sub, _grid(tlat, tlon), method="conservative")
    ta = _cell_area(tlat, tlon)
    inside = da.sel(lat=slice(22.0, 35.0), lon=slice(2.0, 19.0))
    ia = _cell_area(inside.lat.values, inside.lon.values)
    expected = (inside * ia).sum(("lat", "lon")) / ia.sum()
    got = (out * ta).sum(("lat", "lon")) / ta.sum()
    np.testing.assert_allclose(got, expected, rtol=0.05)


@pytest.mark.parametrize("method", METHODS)
def test_source_nan_does_not_spread(method):
    da = _random(shape=(2, 6, 7), lat0=40.0, lon0=0.0, step=1.0)
    da[:, 3, 3] = np.nan
    out = regrid(da, refine_grid(da, 3), method=method)
    nan = np.isnan(out.values[0])
    if method == "bilinear":  # only the fine point exactly on the NaN centre
        assert np.argwhere(nan).tolist() == [[10, 10]]
    else:  # the 3x3 fine cells inside the NaN cell
        assert nan.sum() == 9
        assert nan[9:12, 9:12].all()


# --- longitude conventions ------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_0_360_source_on_regional_domain_crossing_greenwich(method):
    lon = np.arange(-6.0, 7.0, 1.0)  # -6..6
    lat = np.arange(40.0, 46.0, 1.0)
    rng = np.random.default_rng(1)
    ref = _field(rng.random((3, lat.size, lon.size)), lat, lon)
    shifted = ref.assign_coords(lon=ref.lon % 360).sortby("lon")  # 0..6, 354..359
    target = _grid(np.arange(40.25, 45.0, 0.5), np.arange(-5.25, 5.5, 0.5))
    a = regrid(ref, target, method=method)
    b = regrid(shifted, target, method=method)
    np.testing.assert_allclose(b.values, a.values, rtol=1e-12)
    assert not np.isnan(b.values).any()


def test_minus180_source_on_0_360_target_crossing_dateline():
    lon = np.arange(170.0, 191.0, 2.0)  # 170..190
    lat = np.arange(-10.0, 0.0, 2.0)
    rng = np.random.default_rng(2)
    ref = _field(rng.random((2, lat.size, lon.size)), lat, lon)
    wrapped = ref.assign_coords(lon=((ref.lon + 180) % 360) - 180)  # 170..180, -178..-170
    target = _grid(np.arange(-9.0, -2.0, 0.5), np.arange(171.0, 190.0, 0.5))
    np.testing.assert_allclose(regrid(wrapped, target).values, regrid(ref, target).values)


def _global(step=5.0, start=0.0, ntime=2):
    lon = start + step * np.arange(round(360 / step))
    lat = np.arange(-90 + step / 2, 90, step)
    f = np.cos(np.radians(lat))[:, None] * (np.sin(np.radians(lon)) + np.cos(np.radians(lon)))
    values = np.stack([f * (k + 1) for k in range(ntime)])
    return _field(values, lat, lon)


@pytest.mark.parametrize("method", METHODS)
def test_global_source_wraps_across_the_seam(method):
    src = _global()  # 0..355
    same = src.assign_coords(lon=((src.lon + 180) % 360) - 180).sortby("lon")  # -180..175
    tlat = np.arange(-40.0, 40.0, 1.0) + 0.5
    for tlon in (np.arange(-180.0, 180.0, 1.0) + 0.5, np.arange(0.0, 360.0, 1.0) + 0.25):
        target = _grid(tlat, tlon)
        a = regrid(src, target, method=method)
        b = regrid(same, target, method=method)
        assert not np.isnan(a.values).any()
        np.testing.assert_allclose(a.values, b.values, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(a.lon.values, tlon)
        # continuous around the globe: the step across the seam is like any other step
        row = a.values[0]
        seam = np.abs(row[:, 0] - row[:, -1])
        assert (seam <= np.abs(np.diff(row, axis=-1)).max(axis=-1) + 1e-12).all()
        truth = np.cos(np.radians(tlat))[:, None] * (
            np.sin(np.radians(tlon)) + np.cos(np.radians(tlon))
        )
        # 5-degree input: bilinear error ~ curvature, conservative ~ half a cell's slope
        np.testing.assert_allclose(row, truth, atol=0.01 if method == "bilinear" else 0.07)


@pytest.mark.parametrize("method", METHODS)
def test_global_source_reaches_the_poles(method):
    src = _global() * 0 + 2.0  # centres -87.5..87.5
    target = _grid(np.concatenate([[-90.0, -89.75], [89.75, 90.0]]), np.arange(-180.0, 180, 0.5))
    out = regrid(src, target, method=method)
    np.testing.assert_allclose(out.values, 2.0, rtol=1e-12)


# --- orders, names, attrs, dtypes -----------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_descending_source_latitude_gives_same_result(method):
    da = _random()
    target = refine_grid(da, 2)
    a = regrid(da, target, method=method)
    b = regrid(da.isel(lat=slice(None, None, -1)), target, method=method)
    np.testing.assert_array_equal(a.values, b.values)


@pytest.mark.parametrize("method", METHODS)
def test_descending_target_keeps_its_order(method):
    da = _random()
    target = refine_grid(da, 2)
    desc = target.isel(lat=slice(None, None, -1))
    out = regrid(da, desc, method=method)
    np.testing.assert_array_equal(out.lat.values, desc.lat.values)
    ref = regrid(da, target, method=method)
    np.testing.assert_array_equal(out.values, ref.values[:, ::-1])


def test_output_names_attrs_and_dims_follow_target_and_input():
    da = _random(dtype=np.float32).rename(lat="latitude", lon="longitude")
    da = da.assign_coords(height=2.0).transpose("latitude", "time", "longitude")
    target = _grid(np.arange(35.0, 43.0, 0.5), np.arange(-9.0, 3.0, 0.5), "y", "x")
    target["y"].attrs["units"] = "degrees_north"
    out = regrid(da, target)
    assert out.dims == ("y", "time", "x")
    assert out.name == "pr"
    assert out.attrs == {"units": "mm/day"}
    assert out.dtype == np.float32
    assert out["y"].attrs == target["y"].attrs
    assert float(out["height"]) == 2.0
    np.testing.assert_array_equal(out.time.values, da.time.values)
    assert regrid(_random(), target).dtype == np.float64


def test_to_regular_renames_sorts_and_keeps_attrs():
    da = _random().rename(lat="latitude", lon="longitude").isel(latitude=slice(None, None, -1))
    da = da.transpose("latitude", "longitude", "time")
    out = to_regular(da)
    assert out.dims == ("time", "lat", "lon")
    assert (np.diff(out.lat.values) > 0).all()
    assert out.attrs == da.attrs
    assert out.name == da.name
    np.testing.assert_array_equal(out.values, _random().values)
    lon360 = _random(lon0=350.0)
    assert to_regular(lon360).lon.values.max() > 360  # convention kept


# --- errors ---------------------------------------------------------------------------------


def test_coverage_error_names_bounds():
    da = _random(shape=(1, 7, 5), lat0=35.7, lon0=0.0, step=1.4)
    with pytest.raises(EsmscaleError, match="not covered") as info:
        regrid(da, _grid(np.arange(30.0, 50.5, 0.5), [1.0, 2.0]))
    msg = str(info.value)
    assert "target latitude 30..50" in msg
    assert "input latitude 35.7..44.1" in msg
    with pytest.raises(EsmscaleError, match="target longitude"):
        regrid(da, _grid([40.0], [-5.0, 1.0]))


def test_missing_coordinates_error_lists_coords():
    da = xr.DataArray(np.zeros((2, 3, 4)), dims=("time", "a", "b"), coords={"a": [1, 2, 3]})
    with pytest.raises(EsmscaleError, match="no latitude coordinate") as info:
        regrid(da, _grid([1.0], [1.0]))
    assert "['a']" in str(info.value)
    assert "standard_name='latitude'" in str(info.value)
    assert "degrees_north" in str(info.value)


def test_curvilinear_coordinates_error():
    lat2d, lon2d = np.meshgrid(np.arange(4.0), np.arange(5.0), indexing="ij")
    da = xr.DataArray(
        np.zeros((4, 5)),
        dims=("rlat", "rlon"),
        coords={
            "lat": (("rlat", "rlon"), lat2d, {"standard_name": "latitude"}),
            "lon": (("rlat", "rlon"), lon2d, {"standard_name": "longitude"}),
        },
    )
    with pytest.raises(EsmscaleError, match="curvilinear") as info:
        regrid(da, _grid([1.0], [1.0]))
    assert "rotated" in str(info.value)
    assert "regular lat/lon grid" in str(info.value)


def test_unknown_method_lists_valid_names():
    with pytest.raises(EsmscaleError, match=r"'nearest'.*\['bilinear', 'conservative'\]"):
        regrid(_random(), _grid([40.0], [0.0]), method="nearest")


def test_refine_grid_errors():
    with pytest.raises(EsmscaleError, match="positive integer"):
        refine_grid(_random(), 0)
    irregular = _grid([0.0, 1.0, 3.0], [0.0, 1.0])
    with pytest.raises(EsmscaleError, match="not regularly spaced"):
        refine_grid(irregular, 2)


# --- grids and masks ------------------------------------------------------------------------


def test_refine_grid_cell_centres():
    grid = refine_grid(_grid([0.5, 1.5], [10.0, 12.0, 14.0]), 2)
    np.testing.assert_allclose(grid.lat.values, [0.25, 0.75, 1.25, 1.75])
    np.testing.assert_allclose(grid.lon.values, [9.5, 10.5, 11.5, 12.5, 13.5, 14.5])
    assert not grid.data_vars
    assert grid.lat.attrs["units"] == "degrees_north"
    assert grid.lon.attrs["standard_name"] == "longitude"
    desc = refine_grid(_grid([1.5, 0.5], [0.0, 1.0]), 2)
    np.testing.assert_allclose(desc.lat.values, [1.75, 1.25, 0.75, 0.25])
    np.testing.assert_allclose(refine_grid(_random(), 1).lat.values, _random().lat.values)


def _obs_target():
    tlat = np.arange(35.0, 43.0, 0.5)
    tlon = np.arange(-9.0, 3.0, 0.5)
    values = np.ones((4, tlat.size, tlon.size))
    values[:, :3, :5] = np.nan  # "sea": NaN at every time step
    values[1, 10, 10] = np.nan  # missing in one time step only: not masked
    return _field(values, tlat, tlon)


def test_target_mask_and_mask_applied():
    target = _obs_target()
    valid = target_mask(target)
    assert valid.dims == ("lat", "lon")
    assert (~valid).sum() == 15
    assert not valid[:3, :5].any()
    assert target_mask(target.to_dataset()[["lat", "lon"]]) is None
    assert target_mask(target.fillna(0.0)) is None

    da = _random()
    for tgt in (target, target.to_dataset(name="rr")):
        out = regrid(da, tgt)
        assert np.isnan(out.values[:, :3, :5]).all()
        assert np.isfinite(out.values).sum() == out.size - 15 * out.sizes["time"]
    assert np.isfinite(regrid(da, target, mask=False).values).all()


# --- laziness and determinism ---------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_lazy_and_chunks_follow_input(method):
    da = _random(shape=(10, 8, 11)).chunk({"time": 3, "lat": 4, "lon": 5})
    target = _obs_target()
    with dask.config.set(scheduler=_raise_if_computed):
        out = regrid(da, target, method=method)
    assert out.chunks == ((3, 3, 3, 1), (16,), (24,))
    ref = regrid(da.compute(), target, method=method)
    np.testing.assert_array_equal(out.compute().values, ref.values)


@pytest.mark.parametrize("method", METHODS)
def test_lazy_is_one_task_per_chunk_and_identical_to_eager(method):
    """Padding, filling, both interpolations and the mask run in one task per time chunk
    (dozens of tiny tasks per chunk cost a distributed cluster more than the work), with the
    eager result's values, dims, coordinates (scalar ones too) and attributes, in any dim order."""
    da = _random(shape=(9, 8, 11), dtype=np.float32).assign_coords(height=2.0)
    da[2, 1, 1] = np.nan
    target = _obs_target()
    for arr in (da, da.transpose("lat", "time", "lon")):
        lazy = regrid(arr.chunk(time=2), target, method=method)
        layers = lazy.data.__dask_graph__().layers
        regrid_tasks = [k for k in lazy.data.__dask_graph__() if "esmscale-regrid" in str(k)]
        assert len(regrid_tasks) == 5  # one per time chunk
        assert len(layers) <= 3  # the input, its spatial merge, the regrid
        xr.testing.assert_identical(lazy.compute(), regrid(arr, target, method=method))


@pytest.mark.parametrize("method", METHODS)
def test_chunk_invariance_1_3_7(method):
    da = _random(shape=(15, 8, 11), dtype=np.float32)
    da[:, 2, 4] = np.nan
    target = refine_grid(da, 3)
    ref = regrid(da, target, method=method).values
    for size in (1, 3, 7):
        got = regrid(da.chunk(time=size), target, method=method).compute().values
        assert np.array_equal(got, ref, equal_nan=True)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=8),
    method=st.sampled_from(METHODS),
)
def test_chunk_invariance_hypothesis(sizes, method):
    n = sum(sizes)
    da = _random(shape=(n, 5, 6), seed=n, dtype=np.float32)
    target = _grid(np.arange(34.0, 40.0, 0.37), np.arange(-10.0, -2.5, 0.41))
    ref = regrid(da, target, method=method).values
    got = regrid(da.chunk(time=tuple(sizes)), target, method=method).compute().values
    assert np.array_equal(got, ref, equal_nan=True)


# --- real data ------------------------------------------------------------------------------


def _open(relative):
    path = sample_data(relative)
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    return xr.open_dataset(path, engine="netcdf4", decode_times=coder)


@pytest.mark.data
@pytest.mark.parametrize("source", ["CMIP5_Iberia_pr.nc", "NCEP_Iberia_pr.nc"])
def test_iberia_onto_eobs_grid(source):
    eobs = _open("climate4r_iberia/EOBS_Iberia_pr.nc")
    src = _open(f"climate4r_iberia/{source}")["pr"].chunk(time=200)
    out = regrid(src, eobs)
    assert out.shape == (src.sizes["time"], 19, 29)
    assert out.dtype == np.float32
    assert out.chunks[0] == src.chunks[0]
    values = out.compute().values
    sea = eobs["pr"].isnull().all("time").values
    assert 0 < sea.sum() < sea.size
    assert np.isnan(values[:, sea]).all()
    assert np.isfinite(values[:, ~sea]).all()


@pytest.mark.data
def test_canesm2_descending_365day_refine_round_trip():
    name = (
        "xclim_testdata/CanESM2_365day/"
        "pr_day_CanESM2_rcp85_r1i1p1_na10kgrid_qm-moving-50bins-detrend_2095.nc"
    )
    da = _open(name)["pr"].isel(lat=slice(0, 8), lon=slice(0, 8))
    assert da.lat.values[0] > da.lat.values[-1]
    grid = refine_grid(da, 2)
    assert grid.lat.values[0] > grid.lat.values[-1]

    out = regrid(da, grid, method="conservative")
    assert out.shape == (365, 16, 16)
    back = out.coarsen(lat=2, lon=2).mean()
    np.testing.assert_allclose(back.values, da.values, rtol=1e-5, atol=0)

    out = regrid(da.chunk(time=50), grid)
    assert out.dtype == np.float32
    back = out.coarsen(lat=2, lon=2).mean().values
    ok = np.isfinite(da.values)
    assert np.isfinite(out.values).all()
    scale = np.nanmax(np.abs(da.values))
    assert np.abs(back[ok] - da.values[ok]).max() < 0.1 * scale


def test_lazy_regrid_task_does_not_carry_the_input_graph():
    """A regrid task's pickled size does not grow with the input's number of chunks."""
    import cloudpickle

    target = _obs_target()

    def task_bytes(n_time):
        da = _random(shape=(n_time, 8, 11), dtype=np.float32).chunk(time=1)
        graph = dict(regrid(da, target).data.__dask_graph__())
        key = next(k for k in graph if "esmscale-regrid" in str(k))
        return len(cloudpickle.dumps(graph[key]))

    assert task_bytes(200) < task_bytes(4) + 1000
