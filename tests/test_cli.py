from __future__ import annotations

import argparse
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
from esmscale.errors import EsmscaleWarning
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
    text, err = capsys.readouterr()
    assert "recommended t*" in text
    assert ConsistencyModel.from_pretrained(cal).config.t_star is not None
    # progress on stderr, one step per t of the search (it was silent for minutes)
    assert "calibrate" in err and "10/10" in err and "t=0.8" in err
    assert "11/10" not in err and "calibrate: 11t" not in err  # the grid is walked once


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


# --- issue 13: a CLI that speaks CLI, no tracebacks, light --help --------------------------------

_REPO = Path(__file__).resolve().parents[1]


def _run_python(code: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with this worktree first on the path."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(_REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        env={**env, "OMP_NUM_THREADS": "1"},
        timeout=timeout,
        cwd=_REPO,
    )


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return parser, action.choices


def test_help_imports_no_heavy_module():
    code = (
        "import sys\nimport esmscale.cli\n"
        "for argv in (['--help'], ['downscale', '--help'], ['forecast', '--help']):\n"
        "    try:\n        esmscale.cli.main(argv)\n    except SystemExit:\n        pass\n"
        "print(sorted(m for m in ('torch', 'xarray', 'dask', 'pandas') if m in sys.modules))"
    )
    res = _run_python(code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_import_esmscale_keeps_api_and_accessor_in_either_order():
    code = (
        "import sys\n{first}\n"
        "assert 'torch' not in sys.modules\n"
        "import numpy as np\n"
        "from esmscale.downscaling.pipeline import downscale\nimport esmscale.downscaling.arrays\n"
        "import esmscale.report.evaluation\n"
        "assert esmscale.downscale is downscale, esmscale.downscale\n"
        "assert callable(esmscale.evaluate) and callable(esmscale.train)\n"
        "assert esmscale.load_model('synthetic-pr-4x').config.factor == 4\n"
        "assert esmscale.forecast.available_methods()\n"
        "da = xr.DataArray(np.ones((2, 4, 4)), dims=('time', 'lat', 'lon'))\n"
        "print(type(da.esm).__name__)"
    )
    for first in ("import esmscale\nimport xarray as xr", "import xarray as xr\nimport esmscale"):
        res = _run_python(code.format(first=first))
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == "EsmAccessor"


def test_every_option_has_help_with_default_and_examples(capsys):
    parser, subs = _subparsers()
    assert set(subs) == {
        "demo", "synth", "train", "downscale", "calibrate", "evaluate", "forecast-train",
        "forecast", "models", "catalog",
    }  # fmt: skip
    for name, sub in subs.items():
        assert sub.description, name
        examples = [ln for ln in (sub.epilog or "").splitlines() if ln.startswith("  esmscale ")]
        assert 2 <= len(examples) <= 3, (name, sub.epilog)
        assert all(f" {name} " in ln or ln.startswith(f"  esmscale {name}") or "synth" in ln
                   for ln in examples), examples  # fmt: skip
        text = sub.format_help()
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, (name, action.dest)
            flag = action.option_strings[-1] if action.option_strings else action.dest
            if action.option_strings and action.default not in (None, False):
                shown = sub._get_formatter()._get_help_string(action)
                assert "default" in shown, (name, flag)
            assert flag in text
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == "esmscale 0.1.0"
    downscale_help = subs["downscale"].format_help()
    assert "(default: 1)" in downscale_help  # --members
    assert "examples:\n  esmscale downscale esm.nc" in downscale_help


def test_forecast_model_choices_match_the_registry(capsys, tmp_path):
    from esmscale.cli.parser import FORECAST_BASELINES, FORECAST_NETWORKS
    from esmscale.forecast import available_methods

    assert sorted(FORECAST_BASELINES + FORECAST_NETWORKS) == available_methods()
    _, subs = _subparsers()
    text = subs["forecast"].format_help()
    assert all(name in text for name in FORECAST_BASELINES)
    assert "{fno,pastnet,simvp}" in subs["forecast-train"].format_help()
    out = str(tmp_path / "f.nc")
    assert main(["forecast", "x.nc", "--model", "nonsense", "--output", out]) == 2
    err = capsys.readouterr().err
    assert "persistence" in err and "nonsense" in err and "Traceback" not in err
    assert main(["forecast", "x.nc", "--model", "pastnet", "--output", out]) == 2
    assert "forecast-train" in capsys.readouterr().err


def test_no_coastlines_flag_says_what_it_does():
    _, subs = _subparsers()
    assert subs["evaluate"].parse_args(["o.nc", "--result", "a=b", "--output", "r",
                                        "--no-coastlines"]).no_coastlines  # fmt: skip
    with pytest.raises(SystemExit):
        subs["evaluate"].parse_args(["o.nc", "--result", "a=b", "--output", "r", "--no-maps"])
    assert "without coastlines" in subs["evaluate"].format_help()


def test_errors_give_cli_flags_not_python_arguments(tiny_model, esm_file, tmp_path, capsys):
    from esmscale.errors import EsmscaleError
    from esmscale.io import write_zarr

    out = tmp_path / "o.zarr"
    args = ["downscale", str(esm_file), "--model", str(tiny_model), "--output", str(out),
            "--chunks", "time=3", "--quiet"]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "overwrite=True" not in err
    assert len(err.strip().splitlines()) == 1
    assert main([*args[:-3], "--chunks", "time=2", "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "--output" in err and "overwrite=True" not in err
    # the Python interface still speaks Python
    with pytest.raises(EsmscaleError, match=r"overwrite=True"):
        write_zarr(xr.open_zarr(out).pr.chunk({"time": 3}), out, progress=False)
    # a catalog root that is not a folder: --catalog-root, not root=
    cat = _REPO / "catalogs" / "climate4r_iberia.json"
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    code = main(["downscale", f"{cat}?source_id=CNRM-CM5", "--catalog-root", str(not_a_folder),
                 "--output", str(tmp_path / "c.zarr")])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "--catalog-root" in err and "root=" not in err.replace("--catalog-root", "")


def test_unreadable_and_one_dimensional_inputs_are_errors(tmp_path, capsys):
    text = tmp_path / "notes.nc"
    text.write_text("this is a text file\n" * 20)
    assert main(["downscale", str(text), "--output", str(tmp_path / "a.zarr")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "notes.nc" in err and "NetCDF" in err
    flat = tmp_path / "series.nc"
    xr.Dataset({"pr": ("time", np.ones(5), {"units": "mm/day"})}).to_netcdf(flat)
    assert main(["downscale", str(flat), "--output", str(tmp_path / "b.zarr")]) == 2
    err = capsys.readouterr().err
    assert "'pr' has dims ('time',)" in err and "latitude and longitude" in err


def test_python_api_accepts_paths_and_model_names(tmp_path, esm_file):
    import esmscale
    from esmscale.errors import EsmscaleError

    with pytest.raises(EsmscaleError, match=r"'nope.nc' does not exist"):
        esmscale.downscale("nope.nc", "synthetic-pr-4x")
    res = esmscale.downscale(esm_file, "synthetic-pr-4x", members=1)
    assert res.pr.dims == ("member", "time", "lat", "lon")
    out = esmscale.downscale_array("synthetic-pr-4x", np.ones((1, 4, 4)), t_star=0.1)
    assert out.shape == (1, 1, 16, 16)
    with pytest.raises(EsmscaleError, match="model is a ndarray"):
        esmscale.downscale_array(np.ones((1, 4, 4)), "synthetic-pr-4x")


@pytest.mark.slow
def test_missing_forecast_extra_names_the_extra(tmp_path):
    data = tmp_path / "tas.nc"
    assert main(["synth", str(data), "--variable", "tas", "--ny", "8", "--nx", "8",
                 "--days", "12"]) == 0  # fmt: skip
    code = (
        "import sys\nsys.modules['cv2'] = None\nsys.modules['pysteps'] = None\n"
        "from esmscale.cli import main\nsys.exit(main(sys.argv[1:]))"
    )
    res = _run_python(code, "forecast", str(data), "--model", "optical_flow", "--output",
                      str(tmp_path / "f.nc"))  # fmt: skip
    assert res.returncode == 2, res.stderr
    expected = (
        "esmscale forecast: error: the optical_flow forecast needs OpenCV (cv2) or pysteps, "
        'which is not installed; install it with: pip install "esmscale[forecast]"'
    )
    assert res.stderr.strip().splitlines() == [expected]


def test_missing_visionkit_extra_names_the_extra(tmp_path):
    code = (
        "import runpy, sys\nsys.modules['transformers'] = None\n"
        "sys.argv = ['visionkit', *sys.argv[1:]]\n"
        "runpy.run_module('visionkit', run_name='__main__', alter_sys=True)"
    )
    res = _run_python(code, "pretrain", "--out", str(tmp_path / "bb"), "--steps", "1")
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install "esmscale[visionkit]"' in lines[0], lines


@pytest.fixture(scope="module")
def small_obs(tmp_path_factory):
    path = tmp_path_factory.mktemp("obs") / "obs.nc"
    assert main(["synth", str(path), "--ny", "16", "--nx", "16", "--days", "10"]) == 0
    return path


def test_train_refuses_to_replace_a_run_and_names_changed_settings(small_obs, tmp_path, capsys):
    import esmscale
    from esmscale.errors import EsmscaleError

    run = tmp_path / "run"
    train = ["train", str(small_obs), "--output", str(run), "--steps", "2", "--batch-size", "2",
             "--patch-size", "16", "--channels", "8", "16", "--quiet"]  # fmt: skip
    assert main(train) == 0
    weights = run / "model" / "model.safetensors"
    before = (weights.read_bytes(), weights.stat().st_mtime_ns)
    capsys.readouterr()
    assert main([*train, "--seed", "5"]) == 2
    err = capsys.readouterr().err
    assert "already holds a finished consistency model" in err and "--overwrite" in err
    assert (weights.read_bytes(), weights.stat().st_mtime_ns) == before
    with pytest.raises(EsmscaleError, match="overwrite=True"):
        esmscale.train(small_obs, output_dir=run, progress=False)
    assert main([*train, "--lr", "0.001", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "lr: 0.0003 (stored) -> 0.001 (now)" in err and "--output" in err
    assert main([*train, "--seed", "5", "--overwrite"]) == 0
    assert weights.read_bytes() != before[0]


@pytest.mark.slow
def test_ctrl_c_during_downscale_prints_one_line_and_the_resume_command(tiny_model, tmp_path):
    import shlex
    import signal
    import time

    esm = tmp_path / "long.nc"
    synthetic_esm(synthetic_precip(16, 24, 12, seed=1)).to_netcdf(esm)
    out = tmp_path / "int.zarr"
    argv = ["downscale", str(esm), "--model", str(tiny_model), "--output", str(out),
            "--members", "2", "--chunks", "time=1", "--quiet"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(_REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "esmscale.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=_REPO,
    )
    deadline = time.monotonic() + 240
    while not list(out.glob("pr/c/*/*/*/*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert " of 12 chunks were written to " in lines[0]  # time chunks, members in each
    command = lines[0].split("write the rest with: ")[1]
    assert command.endswith("--resume")
    assert not is_complete(out)
    assert main(shlex.split(command)[1:]) == 0
    assert is_complete(out)


def test_impossible_input_is_a_one_line_error(tiny_model, tmp_path, capsys):
    esm = synthetic_esm(synthetic_precip(32, 48, 6, seed=4))
    bad = esm.assign(pr=(esm.pr - 5.0).assign_attrs(esm.pr.attrs))
    path = tmp_path / "bad.nc"
    bad.to_netcdf(path)
    n = int((bad.pr.values < -0.01).sum())
    out = tmp_path / "bad.zarr"
    args = ["downscale", str(path), "--model", str(tiny_model), "--output", str(out), "--quiet"]
    assert main([*args, "--chunks", "time=2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"esmscale downscale: error: variable 'pr': {n} of {bad.pr.size} values")
    assert "the first at time=2000-01-01" in err and "--check warn" in err
    assert not out.exists()  # checked before anything is written
    with pytest.warns(EsmscaleWarning, match="negative beyond the tolerance"):
        assert main([*args, "--check", "warn"]) == 0
    assert xr.open_zarr(out).pr.attrs["esmscale_clipped_fraction"] == 0.0
    code = main(["train", str(path), "--output", str(tmp_path / "m"), "--steps", "1", "--quiet"])
    assert code == 2 and "are negative" in capsys.readouterr().err
    for cmd in ("downscale", "train", "forecast", "forecast-train", "calibrate", "evaluate"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([cmd, "--help"])
        assert "--check {raise,warn,off}" in capsys.readouterr().out


def test_forecast_cli_records_clipped_fraction(tmp_path, capsys):
    times = xr.date_range("2000-01-01", periods=12, freq="D", use_cftime=False)
    rng = np.random.default_rng(0)
    pr = xr.DataArray(
        np.maximum(rng.normal(0.0, 1.0, (12, 8, 8)), 0.0).astype("float32"),
        dims=("time", "lat", "lon"),
        coords={"time": times, "lat": np.arange(8.0), "lon": np.arange(8.0)},
        name="pr",
        attrs={"units": "mm day-1", "standard_name": "lwe_precipitation_rate"},
    )
    src = tmp_path / "pr.nc"
    pr.to_dataset().to_netcdf(src)
    out = tmp_path / "fc.nc"
    assert main(["forecast", str(src), "--model", "persistence", "--output", str(out)]) == 0
    capsys.readouterr()
    with xr.open_dataset(out) as ds:
        assert ds.pr.attrs["esmscale_clipped_fraction"] == 0.0
        assert float(ds.pr.min()) >= 0.0


def test_downscale_method_flag_runs_a_registered_method(tiny_model, esm_file, tmp_path, capsys):
    from esmscale.cli.parser import DOWNSCALING_METHODS
    from esmscale.downscaling import methods

    assert list(DOWNSCALING_METHODS) == methods.available()
    base = ["downscale", str(esm_file), "--model", str(tiny_model), "--quiet"]
    assert main([*base, "--method", "bilinear", "--output", str(tmp_path / "b.zarr")]) == 0
    assert "method bilinear" in capsys.readouterr().out
    ds = xr.open_zarr(tmp_path / "b.zarr")
    assert ds.pr.shape == (1, 6, 32, 48)
    assert ds.pr.attrs["esmscale_method"] == "bilinear"
    assert main([*base, "--method", "krige", "--output", str(tmp_path / "k.zarr")]) == 2
    err = capsys.readouterr().err
    assert "'krige'" in err and "'cm-multistep'" in err and "'qdm-bilinear'" in err
    assert not (tmp_path / "k.zarr").exists()


def test_restore_and_spread_flags_reach_the_output(tiny_model, esm_file, tmp_path, capsys):
    base = ["downscale", str(esm_file), "--model", str(tiny_model), "--quiet", "--members", "2"]
    out = tmp_path / "r.zarr"
    assert main([*base, "--restore", "2", "--spread", "0.3", "--output", str(out)]) == 0
    attrs = xr.open_zarr(out).pr.attrs
    assert "0.3" in attrs["esmscale_spread"] and "2" in attrs["esmscale_restore"]
    assert main([*base, "--spread", "0.3", "--output", str(tmp_path / "s.zarr")]) == 2
    assert "add --restore SIGMA" in capsys.readouterr().err
    assert not (tmp_path / "s.zarr").exists()


def test_worker_resources_are_parsed_and_bad_ones_explained():
    from esmscale.cli.commands import _parse_resources
    from esmscale.errors import EsmscaleError

    assert _parse_resources(None) is None
    assert _parse_resources("GPU=1") == {"GPU": 1.0}
    assert _parse_resources("GPU=1, MEM=4e9") == {"GPU": 1.0, "MEM": 4e9}
    for bad in ("GPU", "GPU=x", "=1"):
        with pytest.raises(EsmscaleError, match="--worker-resources GPU=1"):
            _parse_resources(bad)
    args = build_parser().parse_args(
        ["downscale", "in.nc", "--model", "m", "--output", "o.zarr", "--worker-resources", "GPU=1"]
    )
    assert args.worker_resources == "GPU=1"
