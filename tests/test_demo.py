from __future__ import annotations

import re

import numpy as np
import xarray as xr

from esmscale import available_models, load_model
from esmscale.cli import main
from esmscale.demo import format_summary, run_demo
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


def test_demo_corrects_the_bias_and_prints_the_summary(tmp_path, capsys):
    # issue 13: the demo's output was 98.6 % wet (>= 0.1 mm/day) where the truth was 41 %
    assert main(["demo", "--output", str(tmp_path / "demo"), "--members", "4"]) == 0
    text = capsys.readouterr().out
    assert "bias correction qdm" in text
    wet = re.search(r"wet days \(>= 0\.1 mm day-1\): truth ([\d.]+) %, downscaled ([\d.]+) %", text)
    q99 = re.search(r"99th percentile \(mm day-1\): truth ([\d.]+), downscaled ([\d.]+)", text)
    assert wet and q99, text
    truth_wet, out_wet = float(wet[1]), float(wet[2])
    assert abs(out_wet - truth_wet) <= 5.0, text  # percentage points
    assert abs(float(q99[2]) / float(q99[1]) - 1) <= 0.2, text
    ds = xr.open_zarr(tmp_path / "demo" / "downscaled.zarr")
    assert ds.pr.attrs["esmscale_bias_correction"] == "qdm"


def test_demo_without_bias_correction_shows_the_drizzle(tmp_path):
    summary = run_demo(tmp_path, members=2, days=2, bias_correction=False)
    st = summary["stats"]
    assert summary["bias_correction"] == "none"
    assert st["coarse input"]["wet_day_fraction"] == 1.0  # drizzle everywhere
    assert st["downscaled"]["wet_day_fraction"] > st["truth"]["wet_day_fraction"] + 0.3
    assert "truth" in format_summary(summary)
