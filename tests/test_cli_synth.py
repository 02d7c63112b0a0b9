"""``esmscale synth``: the fine truth, and with --esm-factor also its coarse counterpart."""

from __future__ import annotations

import numpy as np
import xarray as xr

from esmscale.cli import main
from esmscale.datasets import synthetic_esm, synthetic_temperature


def test_synth_esm_factor_writes_truth_and_coarse_counterpart(tmp_path, capsys):
    out = tmp_path / "world.nc"
    args = ["synth", str(out), "--variable", "tas", "--ny", "16", "--nx", "24", "--days", "3"]
    assert main([*args, "--seed", "5", "--esm-factor", "4"]) == 0
    coarse_path = tmp_path / "world_coarse.nc"
    assert str(coarse_path) in capsys.readouterr().out
    truth = synthetic_temperature(16, 24, 3, seed=5)
    with xr.open_dataset(out) as fine, xr.open_dataset(coarse_path) as coarse:
        assert fine.tas.shape == (3, 16, 24)  # the output path holds the fine truth
        np.testing.assert_array_equal(fine.tas.values, truth.tas.values)
        assert coarse.tas.shape == (3, 4, 6)
        np.testing.assert_allclose(coarse.tas.values, synthetic_esm(truth, factor=4).tas.values)


def test_synth_without_esm_factor_writes_only_the_truth(tmp_path):
    out = tmp_path / "obs.nc"
    assert main(["synth", str(out), "--ny", "8", "--nx", "8", "--days", "2"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obs.nc"]
