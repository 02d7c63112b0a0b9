"""End-to-end downscaling of real ESM and reanalysis data (../shared/data, see MANIFEST.md)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import esmscale
from esmscale import TrainConfig
from esmscale.io import write_zarr
from tests.conftest import sample_data

pytestmark = pytest.mark.data


def _open(relative: str) -> xr.Dataset:
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    return xr.open_dataset(sample_data(relative), engine="netcdf4", decode_times=coder)


def _winters(ds: xr.Dataset, first: int, last: int) -> xr.Dataset:
    year = ds.time.dt.year + (ds.time.dt.month == 12)
    return ds.isel(time=((year >= first) & (year <= last)).values)


@pytest.fixture(scope="module")
def eobs():
    return _open("climate4r_iberia/EOBS_Iberia_pr.nc")[["pr"]]


@pytest.fixture(scope="module")
def eobs_model(eobs, tmp_path_factory):
    cfg = TrainConfig(
        steps=60,
        batch_size=8,
        patch_size=16,
        block_out_channels=(16, 32),
        lr=1e-3,
        name="eobs-test",
    )
    model = esmscale.train(_winters(eobs, 1983, 1997), cfg, progress=False)
    model.config = model.config.replace(t_star=0.2)
    path = tmp_path_factory.mktemp("eobs") / "model"
    model.save_pretrained(path)
    return esmscale.load_model(path)


@pytest.mark.parametrize(
    ("source", "bias", "last", "members", "min_r"),
    [
        # the fast variant: one held-out winter, one member (r = 0.88)
        ("CMIP5_Iberia_pr.nc", "qdm-mean", 1998, 1, 0.85),
        # five held-out winters, two members (minutes on 2 cores)
        pytest.param("CMIP5_Iberia_pr.nc", "qdm", 2002, 2, 0.9, marks=pytest.mark.slow),
        pytest.param("NCEP_Iberia_pr.nc", "qdm", 2002, 2, 0.9, marks=pytest.mark.slow),
        pytest.param("CMIP5_Iberia_pr.nc", "qdm-mean", 2002, 2, 0.9, marks=pytest.mark.slow),
    ],
)
def test_iberia_to_eobs_grid_with_qdm(eobs, eobs_model, source, bias, last, members, min_r):
    esm = _open(f"climate4r_iberia/{source}")[["pr"]]
    hist = _winters(esm, 1983, 1997)
    sim = _winters(esm, 1998, last).chunk({"time": 100})
    out = sim.esm.downscale(
        eobs_model,
        target=eobs,
        members=members,
        seed=0,
        bias_correction=bias,
        reference=_winters(eobs, 1983, 1997),
        historical=hist,
    )
    pr = out.pr.compute()
    # units, grid, mask, calendar, provenance
    assert pr.attrs["units"] == "kg m-2 s-1"
    np.testing.assert_array_equal(pr.lat, eobs.lat)
    np.testing.assert_array_equal(pr.lon, eobs.lon)
    sea = eobs.pr.isnull().all("time").values
    assert np.isnan(pr.values[:, :, sea]).all()
    assert np.isfinite(pr.values[:, :, ~sea]).all()
    np.testing.assert_array_equal(pr.time.values, sim.time.values)
    assert pr.time.values[0].calendar == sim.time.values[0].calendar
    assert pr.attrs["esmscale_bias_correction"] == bias
    assert pr.attrs["esmscale_model_sha256"] == eobs_model.sha256
    # the domain-mean daily series follows the input's
    out_mean = pr.mean(("member", "lat", "lon")).values
    in_mean = sim.pr.mean(("lat", "lon")).values
    r = np.corrcoef(out_mean, in_mean)[0, 1]
    assert r >= min_r, r


def test_xclim_calendars_longitudes_descending_latitudes(eobs_model, tmp_path):
    cases = [
        (
            "xclim_testdata/cmip6/prsn_day_CanESM5_historical_r1i1p1f1_gn_19910101-20101231.nc",
            "prsn",
            "365_day",
        ),
        (
            (
                "xclim_testdata/CanESM2_365day/"
                "pr_day_CanESM2_rcp85_r1i1p1_na10kgrid_qm-moving-50bins-detrend_2095.nc"
            ),
            "pr",
            "noleap",
        ),
        (
            (
                "xclim_testdata/HadGEM2-CC_360day/"
                "pr_day_HadGEM2-CC_rcp85_r1i1p1_na10kgrid_qm-moving-50bins-detrend_2095.nc"
            ),
            "pr",
            "360_day",
        ),
    ]
    for path, var, calendar in cases:
        ds = _open(path).isel(time=slice(0, 6))
        if ds.sizes["lat"] > 12:
            ds = ds.isel(lat=slice(0, 12), lon=slice(0, 12))
        out = ds.esm.downscale(eobs_model, variable=var, members=1, tile=16, halo=4)
        da = out[var]
        assert da.shape[-2:] == (4 * ds.sizes["lat"], 4 * ds.sizes["lon"])
        assert np.isfinite(da.values).all()
        assert da.time.values[0].calendar == ds.time.values[0].calendar
        # longitude convention and latitude order follow the input
        assert (float(da.lon.min()) > 180) == (float(ds.lon.min()) > 180)
        assert (np.diff(da.lat.values)[0] < 0) == (np.diff(ds.lat.values)[0] < 0)
        store = tmp_path / f"{var}-{calendar}.zarr"
        write_zarr(out.chunk({"time": 3}), store, progress=False)
        back = xr.open_zarr(store, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
        assert back.time.values[0].calendar == da.time.values[0].calendar
        np.testing.assert_array_equal(back[var].values, da.values)
