import numpy as np
import pytest
import xarray as xr

from esmscale.forecast import fit, forecast, train
from esmscale.forecast.data import segments
from tests.conftest import sample_data
from tests.forecast._helpers import tiny_config

pytestmark = pytest.mark.data


def test_eobs_iberia_winters_gaps_and_sea():
    path = sample_data("climate4r_iberia/EOBS_Iberia_tas.nc")
    tas = xr.open_dataset(path).tas.isel(time=slice(0, 450))  # five DJF winters
    assert len(segments(tas.time.values)) == 5
    m = train(tas, tiny_config(steps=3), progress=False)
    assert m.info["grid"] == [19, 29]  # padded internally to 20 x 32
    fc = forecast(tas.chunk({"time": 100}), m, lead=2).compute()
    assert fc.shape[1:] == (2, 19, 29)
    sea = np.isnan(tas.values).all(axis=0)
    assert np.isnan(fc.values[..., sea]).all()
    assert np.isfinite(fc.values[..., ~sea]).all()
    assert fc.attrs["units"] == "degC"


def test_balearic_precipitation_climatology():
    path = sample_data("synoptreg_balearic/pcp_spread.nc")
    tp = xr.open_dataset(path).tp.isel(time=slice(0, 400))
    clim = fit("climatology", tp)
    fc = forecast(tp, clim, lead=1, init=tp.time.values[-10:]).compute()
    land = np.isfinite(tp.values).all(axis=0)
    assert np.isfinite(fc.values[..., land]).all()
    assert np.isnan(fc.values[..., ~land]).all()
