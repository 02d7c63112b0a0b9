"""Metrics on projected grids work in the grid's own (x, y) cells (issue 15: the SPREAD table)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from esmscale import metrics as M
from esmscale.errors import EsmscaleError
from esmscale.metrics.checks import latlon_dims, native_dims


def _utm(values: np.ndarray, units: str = "m", two_d_latlon: bool = False) -> xr.DataArray:
    """``values (time, 30, 50)`` on a 5 km UTM-like grid (northing descending, as SPREAD)."""
    t, ny, nx = values.shape
    coords: dict[str, object] = {
        "time": pd.date_range("2008-01-01", periods=t),
        "northing": ("northing", 4.46e6 - 5e3 * np.arange(ny), {"units": units}),
        "easting": ("easting", 8.66e5 + 5e3 * np.arange(nx), {"units": units}),
    }
    if units == "km":
        coords["northing"] = ("northing", 4460.0 - 5.0 * np.arange(ny), {"units": "km"})
        coords["easting"] = ("easting", 866.0 + 5.0 * np.arange(nx), {"units": "km"})
    if two_d_latlon:
        lat = np.linspace(40.3, 39.0, ny)[:, None] + np.zeros((1, nx))
        lon = np.linspace(1.2, 4.3, nx)[None, :] + np.zeros((ny, 1))
        coords["lat"] = (("northing", "easting"), lat)
        coords["lon"] = (("northing", "easting"), lon)
    return xr.DataArray(
        values, dims=("time", "northing", "easting"), coords=coords, attrs={"units": "mm"}
    )


def _wave(cycles: int, t: int = 2) -> np.ndarray:
    j = np.arange(50)
    return np.broadcast_to(np.cos(2 * np.pi * cycles * j / 50), (t, 30, 50)).copy()


@pytest.mark.parametrize("units", ["m", "km"])
def test_psd_on_a_projected_grid_is_per_km(units):
    """A wave of 5 cycles over 50 cells of 5 km peaks at 5 / 250 km = 0.02 cycles per km."""
    da = _utm(_wave(5), units=units)
    assert M.grid_spacing(da) == (5.0, 5.0)
    p = M.radial_psd(da)
    peak = float(p["wavenumber"][int(np.argmax(p.values))])
    assert peak == pytest.approx(0.02, rel=0.05)
    # the same values labelled as a 5-degree lat/lon grid: same spectrum, wavenumbers per degree
    ll = da.rename(northing="lat", easting="lon").assign_coords(
        lat=np.arange(30) * 5.0, lon=np.arange(50) * 5.0
    )
    np.testing.assert_allclose(M.radial_psd(ll).values, p.values, rtol=1e-10)


def test_native_dims_found_through_standard_names_2d_latlon_or_metres():
    v = np.zeros((1, 30, 50))
    assert native_dims(_utm(v)) == ("northing", "easting")
    assert latlon_dims(_utm(v, two_d_latlon=True), "result") == ("northing", "easting")
    rot = xr.DataArray(
        np.zeros((3, 4)),
        dims=("y", "x"),
        coords={
            "y": ("y", np.arange(3.0), {"standard_name": "grid_latitude"}),
            "x": ("x", np.arange(4.0), {"standard_name": "grid_longitude"}),
        },
    )
    assert native_dims(rot) == ("y", "x")
    bare = xr.DataArray(np.zeros((3, 4)), dims=("a", "b"))
    assert native_dims(bare) is None
    with pytest.raises(EsmscaleError, match=r"obs: .*latitude"):
        latlon_dims(bare, "obs")


def test_scores_on_a_projected_grid_match_direct_computations():
    """CRPS, FSS, index biases and the wet-day fraction run on (northing, easting) with NaN sea."""
    rng = np.random.default_rng(0)
    obs = rng.gamma(0.5, 4.0, (31, 30, 50))
    obs[obs < 1.0] = 0.0  # dry days stay dry and wet days wet when scaled up below
    obs[:, :10, :20] = np.nan  # sea
    ens = obs[None] * rng.uniform(0.8, 1.2, (3, 31, 30, 50))
    o = _utm(obs, two_d_latlon=True)
    r = xr.concat([_utm(e, two_d_latlon=True) for e in ens], "member")
    # fair CRPS straight from its definition, NaN cells left out
    m = ens.shape[0]
    skill = np.abs(ens - obs[None]).mean(0)
    spread = np.abs(ens[:, None] - ens[None]).sum((0, 1)) / (2 * m * (m - 1))
    assert float(M.fair_crps(r, o)) == pytest.approx(np.nanmean(skill - spread), rel=1e-6)
    assert float(M.wet_day_fraction(o)) == pytest.approx(np.mean(obs[np.isfinite(obs)] >= 1.0))
    bias = M.index_bias(o.expand_dims(member=2) * 1.25, o, ["prcptot"], freq="MS")
    assert bias["prcptot"] == pytest.approx(0.25, rel=1e-6)
    fss = M.fractions_skill_score(o, o)
    assert float(fss.min()) == pytest.approx(1.0)
