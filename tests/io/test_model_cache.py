import pickle

import pytest

import esmscale.pretrained
from esmscale.errors import EsmscaleError
from esmscale.io import model_cache
from esmscale.io.model_cache import LOAD_COUNT, ModelRef, cached_model, model_ref
from esmscale.models.consistency import ConsistencyModel
from tests.models._mixin import tiny_model


def test_old_names_are_the_same_objects():
    for name in ("LOAD_COUNT", "ModelRef", "cached_model", "model_ref"):
        assert getattr(esmscale.pretrained, name) is getattr(model_cache, name)


def test_unsaved_model_is_written_to_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("ESMSCALE_CACHE", str(tmp_path))
    model = tiny_model()
    ref = model_ref(model)
    assert ref.cls is ConsistencyModel
    assert ref.path.startswith(str(tmp_path.resolve()))
    assert model.source == ref.path and model.sha256 == ref.sha256
    assert pickle.loads(pickle.dumps(ref)) == ref
    assert cached_model(ref) is model  # the in-process model is reused, nothing is loaded


def test_loads_once_per_process_and_checks_the_sha(tmp_path):
    directory = tiny_model(seed=3).save_pretrained(tmp_path / "m")
    saved = ConsistencyModel.from_pretrained(directory)
    ref = ModelRef(str(directory.resolve()), saved.sha256, ConsistencyModel)
    first = cached_model(ref)
    assert cached_model(ref) is first
    assert LOAD_COUNT[ref] == 1
    stale = ModelRef(ref.path, "0" * 64, ConsistencyModel)
    with pytest.raises(EsmscaleError, match="changed on disk"):
        cached_model(stale)
