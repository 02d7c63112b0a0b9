import numpy as np
import pytest

from esmscale.errors import EsmscaleError
from esmscale.spectra import log_spectral_error, rapsd, wavenumbers


@pytest.mark.parametrize("shape", [(64, 64), (48, 80), (80, 48)])
def test_white_noise_is_flat(shape):
    rng = np.random.default_rng(1)
    s = 1.7
    k, p = rapsd(rng.normal(loc=3.0, scale=s, size=(60, *shape)))
    assert np.all(k > 0)
    assert np.all(k <= 0.5)
    # the lowest shells of a non-square grid hold only a couple of modes: noisier
    np.testing.assert_allclose(p[k >= 0.05], s**2, rtol=0.12)
    np.testing.assert_allclose(p, s**2, rtol=0.3)
    assert abs(p.mean() - s**2) < 0.03 * s**2


def test_white_noise_with_mask_is_flat():
    rng = np.random.default_rng(2)
    s = 0.8
    mask = rng.random((48, 64)) > 0.3
    k, p = rapsd(rng.normal(scale=s, size=(60, 48, 64)), mask=mask)
    np.testing.assert_allclose(p[k >= 0.05], s**2, rtol=0.12)
    assert abs(p.mean() - s**2) < 0.03 * s**2
    # NaN cells behave like masked cells
    x = rng.normal(scale=s, size=(60, 48, 64))
    x[:, ~mask] = np.nan
    _, p2 = rapsd(x)
    assert abs(p2.mean() - s**2) < 0.03 * s**2


def _power_law_field(rng, n_fields, shape, beta):
    h, w = shape
    ky = np.fft.fftfreq(h)[:, None]
    kx = np.fft.fftfreq(w)[None, :]
    kr = np.sqrt(kx**2 + ky**2)
    amp = np.zeros_like(kr)
    amp[kr > 0] = kr[kr > 0] ** (-beta / 2)
    z = rng.normal(size=(n_fields, h, w)) + 1j * rng.normal(size=(n_fields, h, w))
    return np.fft.ifft2(z * amp).real


@pytest.mark.parametrize("beta", [2.0, 3.0])
@pytest.mark.parametrize("shape", [(64, 64), (48, 80)])
def test_power_law_slope(beta, shape):
    rng = np.random.default_rng(int(beta * 10))
    k, p = rapsd(_power_law_field(rng, 30, shape, beta))
    sel = (k >= 0.03) & (k <= 0.45)
    slope = np.polyfit(np.log(k[sel]), np.log(p[sel]), 1)[0]
    assert abs(slope + beta) < 0.3, slope


@pytest.mark.parametrize("shape", [(8, 8), (48, 80), (33, 17)])
def test_wavenumbers_range(shape):
    k = wavenumbers(shape)
    assert np.all(k > 0)
    assert np.all(k <= 0.5)
    assert np.all(np.diff(k) > 0)
    kk, _ = rapsd(np.random.default_rng(0).normal(size=shape))
    assert set(kk) <= set(k)


def test_single_2d_field_works():
    k, p = rapsd(np.random.default_rng(0).normal(size=(16, 16)))
    assert k.shape == p.shape
    assert np.all(np.isfinite(p))


def test_errors():
    with pytest.raises(EsmscaleError, match="2-D"):
        rapsd(np.zeros(16))
    with pytest.raises(EsmscaleError, match="too small"):
        rapsd(np.zeros((3, 16)))
    with pytest.raises(EsmscaleError, match="no valid cell"):
        rapsd(np.ones((8, 8)), mask=np.zeros((8, 8), dtype=bool))
    with pytest.raises(EsmscaleError, match="no valid cell"):
        rapsd(np.full((2, 8, 8), np.nan))


def test_log_spectral_error_by_hand():
    k = np.array([0.1, 0.2, 0.3, 0.4])
    psd = np.array([5.0, 2.0, 0.5, 1.0])
    ref = np.array([1.0, 1.0, 1.0, 1.0])
    # |log10 2| + |log10 0.5| + |log10 1| over the three k >= 0.2
    expected = 2 * np.log10(2.0) / 3
    assert log_spectral_error(psd, ref, k, k_min=0.2) == pytest.approx(expected)
    assert log_spectral_error(ref, ref, k) == 0.0
    with pytest.raises(EsmscaleError, match="no wavenumber"):
        log_spectral_error(psd, ref, k, k_min=0.6)


def _block_mean(x, f):
    *lead, h, w = x.shape
    return x.reshape(*lead, h // f, f, w // f, f).mean(axis=(-3, -1))


def test_a_field_and_its_block_average_have_equal_large_scale_power():
    # issue 13: the coarse field's spectrum sat f**2 = 16x below the fine one at the largest
    # scales. With physical wavenumbers and power per unit wavenumber area they agree.
    rng = np.random.default_rng(7)
    fine = _power_law_field(rng, 40, (128, 128), 3.0)
    coarse = _block_mean(fine, 4)
    kf, pf = rapsd(fine, spacing=(0.25, 0.25))
    kc, pc = rapsd(coarse, spacing=(1.0, 1.0))
    np.testing.assert_array_equal(kc, kf[: kc.size])  # the same shells, in cycles per degree
    # the block mean's transfer function is > 0.95 in power below a quarter of the coarse
    # Nyquist wavenumber; aliasing of a k**-3 spectrum adds little there
    large = kc <= 0.5 / 4
    np.testing.assert_allclose(pc[large] / pf[: kc.size][large], 1.0, atol=0.05)
    # and it only attenuates (never amplifies by 16) up to the coarse Nyquist wavenumber
    ratio = pc / pf[: kc.size]
    assert np.all((ratio > 0.3) & (ratio < 1.1)), ratio


def test_spacing_scales_wavenumbers_and_power_and_is_checked():
    rng = np.random.default_rng(3)
    x = rng.normal(scale=1.5, size=(40, 32, 48))
    k1, p1 = rapsd(x)
    k2, p2 = rapsd(x, spacing=(0.5, 0.5))
    np.testing.assert_allclose(k2, 2 * k1)
    np.testing.assert_allclose(p2, 0.25 * p1)  # white noise flat at s**2 * dy * dx
    k3, p3 = rapsd(x, spacing=(0.5, 0.25))  # anisotropic cells: shells to min Nyquist
    assert k3.max() == pytest.approx(1.0)
    assert abs(p3[k3 > 0.1].mean() - 1.5**2 * 0.125) < 0.05 * 1.5**2 * 0.125
    np.testing.assert_allclose(wavenumbers((32, 48), (0.5, 0.25))[: k3.size], k3)
    with pytest.raises(EsmscaleError, match="spacing must be two positive"):
        rapsd(x, spacing=(0.0, 1.0))
