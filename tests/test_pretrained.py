import pytest

from esmscale.errors import EsmscaleError
from esmscale.pretrained import MODELS, available_models, load_model, model_path


def test_shipped_models_are_registered():
    assert "synthetic-pr-4x" in MODELS
    assert available_models() == ["synthetic-pr-4x"]
    assert (model_path("synthetic-pr-4x") / "model.safetensors").exists()


def test_unknown_names_list_the_known_ones():
    with pytest.raises(EsmscaleError, match=r"known shipped models: \['synthetic-pr-4x'\]"):
        model_path("era5-pr-8x")
    with pytest.raises(EsmscaleError, match=r"known shipped models: \['synthetic-pr-4x'\]"):
        MODELS.get("era5-pr-8x")
    with pytest.raises(
        EsmscaleError, match=r"neither a shipped model name \(\['synthetic-pr-4x'\]"
    ):
        load_model("era5-pr-8x")


def test_names_are_not_registered_twice():
    with pytest.raises(EsmscaleError, match="already registered"):
        MODELS.register("synthetic-pr-4x", MODELS.get("synthetic-pr-4x"))
