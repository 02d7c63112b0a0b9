from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr

import esmscale
from esmscale import ConsistencyModel, EsmscaleError
from esmscale.datasets import synthetic_esm, synthetic_precip, synthetic_temperature
from esmscale.downscaling.pipeline import conserve_blocks, downscale

KW = {"tile": 32, "halo": 8, "members": 2}


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return ConsistencyModel.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def esm():
    return synthetic_esm(synthetic_precip(48, 80, 7, seed=1))


def _raise(*args, **kwargs):
    raise AssertionError("something was computed before .compute()")


def test_lazy_until_compute(esm, model):
    lazy = esm.chunk({"time": 3})
    with dask.config.set(scheduler=_raise):
        out = lazy.esm.downscale(model, **KW)
    assert isinstance(out.pr.data, dask.array.Array)
    assert out.pr.dims == ("member", "time", "lat", "lon")
    assert out.pr.shape == (2, 7, 48, 80)


def test_graph_grows_linearly_with_chunks(esm, model):
    n1 = len(dict(downscale(esm.chunk({"time": 7}), model, **KW).pr.data.__dask_graph__()))
    n7 = len(dict(downscale(esm.chunk({"time": 1}), model, **KW).pr.data.__dask_graph__()))
    assert n7 < 7 * n1 + 10


@pytest.mark.parametrize(
    ("tchunk", "chunks", "scheduler"),
    [
        (1, None, "sync"),
        (3, {"lat": 20, "lon": 33}, "threads"),
        (4, {"lat": 13, "lon": 80}, "sync"),
    ],
)
def test_bitwise_chunk_and_scheduler_invariance(esm, model, tchunk, chunks, scheduler):
    ref = downscale(esm, model, **KW).pr.values
    out = downscale(esm.chunk({"time": tchunk}), model, chunks=chunks, **KW)
    got = out.pr.compute(scheduler=scheduler).values
    assert np.array_equal(ref, got, equal_nan=True)


def test_distributed_localcluster_matches_and_loads_once(esm, model):
    distributed = pytest.importorskip("distributed")
    esm = esm.isel(time=slice(0, 4))  # 2 time x 2 lat chunks x 2 members: 8 tasks, 2 workers
    ref = downscale(esm, model, **KW).pr.values
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        out = downscale(esm.chunk({"time": 2}), model, chunks={"lat": 24}, **KW)
        got = client.compute(out.pr).result().values
        loads = client.run(lambda: sum(esmscale.pretrained.LOAD_COUNT.values()))
    assert np.array_equal(ref, got, equal_nan=True)
    assert all(n <= 1 for n in loads.values()), loads


def test_seeds_differ_almost_everywhere(esm, model):
    a = downscale(esm, model, seed=0, **KW).pr.values
    b = downscale(esm, model, seed=1, **KW).pr.values
    wet = (a > 0) | (b > 0)
    assert (a[wet] != b[wet]).mean() > 0.95
    assert not np.array_equal(a[0], a[1])


def test_attributes_and_provenance(esm, model):
    out = downscale(esm, model, **KW).pr
    assert out.attrs["units"] == "mm day-1"
    assert out.attrs["standard_name"] == "lwe_precipitation_rate"
    assert out.attrs["cell_methods"] == "time: mean"
    assert out.attrs["esmscale_model_sha256"] == model.sha256
    assert out.attrs["esmscale_t_star"] == 0.3
    assert out.attrs["esmscale_members"] == 2
    assert "downscale" in out.attrs["history"]


def test_units_round_trip(esm, model):
    si = esm.copy()
    si["pr"] = (esm.pr / 86400.0).assign_attrs(units="kg m-2 s-1")
    a = downscale(esm, model, **KW).pr.values
    b = downscale(si, model, **KW).pr
    assert b.attrs["units"] == "kg m-2 s-1"
    np.testing.assert_allclose(b.values * 86400.0, a, rtol=1e-4, atol=1e-4)


def test_calendar_passes_through(model):
    obs = synthetic_precip(32, 32, 5, seed=2, calendar="360_day")
    out = downscale(synthetic_esm(obs), model, **KW)
    assert out.time.values[0].calendar == "360_day"
    np.testing.assert_array_equal(out.time.values, obs.time.values)


def test_large_domain_and_global_wrap(model):
    lat = np.linspace(-89.0, 89.0, 128)
    lon = np.arange(0.0, 360.0, 360.0 / 256)
    rng = np.random.default_rng(0)
    da = xr.DataArray(
        rng.gamma(0.5, 4.0, (1, 128, 256)).astype(np.float32),
        dims=("time", "lat", "lon"),
        coords={
            "time": xr.date_range("2000-01-01", periods=1, freq="D", use_cftime=True),
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
        name="pr",
        attrs={"units": "mm day-1"},
    )
    out = downscale(da, model, members=1, tile=64, halo=16)
    assert out.shape == (1, 1, 512, 1024)
    assert np.isfinite(out.values).all()
    # no seam at the dateline: the jump across it is like any other column pair
    v = np.log1p(out.values[0, 0])
    jumps = np.abs(np.diff(v, axis=1, append=v[:, :1])).mean(axis=0)
    assert jumps[-1] < 3 * np.median(jumps)


def test_conserve_closes_the_budget(esm, model):
    out = downscale(esm, model, conserve=True, **KW).pr
    pooled = out.coarsen(lat=4, lon=4).mean()
    np.testing.assert_allclose(
        pooled.values, np.broadcast_to(esm.pr.values, pooled.shape), rtol=1e-4, atol=1e-4
    )


def test_conserve_blocks_temperature_is_additive():
    x = np.arange(16.0).reshape(1, 4, 4)
    out = conserve_blocks(x, np.zeros((1, 2, 2)), 2, "standard")
    np.testing.assert_allclose(out.reshape(2, 2, 2, 2).mean(axis=(1, 3)), 0.0, atol=1e-6)


def test_temperature_model_with_celsius_input(tiny_train_config):
    tas = synthetic_temperature(16, 16, 10, seed=0)
    model = esmscale.train(tas, tiny_train_config, progress=False)
    coarse = synthetic_esm(tas)
    coarse["tas"] = (coarse.tas - 273.15).assign_attrs(units="degC")
    out = downscale(coarse, model, t_star=0.2, tile=16, halo=4).tas
    assert out.attrs["units"] == "degC"
    assert -40 < float(out.mean()) < 40


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda ds: ds.rename(pr="x").assign(y=lambda d: d.x), "2 gridded variables"),
        (lambda ds: ds.isel(time=[0, 2, 1]), "not increasing"),
        (lambda ds: ds.isel(time=[0, 1, 1]), "duplicated"),
        (lambda ds: ds.assign(pr=ds.pr.assign_attrs(units="parsec")), "parsec"),
        (
            lambda ds: ds.assign(pr=ds.pr.assign_attrs(units=None)).map(
                lambda v: v.drop_attrs() if v.name == "pr" else v
            ),
            "pr",
        ),
    ],
)
def test_bad_input(esm, model, mutate, message):
    with pytest.raises(EsmscaleError, match=message):
        downscale(mutate(esm), model, **KW)


def test_missing_variable_lists_variables(esm, model):
    with pytest.raises(EsmscaleError, match=r"\['pr'\]"):
        downscale(esm, model, variable="tas", **KW)


def test_coarser_target_error(esm, model):
    with pytest.raises(EsmscaleError, match="not finer"):
        downscale(esm, model, target=esm.coarsen(lat=2, lon=2, boundary="trim").mean(), **KW)


def test_unknown_sampler_lists_the_known_ones(esm, model):
    with pytest.raises(
        EsmscaleError, match=r"no sampler named 'euler'; known samplers: \['bridge'"
    ):
        downscale(esm, model, sampler="euler", t_star=0.3, **KW)


def test_auto_t_star_needs_calibration(esm, model):
    uncal = ConsistencyModel(model.config.replace(t_star=None))
    with pytest.raises(EsmscaleError, match="calibrate"):
        downscale(esm, uncal, **KW)


def test_chunks_smaller_than_halo_warn_and_stay_identical(esm, model):
    esm = esm.isel(time=slice(0, 2))  # 60 chunks of 8x8 per field: few fields keep it fast
    ref = downscale(esm, model, **KW).pr.values
    with pytest.warns(esmscale.EsmscaleWarning, match="smaller than the tile halo"):
        out = downscale(esm.chunk({"time": 2}), model, chunks={"lat": 3, "lon": 5}, **KW)
    assert out.pr.chunks[2][0] == 8
    assert np.array_equal(out.pr.values, ref, equal_nan=True)


@pytest.mark.parametrize(
    "calendar", ["standard", "noleap", "360_day", "all_leap", "julian", "proleptic_gregorian"]
)
def test_all_cf_calendars_round_trip_through_zarr(model, calendar, tmp_path):
    from esmscale.io import write_zarr

    obs = synthetic_precip(16, 16, 3, seed=2, calendar=calendar, start="2000-02-27")
    coarse = synthetic_esm(obs).chunk({"time": 2})
    out = downscale(coarse, model, tile=16, halo=4)
    write_zarr(out, tmp_path / "o.zarr", progress=False)
    back = xr.open_zarr(
        tmp_path / "o.zarr", decode_times=xr.coders.CFDatetimeCoder(use_cftime=True)
    )
    times = back.time.values
    first = coarse.time.values[0]
    if hasattr(first, "calendar"):  # cftime: the calendar itself must survive
        assert times[0].calendar == first.calendar
    assert [str(t)[:10] for t in times] == [str(t)[:10] for t in coarse.time.values]
    np.testing.assert_array_equal(back.pr.values, out.pr.values)


def test_accessor_psd_and_calibrate(esm, model):
    obs = synthetic_precip(48, 80, 7, seed=1)
    psd = obs.esm.psd()
    assert psd.dims == ("wavenumber",)
    assert (psd > 0).all()
    assert psd.wavenumber.attrs["units"] == "cycles per degree"
    assert float(psd.wavenumber.max()) == 2.0  # Nyquist of the 0.25-degree grid
    cal = esm.esm.calibrate(obs, model)
    assert 0 < cal.k_star <= 0.5
    assert cal.t_star == cal.t_star_spectral
    assert esm.pr.esm.psd().sizes["wavenumber"] > 3


def test_impossible_precipitation_is_refused_on_every_path(esm, model):
    from esmscale.errors import EsmscaleWarning, PhysicalCheckError

    bad = esm.assign(pr=(esm.pr - 5.0).assign_attrs(esm.pr.attrs))  # ~90 % negative
    n = int((bad.pr.values < -0.01).sum())
    first = "the first at time=2000-01-01, lat=35.5, lon=-9.5"
    with pytest.raises(PhysicalCheckError, match=f"'pr': {n} of 1680 values .*{first}"):
        bad.esm.downscale(model, **KW)
    with pytest.raises(PhysicalCheckError, match="negative"):
        bad.esm.downscale(None, method="bilinear")
    # Dask input: still lazy; the check runs in the graph and names the chunk
    with dask.config.set(scheduler=_raise):
        lazy = bad.chunk({"time": 3}).esm.downscale(model, **KW)
    with pytest.raises(PhysicalCheckError, match="in the Dask chunk time="):
        lazy.pr.compute()
    with pytest.warns(EsmscaleWarning, match=f"'pr': {n} of 1680 values"):
        warned = bad.esm.downscale(model, check="warn", **KW)
    off = bad.esm.downscale(model, check="off", **KW)
    np.testing.assert_array_equal(warned.pr.values, off.pr.values)
    assert np.nanmin(off.pr.values) >= 0.0
    assert off.pr.attrs["esmscale_clipped_fraction"] == 0.0  # log transform: >= 0 already


def test_nonnegative_output_and_clipped_fraction_eager_lazy_and_zarr(esm, tmp_path):
    from esmscale.io.zarr import write_zarr
    from esmscale.models.transforms import DataTransform
    from esmscale.prepare import compute_clipped
    from tests.models._mixin import tiny_model

    cm = tiny_model(
        seed=0, transform=DataTransform(kind="standard", mean=2.0, std=3.0), factor=4, t_star=0.3
    )
    eager = downscale(esm, cm, **KW).pr
    frac = eager.attrs["esmscale_clipped_fraction"]
    assert 0.0 < frac < 1.0 and np.nanmin(eager.values) == 0.0
    with dask.config.set(scheduler=_raise):
        lazy = downscale(esm.chunk({"time": 3}), cm, **KW)
    assert "esmscale_clipped_fraction" not in lazy.pr.attrs
    assert compute_clipped(lazy.pr).attrs["esmscale_clipped_fraction"] == frac
    write_zarr(lazy, tmp_path / "o.zarr", progress=False)
    back = xr.open_zarr(tmp_path / "o.zarr")
    assert list(back.data_vars) == ["pr"]
    assert back.pr.attrs["esmscale_clipped_fraction"] == frac
    np.testing.assert_array_equal(back.pr.values, eager.values)
