"""Tile planning: network work per output cell, seam quality and chunk independence."""

from __future__ import annotations

import numpy as np
import pytest

from esmscale.datasets import synthetic_precip
from esmscale.downscaling.kernel import run_block, sample_fine
from esmscale.downscaling.plan import plan_grid
from esmscale.downscaling.spec import BlockSpec
from esmscale.downscaling.tiling import TileGrid
from esmscale.prepare.interp import coarsen_block, upsample_bilinear
from esmscale.spectra import log_spectral_error, rapsd
from tests.models._mixin import tiny_model

MODEL = tiny_model(seed=0)


@pytest.mark.parametrize(
    ("ny", "nx", "wrap"),
    [
        (256, 256, False),  # 64x64 -> 256x256
        (1024, 2048, True),  # a global 1024x2048 grid
        (100, 130, False),  # a regional grid with sides that are no multiple of the network's
        (600, 700, False),
        (288, 576, True),
        (64, 64, False),
    ],
)
def test_planned_work_is_at_most_1_3_of_the_output_area(ny, nx, wrap):
    g = plan_grid(ny, nx, 8, wrap_x=wrap)
    assert g.work_ratio <= 1.3, (g.tiles, g.halo)
    assert max(g.windows) <= 512
    assert all(w % 8 == 0 for w in g.windows)
    if wrap:
        assert g.halo == 16  # tiles meet at the dateline: they need a blended overlap


def test_old_default_cost_2_25_and_explicit_tiles_still_honoured():
    g = plan_grid(256, 256, 8, tile=64, halo=16)
    assert (g.tiles, g.halo) == ((64, 64), 16)
    assert g.work_ratio == 2.25


def test_plan_depends_on_the_grid_only():
    # no device and no chunk enters the plan: the same tiles (hence noise) everywhere
    assert plan_grid(600, 700, 8) == plan_grid(600, 700, 8)
    small = plan_grid(600, 700, 8, max_window=128)
    assert small.work_ratio > plan_grid(600, 700, 8).work_ratio


def test_rectangular_tiles_any_region_equals_the_whole_domain():
    grid = plan_grid(40, 56, 8, max_window=32)  # several rectangular tiles with a halo
    assert grid.shape[0] * grid.shape[1] > 1 and grid.halo > 0
    spec = BlockSpec.for_model(MODEL, grid, t_star=0.3, threads=1)
    fine = np.random.default_rng(1).uniform(0.0, 20.0, (2, 40, 56)).astype(np.float32)
    t = np.arange(2)
    whole = run_block(spec, fine, (slice(0, 40), slice(0, 56)), 0, t)
    for ys, xs in [
        (slice(0, 13), slice(5, 56)),
        (slice(13, 40), slice(0, 29)),
        (slice(7, 9), slice(50, 56)),
    ]:
        np.testing.assert_array_equal(run_block(spec, fine, (ys, xs), 0, t), whole[:, ys, xs])


def _seam(y: np.ndarray, at: int) -> float:
    """Mean |step| across the tile edge ``at`` (both axes) per mean |step| of the 16 next to it.

    About 1 where there is no seam; above 1 where tiles meet with a jump.
    """
    dx, dy = np.abs(np.diff(y, axis=-1)), np.abs(np.diff(y, axis=-2))
    near = [c for c in range(at - 9, at + 8) if c != at - 1]
    edge = dx[..., at - 1].mean() + dy[..., at - 1, :].mean()
    return float(edge / (dx[..., near].mean() + dy[..., near, :].mean()))


@pytest.mark.slow  # ~10-25 s on a shared 2-core machine; the tests above are the fast part
def test_seams_and_spectrum_match_a_single_window_run():
    from esmscale.pretrained import load_model

    m = load_model("synthetic-pr-4x")
    obs = synthetic_precip(128, 128, 2, seed=5)["pr"].values.astype(np.float32)
    fine = upsample_bilinear(coarsen_block(obs, 4), 4)
    runs = {}
    for name, grid in {
        "single": plan_grid(128, 128, 8),  # one 128x128 window: no seam at all
        "tiled": plan_grid(128, 128, 8, max_window=96),  # 64-cell cores, halo 16
        "hard": TileGrid(128, 128, tile=64, halo=0),  # control: tiles without overlap
    }.items():
        spec = BlockSpec.for_model(m, grid, t_star=0.25, threads=1)
        runs[name] = m.config.transform.forward(sample_fine(spec, fine, 2))
    other = BlockSpec.for_model(m, plan_grid(128, 128, 8), t_star=0.25, seed=1, threads=1)
    runs["single, seed 1"] = m.config.transform.forward(sample_fine(other, fine, 2))
    assert plan_grid(128, 128, 8).work_ratio == 1.0
    assert plan_grid(128, 128, 8, max_window=96).tiles == (64, 64)
    # measured (seeds 5, 6; 1-2 members): single 0.98-1.11, tiled 0.87-1.01, hard 1.46-1.79
    assert 0.8 < _seam(runs["single"], 64) < 1.2
    assert 0.8 < _seam(runs["tiled"], 64) < 1.2
    assert _seam(runs["hard"], 64) > 1.3  # the statistic sees a real seam
    k, p_single = rapsd(runs["single"].reshape(-1, 128, 128))
    _, p_tiled = rapsd(runs["tiled"].reshape(-1, 128, 128))
    _, p_seed = rapsd(runs["single, seed 1"].reshape(-1, 128, 128))
    # the tiled spectrum differs from the single window's no more than another noise seed does
    floor = log_spectral_error(p_seed, p_single, k)
    assert log_spectral_error(p_tiled, p_single, k) < 1.5 * floor
