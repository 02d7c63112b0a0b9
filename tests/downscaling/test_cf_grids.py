"""Any CF grid as input or target: CMIP5 onto UTM (SPREAD), rotated-pole and RADOLAN grids.

Tolerances: bilinear interpolation of the smooth test field ``_smooth`` (range ~7 over the
domains used) is checked against its exact values within 3 % of the field's range at the
target points (one ~1.4 deg input cell of curvature), round trips fine -> target -> fine within
1 % of the range inside the domain (one input cell away from its edges).
"""

from __future__ import annotations

import gzip
import time

import numpy as np
import pytest
import torch
import xarray as xr

from esmscale.cli import main
from esmscale.downscaling.methods import get as get_method
from esmscale.downscaling.pipeline import downscale
from esmscale.errors import EsmscaleError
from esmscale.prepare.grids import describe_grid
from esmscale.prepare.regrid_cf import regrid_cf
from esmscale.pretrained import load_model
from tests.conftest import sample_data

SPREAD = "synoptreg_balearic/pcp_spread.nc"
CORDEX = "climate4r_iberia/CORDEX_Iberia_pr.nc"
CMIP5 = "climate4r_iberia/CMIP5_Iberia_pr.nc"
CMIP5_GLOBAL = "xclim_testdata/cmip5/tas_Amon_CanESM2_rcp85_r1i1p1_200701-200712.nc"
RADOLAN = "wradlib_radolan/raa01-sf_10000-1305270050-dwd---bin.gz"


def _smooth(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lon = (np.asarray(lon) + 180.0) % 360.0 - 180.0
    return 10 * np.cos(np.deg2rad(lat)) + 3 * np.sin(np.deg2rad(2 * lon)) + 0.05 * lat * lon


def _on(grid_like: xr.DataArray | xr.Dataset, ntime: int = 2, name: str = "f") -> xr.DataArray:
    """The smooth field on the grid of ``grid_like`` (its coordinates and grid mapping)."""
    g = describe_grid(grid_like)
    lon, lat = g.lonlat()
    coords = {"time": np.arange(ntime), g.ydim: grid_like[g.ydim], g.xdim: grid_like[g.xdim]}
    if g.mapping_name is not None:
        coords[g.mapping_name] = grid_like[g.mapping_name]
    attrs = {"grid_mapping": g.mapping_name} if g.mapping_name else {}
    return xr.DataArray(
        np.repeat(_smooth(lon, lat)[None], ntime, axis=0),
        dims=("time", g.ydim, g.xdim),
        coords=coords,
        name=name,
        attrs=attrs,
    )


def _open(rel: str, days: int = 3) -> xr.Dataset:
    return xr.open_dataset(sample_data(rel)).isel(time=slice(0, days)).load()


def _radolan_grid(step: int = 1) -> xr.Dataset:
    """The RADOLAN 900x900 1 km polar-stereographic grid with one real SF field (NaN = no data).

    Projection as documented by DWD (RADOLAN/RADVOR format description): polar stereographic,
    true at 60 N, central meridian 10 E, sphere R = 6370.04 km; the lower-left corner of the
    900 x 900 grid is at x = -523.4622 km, y = -4658.645 km (46.9526 N, 3.5889 E); rows run
    south to north. Values: 24-h sums, (raw & 0x0FFF) * 0.1 mm, bit 0x2000 = no data.
    """
    with gzip.open(sample_data(RADOLAN)) as f:
        raw = f.read()
    data = np.frombuffer(raw[raw.index(b"\x03") + 1 :], dtype="<u2")[: 900 * 900]
    data = data.reshape(900, 900)
    field = np.where(data & 0x2000, np.nan, (data & 0x0FFF) * 0.1)
    x = -523462.2 + 1000.0 * (np.arange(900) + 0.5)
    y = -4658645.0 + 1000.0 * (np.arange(900) + 0.5)
    ds = xr.Dataset(
        {
            "pr": (("y", "x"), field, {"units": "mm", "grid_mapping": "polar_stereographic"}),
            "polar_stereographic": (
                (),
                0,
                {
                    "grid_mapping_name": "polar_stereographic",
                    "straight_vertical_longitude_from_pole": 10.0,
                    "latitude_of_projection_origin": 90.0,
                    "standard_parallel": 60.0,
                    "earth_radius": 6370040.0,
                    "false_easting": 0.0,
                    "false_northing": 0.0,
                },
            ),
        },
        coords={
            "y": ("y", y, {"standard_name": "projection_y_coordinate", "units": "m"}),
            "x": ("x", x, {"standard_name": "projection_x_coordinate", "units": "m"}),
        },
    )
    return ds.isel(y=slice(step // 2, None, step), x=slice(step // 2, None, step))


def _check_against_exact(out: xr.DataArray, frac: float, lon_max: float = 360.0) -> float:
    """Max error against the exact field (target points west of ``lon_max``)."""
    lon, lat = describe_grid(out).lonlat()
    exact = _smooth(lon, lat)
    err = np.where(lon <= lon_max, np.abs(out.values[0] - exact), np.nan)
    rng = np.nanmax(exact) - np.nanmin(exact)
    assert np.nanmax(err) <= frac * rng, (np.nanmax(err), rng)
    return float(np.nanmax(err) / rng)


def test_cmip5_onto_spread_utm(tiny_model_dir, tmp_path):
    """Downscaling onto the 5 km UTM 30N SPREAD grid: CRS, 2-D lat/lon, sea NaN, CF on disk."""
    spread = _open(SPREAD)
    cmip = _open(CMIP5)
    f = regrid_cf(_on(cmip), spread)
    # Menorca's east tip (lon > 4.22) lies beyond the last CMIP5 centre: edge value there
    _check_against_exact(f, 0.03, lon_max=4.22)
    sea = spread.tp.isnull().all("time").values
    assert np.isnan(f.values[:, sea]).all() and np.isfinite(f.values[:, ~sea]).all()
    out = downscale(cmip, tiny_model_dir, target=spread, members=2, seed=1)
    pr = out["pr"]
    assert pr.dims == ("member", "time", "northing", "easting")
    assert pr.attrs["grid_mapping"] == "crs" and pr.attrs["units"] == "kg m-2 s-1"
    assert (
        out["lat"].dims == ("northing", "easting") and out["lat"].attrs["units"] == "degrees_north"
    )
    assert np.array_equal(pr.isnull().all(("member", "time")).values, sea)
    out.to_netcdf(tmp_path / "out.nc")
    back = xr.open_dataset(tmp_path / "out.nc", decode_coords="all")
    g, g0 = describe_grid(back), describe_grid(spread)
    assert g.same_crs(g0) and np.array_equal(g.x, g0.x) and np.array_equal(g.y, g0.y)


def test_cmip5_onto_rotated_pole_and_round_trip(tiny_model_dir):
    """CMIP5 onto a EUR-44 rotated-pole grid (the part inside the CMIP5 domain) and back."""
    cordex = _open(CORDEX).isel(rlat=slice(7, 22), rlon=slice(10, 28))
    cmip = _open(CMIP5)
    out = regrid_cf(_on(cmip), cordex)
    assert out.attrs["grid_mapping"] == "rotated_pole" and "rotated_pole" in out.coords
    np.testing.assert_allclose(out["lat"].values, cordex["lat"].values)
    _check_against_exact(out, 0.03)
    ds = downscale(cmip, tiny_model_dir, target=cordex, members=1)
    assert ds["pr"].dims == ("member", "time", "rlat", "rlon")
    assert ds["pr"].attrs["grid_mapping"] == "rotated_pole"
    assert ds["rotated_pole"].attrs["grid_north_pole_latitude"] == 39.25
    base = get_method("bilinear")(cmip, None, target=cordex)
    assert base["pr"].attrs["grid_mapping"] == "rotated_pole"
    np.testing.assert_allclose(
        base["pr"].values[0], regrid_cf(cmip["pr"], cordex).values, rtol=1e-6
    )
    # a rotated-pole input onto a finer regular grid
    fine_ll = xr.Dataset(
        coords={"lat": np.arange(38.0, 41.9, 0.2), "lon": np.arange(-4.6, 2.6, 0.2)}
    )
    rot = _on(cordex)
    assert "grid_mapping" not in regrid_cf(rot, fine_ll).attrs
    _check_against_exact(regrid_cf(rot, fine_ll), 0.01)
    # round trip: a 0.1 deg regular field -> rotated 0.44 deg -> back onto the part of the
    # regular grid inside the rotated one, within 1 % of the field's range
    fine = xr.Dataset(coords={"lat": np.arange(36.0, 44.5, 0.1), "lon": np.arange(-8.0, 5.0, 0.1)})
    src = _on(fine)
    there = regrid_cf(src, cordex)
    inner = fine.sel(lat=slice(38.0, 41.9), lon=slice(-4.6, 2.6))
    back = regrid_cf(there.assign_coords(rotated_pole=cordex["rotated_pole"]), inner)
    err = np.abs(back - src.sel(lat=inner.lat, lon=inner.lon))
    assert float(err.max()) <= 0.01 * float(src.max() - src.min())


def test_round_trip_regular_utm_regular():
    spread = _open(SPREAD)
    fine = xr.Dataset(coords={"lat": np.arange(38.4, 40.4, 0.02), "lon": np.arange(1.1, 4.5, 0.02)})
    src = _on(fine)
    there = regrid_cf(src, spread, mask=False)
    inner = fine.sel(lat=slice(38.7, 40.0), lon=slice(1.33, 4.15))  # inside the UTM grid
    back = regrid_cf(there.assign_coords(crs=spread["crs"]), inner)
    err = np.abs(back - src.sel(lat=inner.lat, lon=inner.lon))
    assert float(err.max()) <= 0.01 * float(src.max() - src.min())


def test_global_cmip5_onto_radolan_polar_stereographic():
    """Global CanESM2 (0..360 lon) onto the full 1 km RADOLAN grid, its no-data mask kept."""
    radolan = _radolan_grid()
    g = describe_grid(radolan)
    lon, lat = g.from_native(np.array([-523462.2]), np.array([-4658645.0]))
    assert abs(lon[0] - 3.5889) < 1e-3 and abs(lat[0] - 46.9526) < 1e-3  # documented corner
    tas = _open(CMIP5_GLOBAL, days=1)["tas"]
    t0 = time.perf_counter()
    out = regrid_cf(_on(tas, ntime=1), radolan)
    assert time.perf_counter() - t0 < 20
    assert out.shape == (1, 900, 900) and out.attrs["grid_mapping"] == "polar_stereographic"
    nodata = radolan.pr.isnull().values
    assert 0.1 < nodata.mean() < 0.3
    assert np.array_equal(np.isnan(out.values[0]), nodata)
    _check_against_exact(out, 0.03)


def test_conservative_onto_radolan_10km_keeps_constants_and_means():
    radolan = _radolan_grid(step=10)
    tas = _open(CMIP5_GLOBAL, days=1)["tas"]
    const = xr.full_like(tas, 280.0)
    out = regrid_cf(const, radolan, method="conservative", mask=False)
    np.testing.assert_allclose(out.values, 280.0, rtol=1e-6)
    f = regrid_cf(_on(tas, ntime=1), radolan, method="conservative", mask=False)
    # area means of a smooth field agree with its exact values to within an input cell's change
    exact = _smooth(*describe_grid(radolan).lonlat())
    assert abs(float(f.mean()) - exact.mean()) < 0.02 * (exact.max() - exact.min())


def test_train_on_spread_cli_and_conserve_on_projected_target(tmp_path):
    """Point 3: `esmscale train` on SPREAD (NaN sea masked), then conserve=True onto SPREAD."""
    torch.manual_seed(0)
    obs = xr.open_dataset(sample_data(SPREAD)).isel(time=slice(0, 60), easting=slice(0, 50))
    path = tmp_path / "spread.nc"
    obs.to_netcdf(path)
    args = ["train", str(path), "--output", str(tmp_path / "run"), "--steps", "3"]
    args += ["--batch-size", "2", "--patch-size", "16", "--channels", "8", "16", "--factor", "5"]
    assert main([*args, "--quiet"]) == 0
    cm = load_model(tmp_path / "run" / "model")
    assert cm.config.factor == 5 and cm.config.variable == "tp"
    coarse = obs[["tp"]].coarsen(northing=5, easting=5).mean().isel(time=slice(0, 4))
    coarse["tp"].attrs = dict(obs.tp.attrs)
    coarse["crs"] = obs["crs"]
    out = downscale(coarse, cm, target=obs, conserve=True, members=2, t_star=0.5, seed=3)
    tp = out["tp"]
    blocks = tp.coarsen(northing=5, easting=5).mean()
    ref = np.broadcast_to(coarse["tp"].values[None], blocks.shape)
    ok = np.isfinite(blocks.values)
    assert ok.sum() > 0.1 * ok.size
    np.testing.assert_allclose(blocks.values[ok], ref[ok], rtol=1e-4, atol=1e-4)
    sea = obs.tp.isnull().all("time").values
    assert np.isnan(tp.values[:, :, sea]).all()
    assert tp.attrs["grid_mapping"] == "crs" and "lat" in out.coords
    # a target whose cells the input's do not tile is refused with the reason
    with pytest.raises(EsmscaleError, match="not exact blocks of the target's"):
        downscale(coarse, cm, target=obs.isel(easting=slice(0, 45)), conserve=True, t_star=0.5)
