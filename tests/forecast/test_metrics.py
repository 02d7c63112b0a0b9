"""Forecast metrics against values computed by hand."""

import doctest

import numpy as np
import pytest

from esmscale.forecast import metrics as M


def test_rmse_mae_ignore_nan():
    f = np.array([1.0, 3.0, np.nan, 2.0])
    t = np.array([0.0, 0.0, 5.0, np.nan])
    assert M.rmse(f, t) == pytest.approx(np.sqrt((1 + 9) / 2))
    assert M.mae(f, t) == pytest.approx(2.0)


def test_relative_l2_and_psnr():
    t = np.arange(1.0, 9.0).reshape(2, 2, 2)
    assert M.relative_l2(2 * t, t) == pytest.approx(1.0)
    assert M.relative_l2(t, t) == 0.0
    # RMSE 0.1 on a range of 1 -> 20 dB
    assert M.psnr(t + 0.1, t, data_range=1.0) == pytest.approx(20.0)


def test_ssim_of_constant_fields_by_hand():
    a, b, rng = 0.5, 0.25, 1.0
    f, t = np.full((1, 8, 8), a), np.full((1, 8, 8), b)
    c1 = (0.01 * rng) ** 2
    # constant fields: no variance or covariance, so SSIM is the luminance term alone
    assert M.ssim(f, t, rng) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1))
    assert M.ssim(t, t, rng) == pytest.approx(1.0)


def test_csi_by_hand():
    f = np.array([1.0, 0.0, 1.0, 0.0, np.nan])
    t = np.array([1.0, 1.0, 0.0, 0.0, 1.0])
    # hits 1, misses 1, false alarms 1; the NaN cell is left out
    assert M.csi(f, t, 0.5) == pytest.approx(1 / 3)
    assert np.isnan(M.csi(np.zeros(3), np.zeros(3), 1.0))  # no events at all


def test_fss_rewards_near_misses_with_a_larger_window():
    f = np.array([[[1.0, 0.0], [0.0, 0.0]]])
    t = np.array([[[0.0, 1.0], [0.0, 0.0]]])  # the same event, one cell over
    # window 1: point-wise, mse 2/4 over reference 1/4 + 1/4 -> 0
    assert M.fss(f, t, 0.5, window=1) == pytest.approx(0.0)
    # window 3 covers the whole 2x2 grid from every cell: both fractions are 1/4 -> 1
    assert M.fss(f, t, 0.5, window=3) == pytest.approx(1.0)
    assert M.fss(t, t, 0.5, window=1) == pytest.approx(1.0)


def test_docstring_examples():
    result = doctest.testmod(M, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0
