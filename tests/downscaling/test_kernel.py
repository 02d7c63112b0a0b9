"""One sampling path: the tile kernel gives the same member through every entry point."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import esmscale  # noqa: F401  (registers the accessor)
from esmscale import calibrate_noise_level, downscale_array
from esmscale.downscaling.kernel import run_block, sample_fine
from esmscale.downscaling.plan import plan_grid
from esmscale.downscaling.spec import BlockSpec
from esmscale.errors import EsmscaleError
from esmscale.metrics import crps_ensemble
from esmscale.prepare.interp import coarsen_block, upsample_bilinear
from tests.models._mixin import tiny_model

MODEL = tiny_model(seed=1)
KW = {"t_star": 0.4, "members": 2, "seed": 5}


def _coarse_da(values: np.ndarray) -> xr.DataArray:
    nt, ny, nx = values.shape
    return xr.DataArray(
        values,
        dims=("time", "lat", "lon"),
        coords={
            "time": pd.date_range("2001-01-01", periods=nt),
            "lat": 40.0 + np.arange(ny),
            "lon": -5.0 + np.arange(nx),
        },
        name=MODEL.config.variable,
        attrs={"units": MODEL.config.transform.units},
    )


def test_array_api_and_accessor_give_the_same_members():
    # integer fields: bilinear interpolation is exact, so xarray-regrid (accessor) and
    # upsample_bilinear (array API) hand the kernel bitwise the same fine fields
    coarse = np.random.default_rng(0).integers(0, 12, (3, 12, 10)).astype(np.float32)
    grid = {"tile": 16, "halo": 4, "threads": 1}
    acc = _coarse_da(coarse).esm.downscale(MODEL, **KW, **grid).values
    arr = downscale_array(MODEL, coarse, **KW, **grid)
    assert arr.shape == acc.shape == (2, 3, 48, 40)
    assert np.array_equal(arr, acc)
    # one member, a subset of times: the same field (noise keyed by member and time index)
    one = downscale_array(MODEL, coarse[1:], t_star=0.4, seed=5, time_index=[1, 2], **grid)
    assert np.array_equal(one[0], acc[0, 1:])
    assert not np.array_equal(acc[0], acc[1])


def test_calibration_scores_the_array_api_ensemble():
    truth = np.random.default_rng(1).gamma(0.8, 4.0, (4, 48, 40)).astype(np.float32)
    coarse = coarsen_block(truth, 4)
    cal = calibrate_noise_level(
        truth,
        upsample_bilinear(coarse, 4),
        MODEL,
        held_out=truth,
        t_grid=(0.2, 0.4),
        members=2,
        seed=5,
    )
    ens = downscale_array(MODEL, coarse, **KW)
    assert cal.crps[1] == crps_ensemble(ens, truth)
    assert cal.crps[0] != cal.crps[1]


def test_run_block_regions_tile_the_whole_domain():
    fine = upsample_bilinear(np.random.default_rng(2).uniform(0, 9, (2, 10, 12)), 4)
    spec = BlockSpec.for_model(MODEL, plan_grid(40, 48, 8, tile=16, halo=4), t_star=0.3)
    whole = sample_fine(spec, fine, 1)[0]
    parts = [
        run_block(spec, fine, (slice(y0, y0 + 20), slice(x0, x0 + 24)), 0, np.arange(2))
        for y0 in (0, 20)
        for x0 in (0, 24)
    ]
    top, bottom = np.concatenate(parts[:2], axis=2), np.concatenate(parts[2:], axis=2)
    assert np.array_equal(np.concatenate([top, bottom], axis=1), whole)


def test_spec_refuses_bad_settings_with_the_known_names():
    grid = plan_grid(32, 32, 8)
    with pytest.raises(EsmscaleError, match=r"known samplers: .*'bridge'"):
        BlockSpec.for_model(MODEL, grid, t_star=0.3, sampler="euler")
    with pytest.raises(EsmscaleError, match="objective='diffusion'"):
        BlockSpec.for_model(MODEL, grid, t_star=0.3, sampler="bridge")
    with pytest.raises(EsmscaleError, match="steps=0"):
        BlockSpec.for_model(MODEL, grid, t_star=0.3, steps=0)
    spec = BlockSpec.for_model(MODEL, grid, t_star=0.3)
    with pytest.raises(EsmscaleError, match="time_index"):
        run_block(spec, np.zeros((2, 32, 32), np.float32), (slice(0, 8), slice(0, 8)), 0, [0])
