"""``esmscale downscale`` with catalog entries, on a small catalog of synthetic files.

The fast counterpart of ``tests/test_cli.py::test_downscale_from_catalog_entries`` (marked slow:
it downscales 1804 real days through the shipped Iberia catalog).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from esmscale.cli import main
from esmscale.datasets import synthetic_esm, synthetic_precip

SPEC = Path(__file__).resolve().parents[1] / "catalogs" / "climate4r_iberia.json"


def _catalog(folder: Path) -> Path:
    """A copy of the shipped catalog's layout listing a synthetic ESM and its observations."""
    obs = synthetic_precip(32, 48, 4, seed=4)
    (folder / "data").mkdir()
    obs.to_netcdf(folder / "data" / "obs.nc")
    synthetic_esm(obs).to_netcdf(folder / "data" / "esm.nc")
    (folder / "synth.csv").write_text(
        "source_id,experiment_id,variable_id,frequency,path\n"
        "SYN-OBS,observations,pr,day,data/obs.nc\n"
        "SYN-ESM,historical,pr,day,data/esm.nc\n",
        encoding="utf-8",
    )
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    spec.update(id="synthetic", description="synthetic test catalog", catalog_file="synth.csv")
    (folder / "synth.json").write_text(json.dumps(spec), encoding="utf-8")
    return folder / "synth.json"


def test_downscale_from_catalog_entries_fast(tiny_model_dir, tmp_path, capsys):
    cat = _catalog(tmp_path)
    out = tmp_path / "cat.zarr"
    args = [
        "downscale", f"{cat}?source_id=SYN-ESM&variable_id=pr",
        "--target", f"{cat}?source_id=SYN-OBS&variable_id=pr",
        "--catalog-root", str(tmp_path),
        "--model", str(tiny_model_dir),
        "--output", str(out),
        "--quiet",
    ]  # fmt: skip
    assert main(args) == 0
    with (
        xr.open_zarr(out, consolidated=False) as res,
        xr.open_dataset(tmp_path / "data" / "obs.nc") as obs,
    ):
        assert res.pr.shape == (1, 4, 32, 48)
        np.testing.assert_array_equal(res.lat.values, obs.lat.values)
        assert np.isfinite(res.pr.values).all()
    capsys.readouterr()
    bad = [*args[:1], f"{cat}?source_id=MPI-ESM", *args[2:]]
    bad[bad.index(str(out))] = str(tmp_path / "bad.zarr")
    assert main(bad) == 2
    err = capsys.readouterr().err
    assert "available values" in err and "SYN-ESM" in err
