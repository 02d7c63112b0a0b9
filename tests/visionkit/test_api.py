import pytest

from tests.visionkit.conftest import TINY
from visionkit import api
from visionkit.training import TrainConfig

QUICK = TrainConfig(steps=2, batch_size=8)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    path = tmp_path_factory.mktemp("pretrained")
    api.pretrain(path, config=TINY, train=QUICK, num_shapes=16, num_persons=2, images_per_person=2)
    return path


def test_pretrain_saves_a_loadable_backbone(pretrained):
    backbone = api.load_backbone(pretrained)
    assert backbone.parameter_count().trainable == 0
    assert (pretrained / "vocab.json").is_file()


@pytest.mark.parametrize("method", ["mope", "prompt_tuning", "late_fusion"])
def test_train_save_evaluate(pretrained, tmp_path, method):
    model = api.train(method, pretrained, out=tmp_path, train=QUICK, num_examples=16)
    assert model.parameter_count().trainable > 0
    result = api.evaluate(tmp_path, pretrained, num_examples=12)
    assert 0.0 <= result["accuracy"] <= 1.0


def test_train_uit_and_retrieval(pretrained):
    model = api.train(
        "uit",
        pretrained,
        train=QUICK,
        num_examples=16,
        method_config={"decoder_width": 16, "decoder_heads": 2},
    )
    result = api.evaluate(model, num_examples=12)
    assert set(result) == {"rank1", "rank5", "rank10", "mAP", "mINP"}


@pytest.mark.parametrize("method", ["zero_shot", "tpt", "invariant_tta"])
def test_adapt(pretrained, method):
    config = None if method == "zero_shot" else {"steps": 1}
    if method == "tpt":
        config = {"steps": 1, "num_views": 4}
    result = api.adapt(method, pretrained, method_config=config, num_examples=4)
    assert result["worst_group_accuracy"] <= result["accuracy"] + 1e-9


def test_api_errors(pretrained):
    with pytest.raises(KeyError, match=r"not a trained method; choose one of \['mope'"):
        api.train("vpt", pretrained)
    with pytest.raises(KeyError, match="zero_shot"):
        api.adapt("mope", pretrained)
    with pytest.raises(ValueError, match="unknown keys"):
        api.adapt("tpt", pretrained, method_config={"views": 3})
    with pytest.raises(ValueError, match="needs its backbone"):
        api.evaluate("somewhere")
