import dask
import dask.array as dsa
import numpy as np
import pytest

from esmscale.errors import EsmscaleError
from esmscale.forecast import Forecaster, available_methods, fit, forecast, train
from esmscale.forecast.baselines import OpticalFlow
from esmscale.forecast.predict import LOAD_COUNT
from tests.forecast._helpers import djf_times, field, tiny_config


@pytest.fixture(scope="module")
def winters():
    return field(djf_times(2))


@pytest.fixture(scope="module")
def model(winters):
    return train(winters, tiny_config(steps=2), progress=False)


def _raise(*args, **kwargs):
    raise AssertionError("something was computed before .compute()")


def test_lazy_until_compute(winters, model):
    lazy = winters.chunk({"time": 20})
    with dask.config.set(scheduler=_raise):
        fc = forecast(lazy, model, lead=4, chunk_size=16)
    assert isinstance(fc.data, dsa.Array)
    assert fc.dims == ("init_time", "lead_time", "lat", "lon")
    assert fc.data.numblocks[0] == -(-fc.sizes["init_time"] // 16)
    with dask.config.set(scheduler="threads"):
        out = fc.compute()
    assert np.isnan(out.values[..., :3, :4]).all()
    assert np.isfinite(out.values[..., 4:, 5:]).all()
    eager = forecast(winters, model, lead=4, chunk_size=1000).compute()
    np.testing.assert_allclose(out.values, eager.values, rtol=1e-5, atol=1e-5)
    # loaded at most once in this process (the cache is shared with consistency models)
    assert sum(n for ref, n in LOAD_COUNT.items() if ref.cls is type(model)) <= 1


def test_coordinates_and_attrs(winters, model):
    fc = forecast(winters, model, lead=3)
    assert fc.lead_time.dtype.kind == "m"
    assert (fc.lead_time.values == np.array([1, 2, 3], "timedelta64[D]")).all()
    assert fc.attrs["units"] == "degC"
    assert fc.attrs["standard_name"] == "air_temperature"
    assert "esmscale" in fc.attrs["history"]
    np.testing.assert_array_equal(fc.lat.values, winters.lat.values)
    # init times: every time with t_in consecutive days of history, never across the gap
    times = winters.time.values
    first_of_winter = [
        times[0],
        times[np.flatnonzero(np.diff(times) > np.timedelta64(1, "D"))[0] + 1],
    ]
    for t0 in first_of_winter:
        for k in range(model.t_in - 1):
            assert t0 + np.timedelta64(k, "D") not in fc.init_time.values
    assert (fc.valid_time.values[:, 0] == fc.init_time.values + np.timedelta64(1, "D")).all()


def test_init_selection(winters, model):
    times = winters.time.values
    fc = forecast(winters, model, lead=2, init=[times[10], times[20]])
    assert fc.sizes["init_time"] == 2
    sl = forecast(winters, model, lead=1, init=slice(times[5], times[9]))
    assert sl.sizes["init_time"] == 5
    with pytest.raises(EsmscaleError, match="fewer than t_in"):
        forecast(winters, model, init=times[0])
    with pytest.raises(EsmscaleError, match="not in the time coordinate"):
        forecast(winters, model, init=np.datetime64("1990-01-01"))


def test_long_leads_roll_forward(winters, model):
    out = forecast(winters, model, lead=5, init=winters.time.values[10]).compute()
    assert out.shape == (1, 5, 12, 16)
    assert np.isfinite(out.values[..., 4:, 5:]).all()


@pytest.mark.filterwarnings("ignore:Singular matrix")  # pysteps, uniform motion, dask threads
@pytest.mark.parametrize("name", ["persistence", "climatology", "optical_flow"])
def test_baselines_same_interface(winters, name):
    m = fit(name, winters)
    fc = forecast(winters.chunk({"time": 30}), m, lead=2).compute()
    assert fc.dims == ("init_time", "lead_time", "lat", "lon")
    assert np.isnan(fc.values[..., :3, :4]).all()
    assert np.isfinite(fc.values[..., 4:, 5:]).all()
    if name == "persistence":
        np.testing.assert_array_equal(fc.values[:, 1], winters.values[: fc.sizes["init_time"]])


def test_opencv_flow_moves_a_blob():
    y, x = np.mgrid[0:32, 0:32]
    frames = np.stack([np.exp(-((y - 16) ** 2 + (x - 8 - 2 * t) ** 2) / 8.0) for t in range(4)])
    out = OpticalFlow(t_in=3, backend="opencv").predict(frames[None, :3, None], lead=1)
    peak = np.unravel_index(np.argmax(out[0, 0, 0]), (32, 32))
    assert abs(peak[1] - 14) <= 1  # the blob kept moving right by 2 cells per step


def test_registry_lists_names(winters):
    assert {"pastnet", "persistence", "climatology", "optical_flow", "simvp", "fno"} <= set(
        available_methods()
    )
    with pytest.raises(
        EsmscaleError,
        match=r"no forecast method named 'magic'; known forecast methods:.*persistence",
    ):
        fit("magic", winters)
    with pytest.raises(EsmscaleError, match="no such checkpoint"):
        forecast(winters, "/nonexistent/model")


class _Trend(Forecaster):
    """Linear extrapolation of the last two frames: goes negative where rain decreases."""

    name = "trend"
    t_in = 2

    def predict(self, history, lead, target_times=None):
        last, step = history[:, -1:], history[:, -1:] - history[:, -2:-1]
        return np.concatenate([last + (k + 1) * step for k in range(lead)], axis=1)


def test_precipitation_forecasts_are_nonnegative_and_record_clipping():
    from esmscale.errors import PhysicalCheckError
    from esmscale.prepare import compute_clipped

    times = djf_times(2)
    tas = field(times, nan_corner=False)
    pr = np.maximum(tas - 11.0, 0.0).rename("pr")  # intermittent "rain", many zeros
    pr.attrs = {"units": "mm day-1", "standard_name": "lwe_precipitation_rate"}
    net = train(pr, tiny_config(steps=2), progress=False)
    # the same network on an unnamed variable (no rule): its raw forecasts go negative
    signal = pr.rename("signal").copy()
    signal.attrs = {"units": "1"}  # no physical rule: nothing is clipped
    for model in (net, _Trend()):
        raw = forecast(signal, model, lead=2).compute()
        neg = float((raw.values < 0).mean())
        fc = forecast(pr, model, lead=2)
        assert "esmscale_clipped_fraction" not in fc.attrs
        out = compute_clipped(fc)
        assert out.values.min() >= 0.0
        np.testing.assert_array_equal(out.values, np.maximum(raw.values, 0.0))
        assert out.attrs["esmscale_clipped_fraction"] == pytest.approx(neg)
    assert neg > 0.05  # the trend extrapolation goes below zero where rain stops
    # the history is checked too
    bad = (pr - 3.0).assign_attrs(pr.attrs)
    with pytest.raises(PhysicalCheckError, match=r"'pr': .* are negative"):
        forecast(bad, net, lead=2)
    with pytest.raises(PhysicalCheckError, match=r"'pr': .* are negative"):
        train(bad, tiny_config(steps=2), progress=False)
    assert forecast(bad, net, lead=2, check="off").shape[1] == 2
