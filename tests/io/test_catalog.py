import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from esmscale.errors import EsmscaleError
from esmscale.io.catalog import load_catalog, open_catalog_dataset, parse_catalog_uri
from esmscale.prepare.inputs import open_dataset
from tests.conftest import sample_data

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "catalogs" / "climate4r_iberia.json"
DATA = Path(os.environ.get("ESMSCALE_DATA", REPO.parent / "shared" / "data"))
EXAMPLES = DATA / "catalog_examples" / "intake-esm"


@pytest.fixture(scope="module")
def iberia():
    sample_data("climate4r_iberia/CMIP5_Iberia_pr_rcp85.nc")
    return load_catalog(SPEC, root=DATA)


def test_shipped_catalog_opens_the_same_data_as_the_file(iberia):
    assert set(iberia.df["source_id"]) == {"E-OBS", "NCEP-R1", "CNRM-CM5"}
    ds = open_catalog_dataset(iberia, source_id="CNRM-CM5", experiment_id="rcp85", variable_id="pr")
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    with xr.open_dataset(DATA / "climate4r_iberia" / "CMIP5_Iberia_pr_rcp85.nc",
                         decode_times=coder) as direct:  # fmt: skip
        np.testing.assert_array_equal(ds.pr.values, direct.pr.values)
        assert ds.time.values[0] == direct.time.values[0]  # cftime, as open_dataset does
    assert ds.pr.attrs["units"] == "kg m-2 s-1"


def test_uri_through_open_dataset(iberia):
    uri = f"{SPEC}?source_id=E-OBS&variable_id=pr"
    ds = open_dataset(uri, catalog_root=DATA)
    assert ds.pr.sizes["lat"] == 19
    path, query = parse_catalog_uri(uri)
    assert path == str(SPEC) and query == {"source_id": "E-OBS", "variable_id": "pr"}
    with pytest.raises(EsmscaleError, match="not facet=value"):
        parse_catalog_uri(f"{SPEC}?source_id")


def test_query_errors_list_the_choices(iberia):
    with pytest.raises(EsmscaleError, match=r"matches 4 datasets.*narrow the query"):
        open_catalog_dataset(iberia, variable_id="pr")
    with pytest.raises(EsmscaleError, match=r"available values: source_id: \['CNRM-CM5'"):
        open_catalog_dataset(iberia, source_id="MPI-ESM", variable_id="pr")
    with pytest.raises(EsmscaleError, match="no facet"):
        open_catalog_dataset(iberia, model="CNRM-CM5")


def test_remote_assets_and_specs_refused():
    sample_data("catalog_examples/intake-esm/catalog-dict-records.json")
    # the intake-esm example lists s3:// Zarr stores: nothing is downloaded
    with pytest.raises(EsmscaleError, match="remote"):
        load_catalog(EXAMPLES / "catalog-dict-records.json")
    with pytest.raises(EsmscaleError, match="remote"):
        load_catalog("https://example.org/catalog.json")


def _write(folder: Path, rows: list[dict], **extra) -> Path:
    spec = {
        "esmcat_version": "0.1.0",
        "attributes": [{"column_name": "variable_id", "vocabulary": ""}],
        "assets": {"column_name": "path", "format": "netcdf"},
        "catalog_dict": rows,
        **extra,
    }
    path = folder / "cat.json"
    path.write_text(json.dumps(spec))
    return path


def test_paths_confined_to_the_root(tmp_path):
    inside = tmp_path / "data"
    inside.mkdir()
    xr.Dataset({"pr": ("t", [1.0])}).to_netcdf(inside / "a.nc")
    ok = _write(tmp_path, [{"variable_id": "pr", "path": "data/a.nc"}])
    assert Path(load_catalog(ok).df["path"][0]) == (inside / "a.nc").resolve()
    escape = _write(tmp_path, [{"variable_id": "pr", "path": "../elsewhere/a.nc"}])
    with pytest.raises(EsmscaleError, match="outside the data root"):
        load_catalog(escape)
    absolute = _write(tmp_path, [{"variable_id": "pr", "path": "/etc/passwd"}])
    with pytest.raises(EsmscaleError, match="outside the data root"):
        load_catalog(absolute)
    outside_csv = _write(tmp_path, [], catalog_file="../x.csv")
    with pytest.raises(EsmscaleError, match="exactly one of"):
        load_catalog(outside_csv)
    spec = json.loads(outside_csv.read_text())
    del spec["catalog_dict"]
    outside_csv.write_text(json.dumps(spec))
    with pytest.raises(EsmscaleError, match="outside the catalog's folder"):
        load_catalog(outside_csv)


def test_templates_and_bad_specs_refused(tmp_path):
    tpl = _write(tmp_path, [{"variable_id": "pr", "path": "{{ env('HOME') }}/a.nc"}])
    with pytest.raises(EsmscaleError, match="template"):
        load_catalog(tpl)
    (tmp_path / "bad.json").write_text('{"assets": {}}')
    with pytest.raises(EsmscaleError, match="not an ESM collection spec"):
        load_catalog(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(EsmscaleError, match="not valid JSON"):
        load_catalog(tmp_path / "broken.json")
    with pytest.raises(EsmscaleError, match="does not exist"):
        load_catalog(tmp_path / "missing.json")


def test_copied_catalog_with_own_root(tmp_path, iberia):
    # a catalog copied elsewhere works with an explicit root and fails clearly without it
    shutil.copy(SPEC, tmp_path / SPEC.name)
    shutil.copy(SPEC.with_suffix(".csv"), tmp_path / SPEC.with_suffix(".csv").name)
    query = {"source_id": "NCEP-R1", "variable_id": "pr"}
    ds = open_catalog_dataset(tmp_path / SPEC.name, root=DATA, **query)
    assert "pr" in ds
    with pytest.raises(EsmscaleError, match="missing files"):
        open_catalog_dataset(tmp_path / SPEC.name, **query)
