import numpy as np
import pytest

from esmscale.downscaling.arrays import denoise_fine, downscale_array, noise_only, resolve_t_star
from esmscale.errors import EsmscaleError
from esmscale.prepare.interp import upsample_bilinear
from tests.models._mixin import tiny_model

MODEL = tiny_model(seed=0)


def _coarse(nt=2, h=6, w=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(5.0, 30.0, size=(nt, h, w)).astype(np.float32)


def test_shapes():
    out = downscale_array(MODEL, _coarse(), factor=2, t_star=0.3, members=3)
    assert out.shape == (3, 2, 12, 10)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    assert (out >= 0).all()
    out2 = downscale_array(MODEL, _coarse()[0], factor=3, t_star=0.3)
    assert out2.shape == (1, 1, 18, 15)


def test_default_factor_from_config():
    out = downscale_array(MODEL, _coarse(nt=1, h=3, w=4), t_star=0.3)
    assert out.shape == (1, 1, 3 * MODEL.config.factor, 4 * MODEL.config.factor)


def test_nan_cells_stay_nan_and_do_not_leak():
    coarse = _coarse(nt=2, h=8, w=8)
    coarse[0, 2, 3] = np.nan
    coarse[1, 5:7, 0:2] = np.nan
    factor = 2
    out = downscale_array(MODEL, coarse, factor=factor, t_star=0.5, members=2, steps=2)
    expected_nan = np.isnan(upsample_bilinear(coarse, factor))
    assert expected_nan.any()
    for m in range(out.shape[0]):
        np.testing.assert_array_equal(np.isnan(out[m]), expected_nan)


def test_seeds_differ_almost_everywhere():
    coarse = _coarse(nt=2, h=8, w=8)
    a = downscale_array(MODEL, coarse, factor=2, t_star=0.5, seed=5)
    b = downscale_array(MODEL, coarse, factor=2, t_star=0.5, seed=6)
    wet = (a > 0) | (b > 0)
    assert wet.mean() > 0.5
    assert np.mean(a[wet] != b[wet]) > 0.95


def test_members_differ():
    out = downscale_array(MODEL, _coarse(), factor=2, t_star=0.5, members=2)
    wet = (out[0] > 0) | (out[1] > 0)
    assert np.mean(out[0][wet] != out[1][wet]) > 0.95


def test_same_seed_reproducible():
    coarse = _coarse()
    coarse[0, 1, 1] = np.nan
    a = downscale_array(MODEL, coarse, factor=2, t_star=0.4, seed=3, members=2, steps=2)
    b = downscale_array(MODEL, coarse, factor=2, t_star=0.4, seed=3, members=2, steps=2)
    np.testing.assert_array_equal(a, b)


def test_time_index_sets_noise_identity():
    coarse = _coarse(nt=3)
    full = downscale_array(MODEL, coarse, factor=2, t_star=0.4, seed=1)
    part = downscale_array(
        MODEL, coarse[1:], factor=2, t_star=0.4, seed=1, time_index=np.array([1, 2])
    )
    np.testing.assert_array_equal(part, full[:, 1:])


def test_t_star_auto_without_calibration():
    assert MODEL.config.t_star is None
    with pytest.raises(EsmscaleError, match="calibrat") as info:
        downscale_array(MODEL, _coarse(), factor=2)
    assert "t_star" in str(info.value)


def test_t_star_auto_uses_calibrated_value():
    calibrated = tiny_model(seed=0, t_star=0.4)
    assert resolve_t_star(calibrated, "auto") == 0.4
    a = downscale_array(calibrated, _coarse(), factor=2, t_star="auto", seed=2)
    b = downscale_array(calibrated, _coarse(), factor=2, t_star=0.4, seed=2)
    np.testing.assert_array_equal(a, b)


def test_bad_t_star_string():
    with pytest.raises(EsmscaleError, match="'best'"):
        resolve_t_star(MODEL, "best")


def test_noise_only_differs_from_network():
    fine = upsample_bilinear(_coarse(), 2)
    net = denoise_fine(MODEL, fine, t_star=0.5, seed=0)
    ctrl = noise_only(MODEL, fine, t_star=0.5, seed=0)
    assert ctrl.shape == net.shape
    assert np.isfinite(ctrl).all()
    assert np.mean(ctrl != net) > 0.9
    np.testing.assert_array_equal(
        ctrl, denoise_fine(MODEL, fine, t_star=0.5, seed=0, network=False)
    )


def test_input_errors():
    with pytest.raises(EsmscaleError, match=r"\(time, y, x\)"):
        downscale_array(MODEL, np.ones((1, 2, 4, 4)), factor=2, t_star=0.3)
    with pytest.raises(EsmscaleError, match="members"):
        downscale_array(MODEL, _coarse(), factor=2, t_star=0.3, members=0)
    with pytest.raises(EsmscaleError, match="time_index"):
        downscale_array(MODEL, _coarse(), factor=2, t_star=0.3, time_index=np.arange(5))
    with pytest.raises(EsmscaleError, match="t_star"):
        downscale_array(MODEL, _coarse(), factor=2, t_star=500.0)


def test_impossible_coarse_input_is_refused_with_count_and_index():
    from esmscale.errors import EsmscaleWarning, PhysicalCheckError

    coarse = _coarse(nt=3) - 30.0  # all negative "precipitation" (the model's variable is pr)
    with pytest.raises(PhysicalCheckError) as err:
        downscale_array(MODEL, coarse, factor=2, t_star=0.3)
    assert "'pr': 90 of 90 values (100.0 %) are negative" in str(err.value)
    assert "the first at time index 0, y index 0, x index 0" in str(err.value)
    with pytest.warns(EsmscaleWarning, match="negative beyond the tolerance"):
        warned = downscale_array(MODEL, coarse, factor=2, t_star=0.3, check="warn")
    off = downscale_array(MODEL, coarse, factor=2, t_star=0.3, check="off")
    np.testing.assert_array_equal(warned, off)
    assert off.min() >= 0.0
    with pytest.raises(PhysicalCheckError, match="infinite"):
        downscale_array(MODEL, np.where(coarse > -9, np.inf, 1.0), factor=2, t_star=0.3)


def test_standard_transform_precipitation_output_is_clipped():
    from esmscale.models.transforms import DataTransform

    model = tiny_model(seed=0, transform=DataTransform(kind="standard", mean=1.0, std=3.0))
    coarse = _coarse(nt=2) * 0.01  # nearly dry: an untrained network gives negatives
    raw = denoise_fine(model, upsample_bilinear(coarse, 2), t_star=0.3)
    assert (raw < 0).any()
    out = downscale_array(model, coarse, factor=2, t_star=0.3)
    assert out.min() >= 0.0
    np.testing.assert_array_equal(out, np.maximum(raw, 0.0))
