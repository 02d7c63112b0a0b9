from __future__ import annotations

import numpy as np
import xarray as xr

from esmscale import available_models, load_model
from esmscale.demo import run_demo
from esmscale.io import is_complete


def test_shipped_checkpoint_is_small_and_calibrated():
    assert "synthetic-pr-4x" in available_models()
    model = load_model("synthetic-pr-4x")
    assert model.config.factor == 4
    assert model.config.t_star is not None
    assert 0.01 < model.config.t_star < 1.0
    assert model.num_parameters() * 4 <= 10 * 2**20


def test_demo_writes_zarr_and_png(tmp_path):
    summary = run_demo(tmp_path / "demo", members=4, days=2)
    assert is_complete(summary["zarr"])
    ds = xr.open_zarr(summary["zarr"])
    assert ds.pr.sizes["member"] == 4
    assert ds.pr.attrs["esmscale_model"] == "synthetic-pr-4x"
    assert np.isfinite(ds.pr.values).all()
    png = tmp_path / "demo" / "demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # running it again replaces its own store
    again = run_demo(tmp_path / "demo", members=4, days=2)
    np.testing.assert_array_equal(xr.open_zarr(again["zarr"]).pr.values, ds.pr.values)
