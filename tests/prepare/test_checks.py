import numpy as np
import pytest
import xarray as xr

from esmscale.errors import EsmscaleError
from esmscale.prepare.checks import check_time


def _da(times, **time_attrs):
    da = xr.DataArray(
        np.zeros((len(times), 2, 3)),
        dims=("time", "lat", "lon"),
        coords={"time": times, "lat": [0.0, 1.0], "lon": [0.0, 1.0, 2.0]},
        name="pr",
    )
    da["time"].attrs.update(time_attrs)
    return da


def test_check_time_returns_the_time_dimension():
    times = xr.date_range("2000-01-01", periods=3, freq="D", use_cftime=True)
    assert check_time(_da(times)) == "time"
    renamed = _da(times).rename(time="t")
    renamed["t"].attrs["axis"] = "T"
    assert check_time(renamed) == "t"


@pytest.mark.parametrize(
    ("times", "message"),
    [
        ([0.0, 1.0, 2.0], "numeric.*'since'"),
        (np.array(["2000-01-01", "2000-01-01", "2000-01-02"], "datetime64[ns]"), "duplicated"),
        (np.array(["2000-01-03", "2000-01-01", "2000-01-02"], "datetime64[ns]"), "sortby"),
    ],
)
def test_check_time_errors_name_the_fix(times, message):
    with pytest.raises(EsmscaleError, match=message):
        check_time(_da(times))


def test_check_time_needs_exactly_one_time_dimension():
    da = _da(xr.date_range("2000-01-01", periods=3, freq="D")).rename(time="t")
    da = da.expand_dims(member=[0, 1])  # neither dim is named time or has axis="T"
    with pytest.raises(EsmscaleError, match="exactly one time dimension"):
        check_time(da)


def test_old_import_path_works():
    from esmscale.downscaling import pipeline

    assert pipeline.check_time is check_time
