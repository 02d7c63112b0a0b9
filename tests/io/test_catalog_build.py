"""`esmscale catalog build`: facets from attributes and file names, skipped files reported."""

from __future__ import annotations

from pathlib import Path

import dask.system
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from esmscale.cli import main
from esmscale.errors import EsmscaleError
from esmscale.io.catalog import load_catalog
from esmscale.io.catalog_build import build_catalog
from tests.conftest import sample_data


def _write(path: Path, name: str = "pr", attrs: dict | None = None) -> None:
    time = pd.date_range("2000-01-01", periods=4)
    da = xr.DataArray(np.ones((4, 2, 3)), dims=("time", "lat", "lon"), coords={"time": time})
    ds = da.to_dataset(name=name)
    ds.attrs.update(attrs or {})
    ds.to_netcdf(path)


@pytest.fixture(autouse=True)
def _serial_catalog_opens(monkeypatch):
    """netCDF-C/HDF5 is not thread-safe: intake-esm opens the entries from a pool of
    ``dask.system.CPU_COUNT`` threads and the files of each entry in dask threads, which crashed
    the test process (a segfault in CI, in ``get_attrs``). One pool thread here, and
    :func:`_open_all` passes ``threaded=False``, keep every open serial."""
    monkeypatch.setattr(dask.system, "CPU_COUNT", 1)


def _open_all(cat, **kwargs) -> dict:
    """Every dataset of ``cat``, opened one after the other."""
    return cat.to_dataset_dict(progressbar=False, threaded=False, **kwargs)


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
    assert len(_open_all(cat)) == 2


def test_free_text_sources_observations_and_reanalyses(tmp_path):
    """Files without CMIP facets, classified from their ``source``/``title`` (climate4r style).

    A simulation named in free text (project, institution, model, experiment, member, CORDEX
    driving and regional model), a gridded observation or reanalysis product (no experiment:
    ``"none"``), the frequency from the time step; a text naming none of these is reported.
    """
    data = tmp_path / "data"
    data.mkdir()
    _write(data / "CMIP5_Iberia_pr.nc", attrs={
        "source": "CMIP5 CNRM-CERFACS CNRM-CM5 historical r1i1p1 day"})  # fmt: skip
    _write(data / "CMIP5_Iberia_tas_rcp85.nc", "tas", attrs={"source": "CMIP5 CNRM-CM5 rcp85"})
    _write(data / "CORDEX_pr.nc", attrs={
        "source": "EUR-44 ICHEC-EC-EARTH_historical_r1i1p1_RACMO22E_v1 day"})  # fmt: skip
    title = "EURO-CORDEX EUR-44 RACMO22E (EC-EARTH) historical daily mean temperature"
    _write(data / "CORDEX_tas.nc", "tas", attrs={"source": "EUR-44 RACMO22E historical",
                                                 "title": title})  # fmt: skip
    _write(data / "EOBS_pr.nc", attrs={"source": "E-OBS v14.0 (ECA&D)"})
    _write(data / "NCEP_psl.nc", "psl", attrs={"source": "NCEP/NCAR Reanalysis 1 via UDG"})
    _write(data / "ERA5_tas.nc", "tas", attrs={"title": "test data from ERA5",
                                                "institution": "ECMWF"})  # fmt: skip
    _write(data / "model.nc", attrs={"source": "my model, version 2", "title": "a run"})
    build = build_catalog(data, tmp_path / "cat.json")
    assert [path for path, _ in build.skipped] == ["model.nc"]
    assert "not classified" in build.skipped[0][1]
    cols = ["project", "activity_id", "institution_id", "source_id", "driving_source_id",
            "experiment_id", "member_id", "frequency", "domain", "variable_id"]  # fmt: skip
    rows = build.table.set_index("path")[cols]
    u = "unknown"
    expected = {
        "CMIP5_Iberia_pr.nc": ["CMIP5", u, "CNRM-CERFACS", "CNRM-CM5", u, "historical", "r1i1p1",
                               "day", u, "pr"],
        "CMIP5_Iberia_tas_rcp85.nc": ["CMIP5", u, u, "CNRM-CM5", u, "rcp85", u, "day", u, "tas"],
        "CORDEX_pr.nc": ["CORDEX", "CORDEX", u, "RACMO22E", "ICHEC-EC-EARTH", "historical",
                         "r1i1p1", "day", "EUR-44", "pr"],
        "CORDEX_tas.nc": ["CORDEX", "CORDEX", u, "RACMO22E", "EC-EARTH", "historical", u, "day",
                          "EUR-44", "tas"],
        "EOBS_pr.nc": [u, "obs", u, "E-OBS", u, "none", u, "day", u, "pr"],
        "NCEP_psl.nc": [u, "reanalysis", u, "NCEP-NCAR-R1", u, "none", u, "day", u, "psl"],
        "ERA5_tas.nc": [u, "reanalysis", "ECMWF", "ERA5", u, "none", u, "day", u, "tas"],
    }  # fmt: skip
    assert {path: rows.loc[path].tolist() for path in expected} == expected
    cat = load_catalog(build.json_path, root=data)
    assert len(_open_all(cat)) == len(expected)


def test_zarr_and_netcdf_assets_open_through_the_catalog(tmp_path):
    """A Zarr store is catalogued and opened by open_catalog_dataset, as a NetCDF file is."""
    from esmscale.io.catalog import open_catalog_dataset

    data = tmp_path / "data"
    data.mkdir()
    cmip6 = {"mip_era": "CMIP6", "activity_id": "ScenarioMIP", "experiment_id": "ssp245",
             "variant_label": "r1i1p1f1", "table_id": "day", "grid_label": "gn"}  # fmt: skip
    _write(data / "nc.nc", attrs={**cmip6, "source_id": "NC-ESM"})
    time = pd.date_range("2001-01-01", periods=5)
    values = np.arange(5 * 2 * 3, dtype="float64").reshape(5, 2, 3)
    zds = xr.Dataset({"tas": (("time", "lat", "lon"), values)}, coords={"time": time})
    zds.attrs.update({**cmip6, "source_id": "ZARR-ESM"})
    zds.to_zarr(data / "store.zarr", consolidated=True, zarr_format=2)
    build = build_catalog(data, tmp_path / "cat" / "cat.json")
    assert build.skipped == []
    assert sorted(build.table["format"]) == ["netcdf", "zarr"]
    # written outside the scanned folder: the summary and a query without the root say which
    assert f"open it with root={str(data)!r} (command line: --catalog-root {data})" in (
        build.summary()
    )
    with pytest.raises(EsmscaleError, match=r"missing files.*pass root= that folder"):
        open_catalog_dataset(build.json_path, source_id="NC-ESM")
    cat = load_catalog(build.json_path, root=data)
    ds = open_catalog_dataset(cat, source_id="ZARR-ESM")
    np.testing.assert_array_equal(ds["tas"].values, values)
    assert str(ds.time.values[0])[:10] == "2001-01-01"
    nc = open_catalog_dataset(cat, source_id="NC-ESM")
    assert nc["pr"].shape == (4, 2, 3)
    # a value that matches nothing lists the values that exist, with the rest of the query
    with pytest.raises(EsmscaleError, match=r"source_id: \['NC-ESM', 'ZARR-ESM'\]\.$"):
        open_catalog_dataset(cat, source_id="NO-ESM")
    with pytest.raises(
        EsmscaleError,
        match=r"source_id: \['ZARR-ESM'\] \(with variable_id='tas'\); "
        r"variable_id: \['pr'\] \(with source_id='NC-ESM'\)\.$",
    ):
        open_catalog_dataset(cat, source_id="NC-ESM", variable_id="tas")


def test_links_out_of_the_folder_are_reported_and_the_catalog_opens(tmp_path, capsys):
    """A linked file or folder outside the scanned folder, or a broken link, is reported (a
    catalog's paths must stay inside its root); a linked folder inside it is scanned once."""
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    (data / "real").mkdir(parents=True)
    (elsewhere / "sub").mkdir(parents=True)
    _write(data / "pr_day_ESM1_historical_r1i1p1f1_gn.nc")
    _write(data / "real" / "pr_day_ESM2_historical_r1i1p1f1_gn.nc")
    _write(elsewhere / "pr_day_OUT1_historical_r1i1p1f1_gn.nc")
    _write(elsewhere / "sub" / "pr_day_OUT2_historical_r1i1p1f1_gn.nc")
    (data / "out.nc").symlink_to(elsewhere / "pr_day_OUT1_historical_r1i1p1f1_gn.nc")
    (data / "linked").symlink_to(elsewhere / "sub")
    (data / "inside").symlink_to(data / "real")
    (data / "dangling.nc").symlink_to(tmp_path / "gone.nc")
    assert main(["catalog", "build", str(data), "-o", str(tmp_path / "cat.json")]) == 0
    out = capsys.readouterr().out
    assert "2 entries from 2 files; 2 files and 2 folders left out:" in out
    outside = elsewhere / "pr_day_OUT1_historical_r1i1p1f1_gn.nc"
    assert f"out.nc: a link to {outside}, outside the scanned folder" in out
    assert f"linked/: a link to {elsewhere / 'sub'}, outside the scanned folder" in out
    assert "inside/: a link to the folder 'real', scanned there" in out
    assert f"dangling.nc: a broken link (to {tmp_path / 'gone.nc'}, which does not exist)" in out
    cat = load_catalog(tmp_path / "cat.json", root=data)  # no path leaves the root
    assert sorted(cat.df["source_id"]) == ["ESM1", "ESM2"]
    assert len(_open_all(cat)) == 2


def test_a_folder_that_cannot_be_listed_is_reported_and_the_scan_goes_on(tmp_path):
    """A folder the scan cannot list (here: its path is longer than the system allows, which
    stops even root) is reported with the reason; the other files are catalogued."""
    import os

    data = tmp_path / "data"
    data.mkdir()
    _write(data / "pr_day_ESM1_historical_r1i1p1f1_gn.nc")
    fd = os.open(data, os.O_RDONLY)
    try:  # 20 nested 250-character names: over PATH_MAX (4096), built relative to a handle
        for _ in range(20):
            os.mkdir("d" * 250, dir_fd=fd)
            new = os.open("d" * 250, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = new
    finally:
        os.close(fd)
    build = build_catalog(data, tmp_path / "cat.json")
    assert build.table["source_id"].tolist() == ["ESM1"]
    [(where, reason)] = build.skipped
    assert where.startswith("d" * 250) and where.endswith("/")
    assert reason.startswith("folder unreadable (OSError: File name too long)"), reason
    assert "1 folders left out" in build.summary()


@pytest.mark.data
@pytest.mark.slow
def test_whole_shared_data_folder(tmp_path, capsys):
    """`esmscale catalog build` over all of ../shared/data: every entry loads, nothing dropped.

    CMIP5, CMIP6, reanalysis, observations and a CORDEX RCM are mixed there; intake-esm opens
    the catalog and ``to_dataset_dict()`` loads every dataset it lists, and every NetCDF/Zarr
    file is either in the catalog or reported with a reason.
    """
    root = sample_data("climate4r_iberia").parent
    out = tmp_path / "shared.json"
    assert main(["catalog", "build", str(root), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    build_table = pd.read_csv(out.with_suffix(".csv"))
    candidates = {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.suffix in (".nc", ".nc4", ".netcdf", ".zarr")
        and ".zarr/" not in str(p.relative_to(root))
    }
    listed = set(build_table["path"])
    reported = {line.split(": ", 1)[0].strip().lstrip("- ") for line in printed.splitlines()}
    dropped = candidates - listed - reported
    assert not dropped, f"files neither catalogued nor reported: {sorted(dropped)}"
    # CMIP5 and CMIP6 files are classified from their attributes and names; the climate4r
    # extracts (CNRM-CM5, the CORDEX RCM, E-OBS, NCEP/NCAR R1) from their source/title texts
    projects = set(build_table["project"].astype(str))
    assert {"CMIP5", "CMIP6", "CORDEX"} <= projects, projects
    iberia = build_table[build_table["folder"] == "climate4r_iberia"].set_index("path")
    assert len(iberia) == 21, sorted(iberia.index)
    by_source = iberia.groupby("source_id")["activity_id"].agg(set).to_dict()
    assert by_source == {"CNRM-CM5": {"unknown"}, "RACMO22E": {"CORDEX"}, "E-OBS": {"obs"},
                         "NCEP-NCAR-R1": {"reanalysis"}}, by_source  # fmt: skip
    assert set(iberia["frequency"]) == {"day"}
    cordex = iberia.loc["climate4r_iberia/CORDEX_Iberia_pr_rcp85.nc"]
    assert [cordex["experiment_id"], cordex["driving_source_id"], cordex["domain"]] == [
        "rcp85", "ICHEC-EC-EARTH", "EUR-44"]  # fmt: skip
    # what names no model or product stays reported: the ERA-Interim and SPREAD extracts of
    # synoptreg (no attributes saying so), AHCCD stations, the CMIP3 file (no model id)
    for name in ("synoptreg_balearic/pcp_spread.nc", "synoptreg_balearic/mslp_ei.nc",
                 "xclim_testdata/sdba/ahccd_1950-2013.nc"):  # fmt: skip
        assert f"{name}: not classified" in printed, name
    cat = load_catalog(out, root=root)
    keys = list(cat.keys())
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    dsets = _open_all(cat, xarray_open_kwargs={"decode_times": coder})
    assert sorted(dsets) == sorted(keys)
    for key, ds in dsets.items():
        assert ds.data_vars, key
    print(f"{len(build_table)} entries, {len(keys)} datasets, {len(candidates - listed)} reported")
