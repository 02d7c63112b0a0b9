import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from esmscale.errors import EsmscaleError
from esmscale.models.transforms import DataTransform, fit_transform

LOG = DataTransform(kind="log", units="mm day-1", eps=0.5, log_max=5.0, dry_threshold=0.05)
STD = DataTransform(kind="standard", units="K", mean=280.0, std=12.0)


@given(arrays(np.float64, st.integers(1, 20), elements=st.floats(min_value=0.05, max_value=500.0)))
def test_log_round_trip(x):
    back = LOG.inverse(LOG.forward(x))
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, x, rtol=1e-5, atol=1e-6)


@given(arrays(np.float64, st.integers(1, 20), elements=st.floats(min_value=150.0, max_value=350.0)))
def test_standard_round_trip(x):
    np.testing.assert_allclose(STD.inverse(STD.forward(x)), x, rtol=1e-6)


def test_zero_maps_to_minus_one_and_below_threshold_is_dry():
    y = LOG.forward(np.array([0.0, -3.0]))
    np.testing.assert_array_equal(y, [-1.0, -1.0])
    assert LOG.fill_value == -1.0
    assert LOG.inverse(np.array([-1.0]))[0] == 0.0
    # a small positive value below the dry threshold is set to exactly 0
    assert LOG.inverse(LOG.forward(np.array([0.01])))[0] == 0.0


@pytest.mark.parametrize("tr", [LOG, STD])
def test_nan_stays_nan(tr):
    x = np.array([np.nan, 1.0, np.nan])
    y = tr.forward(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(y), [True, False, True])
    np.testing.assert_array_equal(np.isnan(tr.inverse(y)), [True, False, True])


def test_fit_transform_log_maps_max_to_one():
    tr = fit_transform(np.array([0.0, 2.0, np.nan, 30.0]), kind="log", units="mm day-1")
    assert tr.kind == "log"
    np.testing.assert_allclose(tr.forward(np.array([0.0, 30.0])), [-1.0, 1.0], atol=1e-6)


def test_fit_transform_standard():
    x = np.array([270.0, 280.0, 290.0, np.nan])
    tr = fit_transform(x, kind="standard", units="K")
    np.testing.assert_allclose([tr.mean, tr.std], [280.0, np.std([270.0, 280.0, 290.0])])


def test_fit_transform_all_nan():
    with pytest.raises(EsmscaleError, match="all NaN"):
        fit_transform(np.full(5, np.nan), kind="log", units="mm day-1")


def test_fit_transform_all_dry():
    with pytest.raises(EsmscaleError, match="all dry"):
        fit_transform(np.zeros(10), kind="log", units="mm day-1")


def test_fit_transform_negative_for_log():
    with pytest.raises(EsmscaleError, match="non-negative"):
        fit_transform(np.array([1.0, -0.5]), kind="log", units="mm day-1")


def test_fit_transform_constant_for_standard():
    with pytest.raises(EsmscaleError, match="constant"):
        fit_transform(np.full(7, 3.0), kind="standard", units="K")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "sqrt"},
        {"kind": "log", "eps": 0.0},
        {"kind": "log", "log_max": 0.0},
        {"kind": "standard", "std": 0.0},
    ],
)
def test_invalid_constructor(kwargs):
    with pytest.raises(EsmscaleError):
        DataTransform(**kwargs)


@pytest.mark.parametrize("tr", [LOG, STD])
def test_dict_round_trip(tr):
    d = tr.to_dict()
    assert DataTransform.from_dict(d) == tr
    import json

    assert DataTransform.from_dict(json.loads(json.dumps(d))) == tr


def test_from_dict_unknown_keys():
    d = {**LOG.to_dict(), "scale": 2.0, "bogus": 1}
    with pytest.raises(EsmscaleError, match=r"\['bogus', 'scale'\]"):
        DataTransform.from_dict(d)
