"""The model catalog: shipped catalog.json, user folders, pinning by sha256, `esmscale models`."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch

from esmscale.cli import main
from esmscale.errors import EsmscaleError
from esmscale.io.checkpoint import file_sha256
from esmscale.models import ConsistencyConfig, ConsistencyModel, DataTransform
from esmscale.pretrained import catalog, load_model, model_path
from esmscale.pretrained.catalog import (
    ENV_VAR,
    model_catalog,
    parse_model_spec,
    register_model_folder,
    resolve_model,
)

SHIPPED = "synthetic-pr-4x"


@pytest.fixture(autouse=True)
def _no_user_folders(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(catalog, "_FOLDERS", [])


@pytest.fixture
def user_models(tmp_path):
    """A folder with one small temperature model of the user's own."""
    torch.manual_seed(0)
    cfg = ConsistencyConfig(
        block_out_channels=(8, 16),
        patch_size=8,
        variable="tas",
        name="my-tas",
        factor=2,
        grid_spacing=0.1,
        t_star=0.4,
        transform=DataTransform(kind="standard", mean=280.0, std=5.0, units="K"),
    )
    folder = tmp_path / "models"
    ConsistencyModel(cfg).save_pretrained(folder / "my-tas", training_data="my station grid")
    return folder


def test_shipped_catalog_matches_the_shipped_files():
    spec = json.loads(catalog.CATALOG_FILE.read_text(encoding="utf-8"))
    assert [m["name"] for m in spec["models"]] == [SHIPPED]
    item = spec["models"][0]
    weights = model_path(SHIPPED) / "model.safetensors"
    assert item["sha256"] == file_sha256(weights)
    assert item["size"] == weights.stat().st_size
    cfg = json.loads((model_path(SHIPPED) / "config.json").read_text(encoding="utf-8"))["model"]
    assert (item["variable"], item["units"]) == (cfg["variable"], cfg["transform"]["units"])
    assert (item["factor"], item["t_star"], item["grid_spacing"]) == (
        cfg["factor"],
        cfg["t_star"],
        cfg["grid_spacing"],
    )


def test_esmscale_models_lists_every_field(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    sha = resolve_model(SHIPPED).sha256
    for text in (SHIPPED, "pr", "mm day-1", "0.25 deg", "4.7 MB", sha, "synthetic_precip"):
        assert text in out, text
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert set(rows[0]) >= {
        "name",
        "variable",
        "units",
        "grid_spacing",
        "factor",
        "training_data",
        "t_star",
        "sha256",
        "size",
    }


def test_user_folder_by_call_and_by_environment(user_models, monkeypatch, capsys):
    assert register_model_folder(user_models) == ["my-tas"]
    entry = resolve_model("my-tas")
    assert (entry.variable, entry.units, entry.factor, entry.t_star) == ("tas", "K", 2, 0.4)
    assert entry.training_data == "my station grid"
    assert entry.sha256 == file_sha256(user_models / "my-tas" / "model.safetensors")
    assert load_model("my-tas").config.name == "my-tas"

    monkeypatch.setattr(catalog, "_FOLDERS", [])
    assert "my-tas" not in [e.name for e in model_catalog()]
    monkeypatch.setenv(ENV_VAR, str(user_models))
    assert load_model(f"my-tas@sha256:{entry.sha256}").sha256 == entry.sha256
    assert main(["models"]) == 0
    assert "my-tas" in capsys.readouterr().out


def test_home_relative_folders(user_models, monkeypatch):
    """``~/models`` (as the docs write it) is the user's home folder, in a call and in the
    environment variable (quoted, so the shell did not expand it)."""
    monkeypatch.setenv("HOME", str(user_models.parent))
    assert register_model_folder("~/models") == ["my-tas"]
    monkeypatch.setattr(catalog, "_FOLDERS", [])
    monkeypatch.setenv(ENV_VAR, "~/models")
    assert resolve_model("my-tas").path == (user_models / "my-tas").resolve()


def test_cli_folder_option(user_models, capsys):
    assert main(["models", "--folder", str(user_models), "--json"]) == 0
    names = [row["name"] for row in json.loads(capsys.readouterr().out)]
    assert names == [SHIPPED, "my-tas"]


def test_checksum_mismatch_names_both_hashes(user_models):
    register_model_folder(user_models)
    real = resolve_model("my-tas").sha256
    wrong = "0" * 64
    with pytest.raises(EsmscaleError, match=f"expected sha256 {wrong}.*have sha256 {real}"):
        load_model(f"my-tas@sha256:{wrong}")
    with pytest.raises(EsmscaleError, match=f"expected sha256 {wrong}.*have sha256 {real}"):
        load_model(f"{user_models / 'my-tas'}@sha256:{wrong}")
    # the weights change after the hash was taken: the pinned load is refused
    weights = user_models / "my-tas" / "model.safetensors"
    other = user_models.parent / "other"
    ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16), patch_size=8)).save_pretrained(
        other
    )
    shutil.copy(other / "model.safetensors", weights)
    new = file_sha256(weights)
    assert new != real
    with pytest.raises(EsmscaleError, match=f"checksum mismatch: expected sha256 {real}.*{new}"):
        load_model(f"{user_models / 'my-tas'}@sha256:{real}")


def test_catalogued_weights_that_changed_are_refused(tmp_path, monkeypatch):
    """Loading a catalogued model by name (no pin) checks its weights against the catalog's
    sha256: a catalog whose hash is not the file's (a changed or corrupted file) is refused,
    naming both hashes."""
    spec = json.loads(catalog.CATALOG_FILE.read_text(encoding="utf-8"))
    real = spec["models"][0]["sha256"]
    spec["models"][0]["sha256"] = "f" * 64
    changed = tmp_path / "catalog.json"
    changed.write_text(json.dumps(spec), encoding="utf-8")
    monkeypatch.setattr(catalog, "CATALOG_FILE", changed)
    with pytest.raises(EsmscaleError, match=f"expected sha256 {'f' * 64}.*have sha256 {real}"):
        load_model(SHIPPED)


def test_unknown_name_lists_the_names(user_models):
    register_model_folder(user_models)
    with pytest.raises(EsmscaleError, match=re.escape("['my-tas', 'synthetic-pr-4x']")):
        resolve_model("era5-pr-8x")
    with pytest.raises(EsmscaleError, match=r"nor a user model \(\['my-tas'\]\)"):
        load_model("era5-pr-8x")
    with pytest.raises(EsmscaleError, match="64 hexadecimal characters"):
        parse_model_spec(f"{SHIPPED}@sha256:abc")
    with pytest.raises(EsmscaleError, match="NAME@sha256:HEX"):
        parse_model_spec(f"{SHIPPED}@v1")


def test_bad_folders_are_errors(tmp_path, user_models):
    with pytest.raises(EsmscaleError, match="does not exist or is not a folder"):
        register_model_folder(tmp_path / "nowhere")
    shutil.copytree(user_models / "my-tas", user_models / SHIPPED)
    register_model_folder(user_models)
    with pytest.raises(EsmscaleError, match=f"two models are named '{SHIPPED}'"):
        model_catalog()


def test_cli_unknown_model_is_one_line(capsys):
    assert main(["calibrate", "nope@sha256:12", "--obs", "a.nc", "--held-out", "b.nc"]) == 2
    err = capsys.readouterr().err
    assert "64 hexadecimal characters" in err
