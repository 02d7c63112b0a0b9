from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from esmscale import ConsistencyConfig, ConsistencyModel, calibrate_noise_level, train
from esmscale.datasets import coarsen_block, synthetic_precip
from esmscale.downscaling.calibration import spectral_t_star
from esmscale.errors import EsmscaleError
from esmscale.models.transforms import fit_transform
from esmscale.prepare import upsample_bilinear


@pytest.fixture(scope="module")
def world():
    return synthetic_precip(64, 64, 30, seed=11)["pr"].values


@pytest.fixture(scope="module")
def untrained(world):
    tr = fit_transform(world, kind="log", units="mm day-1")
    return ConsistencyModel(
        ConsistencyConfig(block_out_channels=(8, 16), patch_size=16, transform=tr)
    )


def test_crossing_rule_hand_example():
    k = np.array([0.1, 0.2, 0.3, 0.4])
    obs = np.array([4.0, 1.0, 0.25, 0.0625])
    esm = np.array([6.0, 1.1, 0.01, 1e-4])
    assert spectral_t_star(k, obs, esm) == (0.3, 0.5)
    # identical spectra: no scale needs regenerating -> highest wavenumber
    assert spectral_t_star(k, obs, obs)[0] == 0.4


def test_t_star_grows_as_esm_gets_smoother(world, untrained):
    coarse = coarsen_block(world, 4)
    t_stars = []
    for sigma in (0.0, 1.0, 2.0, 4.0):
        smooth = gaussian_filter(coarse, sigma=(0, sigma, sigma), mode="nearest")
        cal = calibrate_noise_level(world, upsample_bilinear(smooth, 4), untrained)
        t_stars.append(cal.t_star_spectral)
    assert t_stars == sorted(t_stars)
    assert t_stars[-1] > t_stars[0]


def test_spectra_are_returned_in_transformed_space(world, untrained):
    cal = calibrate_noise_level(world, upsample_bilinear(coarsen_block(world, 4), 4), untrained)
    assert cal.k.shape == cal.psd_obs.shape == cal.psd_esm.shape
    assert 0 < cal.k_star <= 0.5
    assert cal.t_star == cal.t_star_spectral
    assert cal.t_star_crps is None
    # the interpolated ESM lacks small-scale power
    assert cal.psd_esm[-1] < cal.psd_obs[-1]


def test_perfect_model_search(world, tiny_train_config):
    obs = synthetic_precip(32, 32, 40, seed=3)
    model = train(obs, tiny_train_config, progress=False)
    held = world[:4, :32, :32]
    grid = (0.1, 0.3, 0.6)
    cal = calibrate_noise_level(
        obs,
        upsample_bilinear(coarsen_block(obs["pr"].values, 4), 4),
        model,
        held_out=held,
        t_grid=grid,
        members=2,
        min_corr=0.0,
    )
    assert cal.t_grid.tolist() == list(grid)
    assert np.isfinite(cal.crps).all()
    assert cal.t_star == cal.t_star_crps
    assert cal.t_star == grid[int(np.argmin(cal.crps))]
    assert "perfect-model" in cal.summary()


def test_grid_mismatch_error(world, untrained):
    with pytest.raises(EsmscaleError, match="interpolate"):
        calibrate_noise_level(world, world[:, :32, :32], untrained)


def test_calibrate_on_pairs_picks_the_lowest_crps(tiny_train_config):
    from esmscale.datasets import synthetic_esm
    from esmscale.downscaling.calibration import calibrate_on_pairs

    obs = synthetic_precip(32, 32, 40, seed=3)
    model = train(obs, tiny_train_config, progress=False)
    pairs = obs.isel(time=slice(0, 4))
    coarse = synthetic_esm(pairs, smoothing=0.0, intensity_bias=1.0, drizzle=0.0)
    grid = (0.1, 0.5, 1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t_star, scores = calibrate_on_pairs(
            coarse, pairs, model, t_grid=grid, members=2, tile=16, halo=4
        )
    assert list(scores) == list(grid)
    assert all(np.isfinite(v) for v in scores.values())
    assert t_star == min(scores, key=scores.get)
    # a choice at either end of the grid is flagged, one inside it is not
    edge = [w for w in caught if "value of t_grid" in str(w.message)]
    assert len(edge) == (t_star in (grid[0], grid[-1]))


def test_a_t_star_at_the_edge_of_the_grid_warns_with_a_wider_grid():
    from esmscale.downscaling.calibration import _warn_at_edge
    from esmscale.errors import EsmscaleWarning

    with pytest.warns(EsmscaleWarning, match=r"lowest value .* t_grid=\(0\.025, 0\.05, 0\.1, 0\.4"):
        _warn_at_edge(0.1, [0.1, 0.4, 0.8], "calibrate_on_pairs")
    with pytest.warns(EsmscaleWarning, match=r"highest value .*1\.2, 1\.6\)"):
        _warn_at_edge(0.8, [0.1, 0.4, 0.8], "calibrate_on_pairs")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_at_edge(0.4, [0.1, 0.4, 0.8], "calibrate_on_pairs")
        _warn_at_edge(0.1, [0.1, 0.4], "calibrate_on_pairs")  # two values: no interior
