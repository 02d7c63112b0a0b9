import numpy as np
import pytest

from esmscale.datasets.moving_digits import moving_digits
from esmscale.datasets.navier_stokes import (
    gaussian_vorticity,
    navier_stokes,
    solve_vorticity,
)
from esmscale.forecast.data import segments


def test_mean_vorticity_conserved_with_forcing():
    rng = np.random.default_rng(0)
    w0 = gaussian_vorticity(2, 32, rng) + np.array([0.0, 0.7])[:, None, None]
    from esmscale.datasets.navier_stokes import fno_forcing

    w = solve_vorticity(w0, np.array([0.5, 1.0, 2.0]), 1e-3, fno_forcing(32))
    means = w.mean(axis=(2, 3))
    np.testing.assert_allclose(means, np.array([[0.0] * 3, [0.7] * 3]), atol=1e-6)
    assert not np.allclose(w[:, -1], w0)  # something happened


@pytest.mark.parametrize(("nu", "k"), [(1e-2, 1), (1e-3, 2)])
def test_taylor_green_decays_analytically(nu, k):
    n = 32
    x = np.arange(n) / n
    kk = 2 * np.pi * k
    w0 = 2 * kk * np.cos(kk * x)[:, None] * np.cos(kk * x)[None, :]
    times = np.array([0.5, 2.0])
    w = solve_vorticity(w0[None], times, viscosity=nu)
    for j, t in enumerate(times):
        exact = w0 * np.exp(-2 * nu * kk**2 * t)
        assert np.abs(w[0, j] - exact).max() < 1e-4 * np.abs(w0).max()


def test_navier_stokes_seeded_and_xarray():
    a = navier_stokes(n_samples=2, n_frames=3, size=16, seed=1)
    b = navier_stokes(n_samples=2, n_frames=3, size=16, seed=1)
    c = navier_stokes(n_samples=2, n_frames=3, size=16, seed=2)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    da = navier_stokes(n_samples=3, n_frames=4, size=16, as_xarray=True, viscosity=1e-4)
    assert da.dims == ("time", "y", "x")
    assert da.shape == (12, 16, 16)
    assert segments(da.time.values) == [(0, 4), (4, 8), (8, 12)]


def test_moving_digits():
    x = moving_digits(n_samples=3, n_frames=6, size=32, digit_size=10, seed=4)
    assert x.shape == (3, 6, 32, 32)
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert (x.reshape(18, -1).max(axis=1) > 0.5).all()  # digits stay in the frame
    assert not np.array_equal(x[:, 0], x[:, 5])  # they move
    assert np.array_equal(x, moving_digits(n_samples=3, n_frames=6, size=32, digit_size=10, seed=4))
    da = moving_digits(n_samples=2, n_frames=5, size=32, digit_size=10, as_xarray=True)
    assert segments(da.time.values) == [(0, 5), (5, 10)]
