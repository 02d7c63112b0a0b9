import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from esmscale.errors import EsmscaleError
from esmscale.prepare.units import convert, quantity, to_canonical

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)

PRECIP_UNITS = ["kg m-2 s-1", "mm s-1", "m s-1", "mm day-1", "mm/day", "mm d-1", "m day-1"]
TEMP_UNITS = ["K", "degC", "kelvin", "celsius"]


def test_kg_m2_s_to_mm_day_is_times_86400():
    x = np.array([0.0, 1.0, 2.5e-5, 1e-3])
    np.testing.assert_allclose(convert(x, "kg m-2 s-1", "mm day-1", "pr"), x * 86400.0)


def test_m_day_to_mm_day_is_times_1000():
    x = np.array([0.0, 0.001, 0.25])
    np.testing.assert_allclose(convert(x, "m day-1", "mm day-1", "pr"), x * 1000.0)


def test_celsius_kelvin():
    np.testing.assert_allclose(
        convert(np.array([0.0, -273.15, 20.0]), "degC", "K", "tas"), [273.15, 0.0, 293.15]
    )
    np.testing.assert_allclose(
        convert(np.array([273.15, 300.0]), "K", "degC", "tas"), [0.0, 26.85], atol=1e-12
    )


def test_identity_returns_values_unchanged():
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(convert(x, "mm day-1", "mm/day", "pr"), x)


def test_unit_spelling_is_normalised():
    np.testing.assert_allclose(convert(np.array(1.0), "  KG  M-2   S-1 ", "mm day-1"), 86400.0)
    assert quantity("DEGC") == "temperature"
    assert quantity("kg m-2 s-1") == "precipitation"


def test_to_canonical():
    np.testing.assert_allclose(to_canonical(np.array(1.0), "mm s-1"), 86400.0)
    np.testing.assert_allclose(to_canonical(np.array(1.0), "degC"), 274.15)


@given(finite, st.sampled_from(PRECIP_UNITS), st.sampled_from(PRECIP_UNITS))
def test_precip_round_trip(v, a, b):
    x = np.array([v])
    back = convert(convert(x, a, b, "pr"), b, a, "pr")
    np.testing.assert_allclose(back, x, rtol=1e-12, atol=1e-9)


@given(finite, st.sampled_from(TEMP_UNITS), st.sampled_from(TEMP_UNITS))
def test_temperature_round_trip(v, a, b):
    x = np.array([v])
    back = convert(convert(x, a, b, "tas"), b, a, "tas")
    np.testing.assert_allclose(back, x, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("units", ["furlongs per fortnight", "", None])
def test_unknown_or_missing_units_name_the_variable(units):
    with pytest.raises(EsmscaleError, match="my_precip") as info:
        convert(np.array([1.0]), units, "mm day-1", "my_precip")
    if units is None or units == "":
        assert "no 'units' attribute" in str(info.value)
    else:
        assert "unknown" in str(info.value)
    with pytest.raises(EsmscaleError, match="my_precip"):
        quantity(units, "my_precip")


def test_unknown_destination_units():
    with pytest.raises(EsmscaleError, match="pr"):
        convert(np.array([1.0]), "mm day-1", "inches", "pr")


def test_precipitation_to_temperature_refused():
    with pytest.raises(EsmscaleError, match="cannot convert precipitation") as info:
        convert(np.array([1.0]), "kg m-2 s-1", "K", "pr")
    assert "'pr'" in str(info.value)
    with pytest.raises(EsmscaleError, match="cannot convert temperature"):
        convert(np.array([1.0]), "degC", "mm day-1", "tas")


def test_linear_factors_and_convert_agree_for_every_pair():
    import itertools

    from esmscale.prepare.units import _UNITS, linear_factors

    values = np.array([0.0, 1.5, -3.25, 280.0])
    for src, dst in itertools.product(_UNITS, _UNITS):
        if _UNITS[src][0] != _UNITS[dst][0]:
            with pytest.raises(EsmscaleError, match="cannot convert"):
                linear_factors(src, dst, "x")
            continue
        scale, offset = linear_factors(src, dst, "x")
        np.testing.assert_array_equal(convert(values, src, dst), values * scale + offset)
    assert linear_factors("degC", "K") == (1.0, 273.15)  # exact, not 274.15 - 273.15
    assert linear_factors("K", "degC") == (1.0, -273.15)


def test_old_module_is_a_deprecated_alias():
    import importlib
    import sys

    from esmscale.prepare import units

    sys.modules.pop("esmscale.units", None)
    with pytest.warns(DeprecationWarning, match="esmscale.prepare.units"):
        old = importlib.import_module("esmscale.units")
    for name in ("convert", "linear_factors", "quantity", "to_canonical"):
        assert getattr(old, name) is getattr(units, name)
