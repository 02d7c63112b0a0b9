"""CF grid descriptions (pyproj CRS from CF attributes) and sparse-weights regridding."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from esmscale.errors import EsmscaleError
from esmscale.prepare.grids import block_order, describe_grid, tiling_factor
from esmscale.prepare.inputs import select_variable
from esmscale.prepare.regrid_cf import regrid_cf
from tests.conftest import sample_data

SPREAD = "synoptreg_balearic/pcp_spread.nc"
CORDEX = "climate4r_iberia/CORDEX_Iberia_pr.nc"
CMIP5 = "climate4r_iberia/CMIP5_Iberia_pr.nc"


def _open(rel: str, days: int = 3) -> xr.Dataset:
    return xr.open_dataset(sample_data(rel)).isel(time=slice(0, days)).load()


def test_spread_is_utm30n_read_from_crs_wkt():
    g = describe_grid(_open(SPREAD))
    assert (g.kind, g.ydim, g.xdim, g.shape) == ("projected", "northing", "easting", (35, 53))
    assert g.source == "crs.crs_wkt"
    lon, lat = g.lonlat()
    # the Balearic Islands: Ibiza to Menorca
    assert 1.1 < lon.min() < 1.4 and 4.2 < lon.max() < 4.4
    assert 38.4 < lat.min() < 38.6 and 40.1 < lat.max() < 40.3
    assert abs(g.spacing_km() - 5.0) < 0.05  # 5 km cells (UTM scale factor ~0.9997 here)


def test_rotated_pole_matches_stored_2d_latlon():
    ds = _open(CORDEX)
    g = describe_grid(select_variable(ds))  # the DataArray keeps its grid mapping
    assert g.kind == "rotated" and (g.ydim, g.xdim) == ("rlat", "rlon")
    lon, lat = g.lonlat()
    assert np.abs(lon - ds.lon.values).max() < 1e-5
    assert np.abs(lat - ds.lat.values).max() < 1e-5


def test_unknown_grid_mapping_is_named():
    ds = _open(CORDEX)
    ds["rotated_pole"].attrs["grid_mapping_name"] = "rotated_mercator_of_doom"
    with pytest.raises(EsmscaleError, match=r"'rotated_mercator_of_doom'.*not known to pyproj"):
        describe_grid(ds)


def test_2d_coordinates_without_grid_mapping_say_what_is_needed():
    ds = _open(CORDEX).drop_vars("rotated_pole")
    del ds["pr"].attrs["grid_mapping"]
    with pytest.raises(EsmscaleError, match="2-D latitude/longitude but no grid mapping") as e:
        describe_grid(ds)
    assert "grid_north_pole_latitude" in str(e.value) and "crs_wkt" in str(e.value)


def test_disagreeing_crs_attributes_are_ambiguous_and_named():
    ds = _open(SPREAD)
    ds["crs"].attrs["proj4"] = "+proj=utm +zone=31 +ellps=GRS80 +units=m +no_defs"
    with pytest.raises(EsmscaleError, match=r"ambiguous: crs\.crs_wkt was read, and crs\.proj4"):
        describe_grid(ds)


def test_proj4_without_datum_is_ambiguous():
    ds = _open(SPREAD)
    ds["crs"].attrs = {"proj4": "+proj=utm +zone=30 +units=m"}
    with pytest.raises(EsmscaleError, match="ambiguous: it was read from the attribute proj4"):
        describe_grid(ds)
    ds["crs"].attrs = {"proj4": "+proj=utm +zone=30 +ellps=GRS80 +units=m"}
    assert describe_grid(ds).source == "crs.proj4"


def test_km_coordinates_are_scaled():
    ds = _open(SPREAD)
    km = ds.assign_coords(
        easting=("easting", ds.easting.values / 1e3, {"units": "km"}),
        northing=("northing", ds.northing.values / 1e3, {"units": "km"}),
    )
    np.testing.assert_allclose(describe_grid(km).lonlat()[0], describe_grid(ds).lonlat()[0])


def test_conservative_onto_coarser_same_crs_grid_is_the_block_mean():
    """Aligned projected cells: the overlap weights are exact, NaN (sea) cells left out."""
    ds = _open(SPREAD).isel(easting=slice(0, 50))
    coarse = ds.coarsen(northing=5, easting=5).mean()
    coarse["crs"] = ds["crs"]
    out = regrid_cf(ds["tp"].assign_coords(crs=ds["crs"]), coarse, method="conservative")
    expect = ds["tp"].coarsen(northing=5, easting=5).mean()  # NaN-skipping block mean
    np.testing.assert_allclose(out.values, expect.values, rtol=1e-5, atol=1e-5)
    assert tiling_factor(describe_grid(coarse), describe_grid(ds)) == 5
    assert tiling_factor(describe_grid(ds), describe_grid(coarse)) is None
    assert block_order(coarse.northing.values, ds.northing.values, 5).tolist() == list(range(7))


def test_partial_coverage_says_fraction_and_where():
    cmip = _open(CMIP5)["pr"]
    with pytest.raises(EsmscaleError, match=r"covers only \d+\.\d % of the target") as e:
        regrid_cf(cmip, _open(CORDEX))
    msg = str(e.value)
    assert "lat " in msg and "lon " in msg and "the input spans lat 34.32..44.12" in msg


def test_nan_input_does_not_spread_and_target_mask_kept():
    ds = _open(SPREAD).isel(easting=slice(0, 50))
    src = ds["tp"].assign_coords(crs=ds["crs"]).coarsen(northing=5, easting=5).mean()
    out = regrid_cf(src, ds, method="bilinear")
    sea = ds["tp"].isnull().all("time").values
    assert np.isnan(out.values[:, sea]).all()
    # land cells with a valid input neighbour get values that lie within the input's range
    vals = out.values[np.isfinite(out.values)]
    assert vals.size > 0.5 * (~sea).sum() * 3
    assert vals.min() >= float(src.min()) - 1e-6 and vals.max() <= float(src.max()) + 1e-6
