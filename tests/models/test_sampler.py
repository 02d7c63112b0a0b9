import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from esmscale.errors import EsmscaleError
from esmscale.models.sampler import (
    SAMPLERS,
    bridge_sample,
    consistency_sample,
    field_noise,
    multistep_times,
    noise_only_sample,
    ode_sample,
)
from tests.models._mixin import tiny_model

MODEL = tiny_model(seed=0)


def _fields(n, h=8, w=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, size=(n, h, w)).astype(np.float32)


def _noise(steps, n, h=8, w=8):
    return np.stack(
        [np.stack([field_noise(7, 0, t, (h, w), step=s) for t in range(n)]) for s in range(steps)]
    )


# field_noise ---------------------------------------------------------------------------------
def test_field_noise_deterministic_and_float32():
    a = field_noise(3, 1, 2, (8, 12), tile=(1, 2), step=1)
    b = field_noise(3, 1, 2, (8, 12), tile=(1, 2), step=1)
    assert a.dtype == np.float32
    assert a.shape == (8, 12)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "change",
    [
        {"seed": 1},
        {"member": 1},
        {"time_index": 1},
        {"tile": (0, 1)},
        {"tile": (1, 0)},
        {"step": 1},
    ],
)
def test_field_noise_differs(change):
    base = {"seed": 0, "member": 0, "time_index": 0, "tile": (0, 0), "step": 0}
    a = field_noise(
        base["seed"],
        base["member"],
        base["time_index"],
        (16, 16),
        tile=base["tile"],
        step=base["step"],
    )
    c = {**base, **change}
    b = field_noise(
        c["seed"], c["member"], c["time_index"], (16, 16), tile=c["tile"], step=c["step"]
    )
    assert np.mean(a != b) > 0.99


def test_field_noise_keys_not_confused():
    # swapping identity components must not give the same noise
    a = field_noise(0, 1, 2, (16, 16))
    b = field_noise(0, 2, 1, (16, 16))
    c = field_noise(0, 0, 0, (16, 16), tile=(1, 2))
    assert not np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_field_noise_is_standard_normal():
    z = field_noise(11, 0, 0, (400, 500)).astype(np.float64)
    n = z.size
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / n)
    assert abs(np.mean(z**3)) < 5 * np.sqrt(15 / n)
    assert abs(np.mean(z**4) - 3) < 5 * np.sqrt(96 / n)


def test_field_noise_negative_indices():
    with pytest.raises(EsmscaleError, match="non-negative"):
        field_noise(-1, 0, 0, (4, 4))
    with pytest.raises(EsmscaleError, match="non-negative"):
        field_noise(0, 0, 0, (4, 4), tile=(-1, 0))


# multistep_times -----------------------------------------------------------------------------
@given(t_star=st.floats(0.01, 80.0), steps=st.integers(1, 20))
def test_multistep_times_properties(t_star, steps):
    tmin = 0.002
    ts = multistep_times(t_star, steps, tmin)
    assert len(ts) == steps
    assert all(isinstance(t, float) for t in ts)
    assert ts[0] == pytest.approx(t_star, rel=1e-12)
    assert all(a > b for a, b in itertools.pairwise(ts))
    assert ts[-1] > tmin


def test_multistep_times_needs_a_step():
    with pytest.raises(EsmscaleError, match="at least one"):
        multistep_times(0.5, 0, 0.002)


# consistency_sample --------------------------------------------------------------------------
def test_batch_composition_independence():
    x = _fields(5)
    noise = _noise(2, 5)
    together = consistency_sample(MODEL, x, 0.5, noise, batch_size=4)
    assert together.shape == x.shape
    assert together.dtype == np.float32
    for i in (0, 3, 4):  # first and last of a full batch, first of the padded batch
        alone = consistency_sample(MODEL, x[i : i + 1], 0.5, noise[:, i : i + 1], batch_size=4)
        np.testing.assert_array_equal(alone[0], together[i])
    # a different grouping of the same fields
    rev = consistency_sample(MODEL, x[::-1], 0.5, noise[:, ::-1], batch_size=4)
    np.testing.assert_array_equal(rev[::-1], together)


def test_consistency_sample_reproducible_and_finite():
    x, noise = _fields(3), _noise(1, 3)
    a = consistency_sample(MODEL, x, 0.3, noise)
    b = consistency_sample(MODEL, x, 0.3, noise)
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).all()


def test_two_steps_differ_from_one():
    x, noise = _fields(2), _noise(2, 2)
    one = consistency_sample(MODEL, x, 0.5, noise[:1])
    two = consistency_sample(MODEL, x, 0.5, noise)
    assert np.isfinite(two).all()
    assert np.mean(one != two) > 0.9
    np.testing.assert_array_equal(one, consistency_sample(MODEL, x, 0.5, noise[:1]))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_input_error(bad):
    x = _fields(2)
    x[1, 3, 4] = bad
    with pytest.raises(EsmscaleError, match="NaN"):
        consistency_sample(MODEL, x, 0.5, _noise(1, 2))


@pytest.mark.parametrize("t_star", [0.0, 0.002, 0.001, 80.5, -1.0, float("nan")])
def test_t_star_out_of_range(t_star):
    with pytest.raises(EsmscaleError, match="t_star"):
        consistency_sample(MODEL, _fields(1), t_star, _noise(1, 1))


def test_t_star_at_sigma_max_allowed():
    out = consistency_sample(MODEL, _fields(1), 80.0, _noise(1, 1))
    assert np.isfinite(out).all()


def test_shape_errors():
    with pytest.raises(EsmscaleError, match=r"\(n, H, W\)"):
        consistency_sample(MODEL, _fields(1)[0], 0.5, _noise(1, 1))
    with pytest.raises(EsmscaleError, match="noise shape"):
        consistency_sample(MODEL, _fields(2), 0.5, _noise(1, 3))


# ode_sample ----------------------------------------------------------------------------------
def test_ode_sample_runs():
    x, noise = _fields(2), _noise(1, 2)
    y = ode_sample(MODEL, x, 0.5, noise, n_steps=3)
    assert y.shape == x.shape
    assert np.isfinite(y).all()
    np.testing.assert_array_equal(y, ode_sample(MODEL, x, 0.5, noise, n_steps=3))
    assert not np.array_equal(y, ode_sample(MODEL, x, 0.5, noise, n_steps=4))


def test_ode_sample_explicit_times_and_errors():
    x, noise = _fields(1), _noise(1, 1)
    y = ode_sample(MODEL, x, 0.5, noise, times=[0.5, 0.1, 0.002])
    assert np.isfinite(y).all()
    with pytest.raises(EsmscaleError, match="NaN"):
        ode_sample(MODEL, np.full_like(x, np.nan), 0.5, noise, n_steps=2)


# --------------------------------------------------------------------------- sampler registry
def test_sampler_registry_holds_the_four_samplers():
    assert SAMPLERS.available() == ["bridge", "consistency", "multistep", "noise-only"]
    assert SAMPLERS.get("consistency").run is consistency_sample
    assert SAMPLERS.get("multistep").run is consistency_sample
    assert SAMPLERS.get("bridge").run is bridge_sample
    assert SAMPLERS.get("noise-only").run is noise_only_sample
    assert [SAMPLERS.get(n).draws(3) for n in ("bridge", "consistency", "noise-only")] == [4, 3, 3]


def test_unknown_sampler_lists_the_known_ones():
    with pytest.raises(EsmscaleError, match=r"no sampler named 'ddim'; known samplers: \['bridge'"):
        SAMPLERS.get("ddim")


def test_sampler_checks_the_model_objective():
    SAMPLERS.get("consistency").check_model(MODEL)
    SAMPLERS.get("noise-only").check_model(MODEL)  # any model: the network is not called
    with pytest.raises(EsmscaleError, match=r"objective='diffusion'.*objective='consistency'"):
        SAMPLERS.get("bridge").check_model(MODEL)


def test_noise_only_is_input_plus_scaled_first_draw():
    x, noise = _fields(3), _noise(2, 3)
    out = noise_only_sample(MODEL, x, 0.4, noise)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x + np.float32(0.4) * noise[0])
