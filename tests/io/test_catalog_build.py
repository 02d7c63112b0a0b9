"""`esmscale catalog build`: facets from attributes and file names, skipped files reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from esmscale.cli import main
from esmscale.io.catalog import load_catalog


def _write(path: Path, name: str = "pr", attrs: dict | None = None) -> None:
    time = pd.date_range("2000-01-01", periods=4)
    da = xr.DataArray(np.ones((4, 2, 3)), dims=("time", "lat", "lon"), coords={"time": time})
    ds = da.to_dataset(name=name)
    ds.attrs.update(attrs or {})
    ds.to_netcdf(path)


def test_attributes_names_and_bad_files(tmp_path, capsys):
    data = tmp_path / "data"
    (data / "cordex").mkdir(parents=True)
    _write(data / "x.nc", attrs={"mip_era": "CMIP6", "source_id": "ESM1", "experiment_id":
                                 "ssp585", "variant_label": "r2i1p1f1", "table_id": "day",
                                 "grid_label": "gn", "activity_id": "ScenarioMIP"})  # fmt: skip
    _write(data / "cordex" / "tas_EUR-11_MPI-ESM-LR_rcp85_r1i1p1_CLMcom-CCLM_v1_day_2000.nc", "tas")
    _write(data / "obs.nc")
    (data / "broken.nc").write_bytes(b"not netcdf")
    assert main(["catalog", "build", str(data), "-o", str(data / "cat.json")]) == 0
    out = capsys.readouterr().out
    assert "2 entries from 2 files; 2 files left out" in out
    assert "broken.nc: unreadable" in out and "obs.nc: not classified" in out
    cat = load_catalog(data / "cat.json")
    rows = cat.df.set_index("variable_id")
    assert rows.loc["pr", ["activity_id", "member_id", "frequency"]].tolist() == [
        "ScenarioMIP", "r2i1p1f1", "day"]  # fmt: skip
    assert rows.loc["tas", ["project", "domain", "driving_source_id", "source_id"]].tolist() == [
        "CORDEX", "EUR-11", "MPI-ESM-LR", "CLMcom-CCLM"]  # fmt: skip
    assert rows.loc["tas", "time_range"] == "20000101-20000104"
    assert len(cat.to_dataset_dict(progressbar=False)) == 2
