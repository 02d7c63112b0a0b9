"""The per-cell quantile-delta step after the network (esmscale.downscaling.change)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from esmscale import EsmscaleError
from esmscale.downscaling.change import keep_change, map_to_quantiles

TAUS = (np.arange(20) + 0.5) / 20


def _field(x: np.ndarray, units: str | None = "mm day-1", members: int = 0) -> xr.DataArray:
    """``x`` of shape (time, lat, lon), or (member, time, lat, lon) with ``members``."""
    dims = ("member", "time", "lat", "lon") if members else ("time", "lat", "lon")
    nt = x.shape[-3]
    t = xr.date_range("2000-01-01", periods=nt, freq="D", use_cftime=True)
    attrs = {"units": units} if units else {}
    return xr.DataArray(x, dims=dims, coords={"time": t}, attrs=attrs, name="pr")


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    mult=st.booleans(),
    scale=st.floats(0.5, 2.0),
)
def test_the_map_keeps_ranks_and_hits_the_nodes(seed, mult, scale):
    rng = np.random.default_rng(seed)
    x = rng.gamma(0.4, 5.0, size=(3, 300)) * (rng.random((3, 300)) > 0.4)
    q_from = np.quantile(x, TAUS, axis=1).T
    q_to = q_from * scale if mult else q_from + scale
    y = map_to_quantiles(x, q_from, q_to, multiplicative=mult)
    # monotone per cell: the order of days is kept (ties may merge, never swap)
    for c in range(3):
        o = np.argsort(x[c], kind="stable")
        assert (np.diff(y[c, o]) >= -1e-9).all()
    if mult:
        # one factor wherever the nodes around a value are wet; zeros stay zero
        wet = x >= np.where(q_from > 0, q_from, np.inf).min(axis=1, keepdims=True)
        np.testing.assert_allclose(y[wet], x[wet] * scale, rtol=1e-9, atol=1e-9)
        assert (y[x == 0] == 0).all() and (y >= 0).all()
    else:
        np.testing.assert_allclose(y, x + scale, rtol=1e-9, atol=1e-9)
    # the identity map is the identity
    np.testing.assert_allclose(
        map_to_quantiles(x, q_from, q_from, multiplicative=mult), x, rtol=1e-9, atol=1e-9
    )


def test_keep_change_gives_each_cell_the_esms_quantile_change():
    rng = np.random.default_rng(1)
    n = 600
    e_past = rng.gamma(0.5, 4.0, size=(n, 2, 3))
    # the ESM: heavy days +40 %, the rest unchanged; per cell a different base
    e_fut = rng.gamma(0.5, 4.0, size=(n, 2, 3))
    e_fut = np.where(e_fut > 5.0, e_fut * 1.4, e_fut)
    past = rng.gamma(0.6, 6.0, size=(2, n, 2, 3))  # downscaled: two members, wetter
    fut = rng.gamma(0.6, 6.0, size=(2, n, 2, 3))  # the network lost the change
    kept = keep_change(
        _field(fut, members=2), _field(past, members=2), _field(e_fut), _field(e_past)
    )
    assert kept.dims == ("member", "time", "lat", "lon") and kept.attrs["units"] == "mm day-1"
    q = (np.arange(100) + 0.5) / 100

    def quant(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        return np.quantile(a, q, axis=axes)

    want = (
        quant(past, (0, 1))
        * (quant(e_fut, (0,)) + 0.01 * e_past.mean(0))
        / (quant(e_past, (0,)) + 0.01 * e_past.mean(0))
    )
    got = quant(kept.values, (0, 1))
    top = q >= 0.9  # the heavy end, where the change is
    np.testing.assert_allclose(got[top], want[top], rtol=0.03)
    # the order of days and members is the network's (ties may merge, never swap)
    order = np.argsort(fut[:, :, 0, 0].ravel())
    assert (np.diff(kept.values[:, :, 0, 0].ravel()[order]) >= 0).all()


def test_keep_change_is_lazy_and_equal_to_eager_and_keeps_nan_cells():
    rng = np.random.default_rng(2)
    x = rng.gamma(0.5, 4.0, size=(4, 200, 3, 2))
    x[:, :, 0, 0] = np.nan  # a sea cell
    e = rng.gamma(0.5, 4.0, size=(200, 3, 2))
    e[:, 0, 0] = np.nan
    args = (_field(x * 0.9, members=4), _field(x, members=4), _field(e * 1.2), _field(e))
    eager = keep_change(*args)
    lazy = keep_change(*(a.chunk({"time": 50, "lat": 2}) for a in args))
    assert lazy.chunks is not None
    np.testing.assert_array_equal(lazy.values, eager.values)
    assert np.isnan(eager.values[:, :, 0, 0]).all() and np.isfinite(eager.values[:, :, 1:]).all()


def test_temperature_changes_are_shifts_in_the_outputs_units():
    rng = np.random.default_rng(3)
    e = rng.normal(280.0, 3.0, size=(300, 1, 2))
    past = rng.normal(10.0, 4.0, size=(300, 1, 2))
    kept = keep_change(
        _field(past, "degC"), _field(past, "degC"), _field(e + 2.0, "K"), _field(e, "K")
    )
    assert abs(float((kept - _field(past, "degC")).mean()) - 2.0) < 1e-6


def test_bad_input_is_named():
    x = _field(np.ones((10, 2, 2)))
    with pytest.raises(EsmscaleError, match=r"but esm_future has .*regrid"):
        keep_change(x, x, _field(np.ones((10, 3, 2))), x)
    with pytest.raises(EsmscaleError, match=r"no 'units' attribute.*kind='\*'"):
        keep_change(_field(np.ones((10, 2, 2)), None), _field(np.ones((10, 2, 2)), None), x, x)
    with pytest.raises(EsmscaleError, match="future is in 'mm day-1' but past in 'kg m-2 s-1'"):
        keep_change(x, _field(np.ones((10, 2, 2)), "kg m-2 s-1"), x, x)
    with pytest.raises(EsmscaleError, match="'time' dimension"):
        keep_change(x.isel(time=0), x, x, x)
