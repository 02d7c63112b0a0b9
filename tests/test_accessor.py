"""The ``.esm`` accessor: calibration shared with the CLI, and forecaster training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import esmscale  # noqa: F401  (registers the accessor)
from esmscale.cli import main
from esmscale.datasets import synthetic_esm, synthetic_precip
from esmscale.downscaling.calibration import calibrate_esm
from esmscale.errors import EsmscaleError
from esmscale.forecast import train
from esmscale.prepare import open_dataset
from tests.forecast._helpers import djf_times, field, tiny_config

SEARCH = {"members": 2, "max_fields": 2, "min_corr": 0.0}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """obs.nc (training period), held.nc (held-out days) and esm.nc (their coarse ESM)."""
    root = tmp_path_factory.mktemp("calibrate")
    synthetic_precip(16, 16, 8, seed=1).to_netcdf(root / "obs.nc")
    held = synthetic_precip(16, 16, 4, seed=9)
    held.to_netcdf(root / "held.nc")
    synthetic_esm(held, factor=4).to_netcdf(root / "esm.nc")
    return {name: str(root / f"{name}.nc") for name in ("obs", "held", "esm")}


def _cli(files, model, *extra):
    args = ["calibrate", str(model), "--obs", files["obs"], "--held-out", files["held"]]
    args += ["--members", "2", "--max-fields", "2", "--min-corr", "0", *extra]
    assert main(args) == 0


def test_accessor_and_cli_give_the_same_calibration(files, tiny_model_dir, tmp_path, capsys):
    # the accessor regridded the ESM but skipped the physical checks; the CLI upsampled arrays
    esm, obs, held = (open_dataset(files[k]) for k in ("esm", "obs", "held"))
    cal = esm.esm.calibrate(obs, tiny_model_dir, held_out=held, **SEARCH)
    assert cal.t_grid.size == 10 and cal.t_star_crps is not None

    _cli(files, tiny_model_dir, "--esm", files["esm"], "--output", str(tmp_path / "cal"), "--quiet")
    out, err = capsys.readouterr()
    assert cal.summary() in out
    assert err == ""  # --quiet: no progress bar (tests/test_cli.py checks the bar)
    saved = json.loads((tmp_path / "cal" / "config.json").read_text())["calibration"]
    assert saved["t_star"] == cal.t_star and saved["k_star"] == cal.k_star
    assert saved["t_star_spectral"] == cal.t_star_spectral
    np.testing.assert_array_equal(saved["t_grid"], cal.t_grid)
    np.testing.assert_array_equal(saved["crps"], cal.crps)
    np.testing.assert_array_equal(saved["pooled_corr"], cal.pooled_corr)


def test_calibrate_esm_checks_the_inputs(files, tiny_model_dir):
    obs, held = open_dataset(files["obs"]), open_dataset(files["held"])
    bad = obs.assign(pr=(obs.pr - 5.0).assign_attrs(obs.pr.attrs))  # mostly negative rain
    with pytest.raises(EsmscaleError, match="negative"):
        calibrate_esm(None, bad, tiny_model_dir, held_out=held, **SEARCH)
    with pytest.raises(EsmscaleError, match="esm is None and held_out is None"):
        calibrate_esm(None, obs, tiny_model_dir)


def test_train_forecaster_through_the_accessor(tmp_path):
    da = field(djf_times(3))
    cfg = tiny_config(steps=3, eval_every=3, checkpoint_every=3)
    direct = train(da, cfg, progress=False)
    model = da.to_dataset().esm.train_forecaster(cfg, output_dir=tmp_path, progress=False)
    assert (tmp_path / "model" / "model.safetensors").exists()
    a, b = direct.net.state_dict(), model.net.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert model.info["history"] == direct.info["history"]
    fc = da.esm.forecast(model, lead=2, init=da.time.values[10])
    assert fc.sizes["lead_time"] == 2 and np.isfinite(fc.values).any()
