import numpy as np
import pytest
import xarray as xr

from esmscale.errors import EsmscaleError
from esmscale.prepare.coords import find_latlon


def _grid(lat, lon, lat_name="lat", lon_name="lon"):
    return xr.Dataset(coords={lat_name: lat, lon_name: lon})


def test_find_latlon_cf_attributes_and_names():
    da = xr.DataArray(
        np.zeros((2, 3)),
        dims=("y", "x"),
        coords={
            "y": ("y", [1.0, 2.0], {"units": "degrees_north"}),
            "x": ("x", [1.0, 2.0, 3.0], {"standard_name": "longitude"}),
        },
    )
    assert find_latlon(da) == ("y", "x")
    assert find_latlon(_grid([1.0], [2.0], "latitude", "longitude")) == ("latitude", "longitude")
    nav = xr.Dataset(coords={"nav_lat": [1.0, 2.0], "nav_lon": [0.0, 1.0]})
    assert find_latlon(nav) == ("nav_lat", "nav_lon")


def test_find_latlon_errors_say_what_to_do():
    with pytest.raises(EsmscaleError, match=r"no latitude coordinate found.*standard_name"):
        find_latlon(xr.Dataset(coords={"y": [1.0], "lon": [1.0]}))
    curvilinear = xr.Dataset(
        coords={
            "lat": (("y", "x"), np.zeros((2, 2))),
            "lon": (("y", "x"), np.zeros((2, 2))),
        }
    )
    with pytest.raises(EsmscaleError, match="curvilinear grid"):
        find_latlon(curvilinear)
    points = xr.Dataset(coords={"lat": ("cell", [1.0, 2.0]), "lon": ("cell", [3.0, 4.0])})
    with pytest.raises(EsmscaleError, match="unstructured grid"):
        find_latlon(points)


def test_old_import_path_works():
    import importlib

    assert importlib.import_module("esmscale.prepare.regrid").find_latlon is find_latlon
