"""The member-wise large-scale restore and its spread (esmscale.downscaling.restore)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esmscale import ConsistencyModel, EsmscaleError
from esmscale.datasets import synthetic_esm, synthetic_precip
from esmscale.downscaling.pipeline import downscale
from esmscale.downscaling.restore import lowpass, restore_large_scales, smooth_perturbation

KW = {"tile": 32, "halo": 8, "members": 2, "seed": 3}


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return ConsistencyModel.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def esm():
    return synthetic_esm(synthetic_precip(48, 80, 4, seed=1))


def test_restore_does_not_depend_on_chunks(esm, model):
    kw = {**KW, "restore": 3.0, "spread": 0.3}
    whole = downscale(esm, model, **kw).pr.values
    parts = downscale(esm.chunk(time=2), model, chunks={"lat": 16, "lon": 24}, **kw).pr.values
    np.testing.assert_array_equal(parts, whole)


def test_restore_keeps_the_inputs_large_scales(esm, model):
    plain = downscale(esm, model, **KW).pr.values
    kept = downscale(esm, model, restore=3.0, **KW).pr.values
    fine = esm.esm.downscale(method="bilinear").pr.values
    assert np.isfinite(kept).all() and (kept >= 0).all()

    def gap(x):  # how far each member's large scales are from the input's
        return float(np.nanmean(np.abs(lowpass(x, 3.0) - lowpass(fine[None], 3.0))))

    assert gap(kept) < 0.2 * gap(plain)
    # the fine scales stay the network's: members still differ
    assert float(np.abs(kept[0] - kept[1]).mean()) > 0.05 * float(np.abs(kept).mean())


def test_spread_perturbs_members_around_the_restored_mean(esm, model):
    kept = downscale(esm, model, restore=3.0, **KW).pr.values
    wide = downscale(esm, model, restore=3.0, spread=0.4, **KW).pr.values
    sd = lambda x: float(lowpass(x, 3.0).std(axis=0).mean())  # noqa: E731
    assert sd(wide) > 2 * sd(kept)
    m = float(wide.mean()) / float(kept.mean())
    assert 0.7 < m < 1.3  # mean-one in expectation


def test_temperature_is_shifted_not_scaled():
    ref = np.full((1, 16, 16), 280.0)
    out = ref + np.random.default_rng(0).normal(size=ref.shape) - 3.0
    r = restore_large_scales(out, ref, 4.0, multiplicative=False)
    assert abs(float(r.mean()) - 280.0) < 0.2


def test_bad_options_are_errors(esm, model):
    with pytest.raises(EsmscaleError, match=r"spread=0\.3 must be >= 0 and needs the restore"):
        downscale(esm, model, spread=0.3, **KW)
    with pytest.raises(EsmscaleError, match=r"restore=-1\.0 must be a positive length"):
        downscale(esm, model, restore=-1.0, **KW)
    with pytest.raises(EsmscaleError, match="same grid"):
        restore_large_scales(np.ones((1, 4, 4)), np.ones((1, 4, 5)), 1.0)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31), st.floats(0.5, 4.0), st.integers(8, 24), st.integers(8, 24))
def test_lowpass_properties(seed, sigma, ny, nx):
    """NaN exactly where the input is NaN; a constant stays constant; values stay in range."""
    rng = np.random.default_rng(seed)
    x = rng.gamma(1.0, 2.0, size=(2, ny, nx))
    x[rng.random(x.shape) < 0.2] = np.nan
    y = lowpass(x, sigma)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(x))
    assert np.nanmin(y) >= np.nanmin(x) - 1e-9 and np.nanmax(y) <= np.nanmax(x) + 1e-9
    c = np.where(np.isnan(x), np.nan, 5.0)
    np.testing.assert_allclose(lowpass(c, sigma)[~np.isnan(c)], 5.0)
    z = smooth_perturbation((ny, nx), sigma, (seed,))
    np.testing.assert_array_equal(z, smooth_perturbation((ny, nx), sigma, (seed,)))


def test_calibrate_spread_picks_the_ratio_nearest_one(esm, model):
    from esmscale.downscaling.calibration import calibrate_spread

    obs = synthetic_precip(48, 80, 4, seed=1).pr
    a, scores = calibrate_spread(
        esm, obs, model, restore=3.0, amplitudes=(0.0, 0.8), members=3, tile=32, halo=8
    )
    assert list(scores)[:2] == [0.0, 0.8] and len(scores) <= 3  # a refined amplitude may follow
    ssr = {k: v["spread_skill"] for k, v in scores.items()}
    assert ssr[0.8] > ssr[0.0]  # the perturbation adds spread
    assert a == min(ssr, key=lambda k: abs(ssr[k] - 1.0))
    with pytest.raises(EsmscaleError, match="at least 2 members"):
        calibrate_spread(esm, obs, model, restore=3.0, members=1)
