from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from esmscale import ConsistencyModel
from esmscale.cli import build_parser, main
from esmscale.datasets import synthetic_esm, synthetic_precip
from esmscale.io import is_complete
from tests.conftest import sample_data


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir):
    return tiny_model_dir


@pytest.fixture(scope="module")
def esm_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "esm.nc"
    synthetic_esm(synthetic_precip(32, 48, 6, seed=4)).to_netcdf(path)
    return path


def test_help_lists_every_command_and_option(capsys):
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["downscale", "--help"])
    text = capsys.readouterr().out
    for opt in (
        "--model",
        "--output",
        "--members",
        "--seed",
        "--target",
        "--bias-correction",
        "--reference",
        "--historical",
        "--chunks",
        "--workers",
        "--scheduler",
        "--resume",
    ):
        assert opt in text
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    text = capsys.readouterr().out
    for cmd in ("demo", "synth", "train", "calibrate", "downscale"):
        assert cmd in text


def test_downscale_to_zarr_and_resume(tiny_model, esm_file, tmp_path, capsys):
    out = tmp_path / "out.zarr"
    args = [
        "downscale",
        str(esm_file),
        "--model",
        str(tiny_model),
        "--output",
        str(out),
        "--members",
        "2",
        "--seed",
        "3",
        "--chunks",
        "time=4",
        "--quiet",
    ]
    assert main(args) == 0
    summary = capsys.readouterr().out
    assert "fields/s" in summary
    assert "t*=0.300" in summary
    assert is_complete(out)
    ds = xr.open_zarr(out)
    assert ds.pr.shape == (2, 6, 32, 48)
    assert ds.pr.attrs["esmscale_seed"] == 3
    first = ds.pr.values
    # a complete store is refused without --resume/--overwrite, and left as it was
    assert main(args) == 2
    assert "overwrite" in capsys.readouterr().err
    np.testing.assert_array_equal(xr.open_zarr(out).pr.values, first)
    # resume on a complete store recomputes nothing
    assert main([*args, "--resume"]) == 0
    assert "0 chunks written" in capsys.readouterr().out


def test_glob_input_and_missing_variable_error(tiny_model, esm_file, tmp_path, capsys):
    pattern = str(esm_file.parent / "es*.nc")
    out = tmp_path / "g.zarr"
    assert (
        main(["downscale", pattern, "--model", str(tiny_model), "--output", str(out), "--quiet"])
        == 0
    )
    capsys.readouterr()
    code = main(
        [
            "downscale",
            str(esm_file),
            "--model",
            str(tiny_model),
            "--output",
            str(tmp_path / "x.zarr"),
            "--variable",
            "tas",
            "--quiet",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "'tas'" in err
    assert "pr" in err


def test_synth_train_calibrate(tmp_path, capsys):
    obs = tmp_path / "obs.nc"
    held = tmp_path / "held.nc"
    assert main(["synth", str(obs), "--ny", "32", "--nx", "32", "--days", "30"]) == 0
    assert main(["synth", str(held), "--ny", "32", "--nx", "32", "--days", "4", "--seed", "9"]) == 0
    run = tmp_path / "run"
    train = ["train", str(obs), "--output", str(run), "--steps", "4", "--batch-size", "2",
             "--patch-size", "16", "--channels", "8", "16", "--quiet"]  # fmt: skip
    assert main(train) == 0
    assert (run / "model" / "model.safetensors").exists()
    assert main([*train, "--resume"]) == 0
    cal = tmp_path / "cal"
    assert (
        main(
            [
                "calibrate",
                str(run / "model"),
                "--obs",
                str(obs),
                "--held-out",
                str(held),
                "--members",
                "2",
                "--max-fields",
                "2",
                "--min-corr",
                "0",
                "--output",
                str(cal),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "recommended t*" in text
    assert ConsistencyModel.from_pretrained(cal).config.t_star is not None


def test_console_script_runs():
    res = subprocess.run(
        [sys.executable, "-m", "esmscale.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0
    assert "downscale" in res.stdout


@pytest.mark.slow  # 1804 real days; tests/test_cli_catalog.py is the fast variant
def test_downscale_from_catalog_entries(tiny_model, tmp_path, capsys):
    """Input, target, reference and historical all given as intake-esm catalog entries."""
    sample_data("climate4r_iberia/CMIP5_Iberia_pr_rcp85.nc")
    repo = Path(__file__).resolve().parents[1]
    data = Path(os.environ.get("ESMSCALE_DATA", repo.parent / "shared" / "data"))
    cat = repo / "catalogs" / "climate4r_iberia.json"
    out = tmp_path / "cat.zarr"
    args = [
        "downscale",
        f"{cat}?source_id=CNRM-CM5&experiment_id=rcp85&variable_id=pr",
        "--target", f"{cat}?source_id=E-OBS&variable_id=pr",
        "--catalog-root", str(data),
        "--model", str(tiny_model),
        "--output", str(out),
        "--members", "1",
        "--chunks", "time=200",
        "--quiet",
    ]  # fmt: skip
    assert main(args) == 0
    res = xr.open_zarr(out, consolidated=False)
    assert res.pr.sizes["lat"] == 19 and res.pr.sizes["time"] == 1804
    capsys.readouterr()
    bad = [*args[:2], "--catalog-root", str(data), "--model", str(tiny_model),
           "--output", str(tmp_path / "bad.zarr"), "--quiet"]  # fmt: skip
    bad[1] = f"{cat}?source_id=MPI-ESM"
    assert main(bad) == 2
    assert "available values" in capsys.readouterr().err
