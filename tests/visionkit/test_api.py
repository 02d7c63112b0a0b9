import pytest
import torch

from esmscale.errors import EsmscaleError
from tests.visionkit.conftest import CPU_NAMES, HAS_CUDA, TINY, states_equal
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


# device= and precision= ---------------------------------------------------------------------
@pytest.mark.parametrize("device", CPU_NAMES)
def test_cpu_by_name_is_the_default_bit_for_bit(pretrained, device):
    default = api.train("late_fusion", pretrained, train=QUICK, num_examples=16)
    named = api.train(
        "late_fusion", pretrained, train=QUICK, num_examples=16, device=device, precision="fp32"
    )
    assert states_equal(default.trainable_state_dict(), named.trainable_state_dict())
    assert api.evaluate(default, num_examples=12) == api.evaluate(
        named, num_examples=12, device=device
    )
    tta = {"steps": 1, "num_foreground_views": 2}
    assert api.adapt("invariant_tta", pretrained, method_config=tta, num_examples=4) == api.adapt(
        "invariant_tta", pretrained, method_config=tta, num_examples=4, device=device
    )


def test_bf16_on_the_cpu(pretrained):
    model = api.train(
        "uit",
        pretrained,
        train=QUICK,
        num_examples=16,
        method_config={"decoder_width": 16, "decoder_heads": 2},
        precision="bf16",
    )
    state = model.state_dict()
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float32}
    assert {v.device.type for v in state.values()} == {"cpu"}
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    metrics = api.evaluate(model, num_examples=12, precision="bf16")
    assert set(metrics) == {"rank1", "rank5", "rank10", "mAP", "mINP"}
    assert all(isinstance(v, float) and 0 <= v <= 1 for v in metrics.values())
    result = api.adapt("zero_shot", pretrained, num_examples=4, precision="bf16")
    assert 0 <= result["worst_group_accuracy"] <= result["accuracy"] <= 1


@pytest.mark.parametrize(
    ("place", "message"),
    [
        ({"precision": "fp64"}, "precision='fp64' is unknown"),
        ({"precision": "fp16"}, "not supported on the CPU"),
        pytest.param(
            {"device": "cuda"},
            r"not present on this machine \(devices present: cpu",
            marks=pytest.mark.skipif(HAS_CUDA, reason="a CUDA device is present"),
        ),
    ],
)
def test_unusable_device_or_precision_is_refused(pretrained, tmp_path, place, message):
    with pytest.raises(EsmscaleError, match=message):
        api.pretrain(tmp_path / "bb", config=TINY, train=QUICK, num_shapes=4, **place)
    assert not (tmp_path / "bb").exists()
    with pytest.raises(EsmscaleError, match=message):
        api.train("late_fusion", pretrained, train=QUICK, num_examples=16, **place)
    with pytest.raises(EsmscaleError, match=message):
        api.evaluate_retrieval(pretrained, num_identities=2, **place)
    with pytest.raises(EsmscaleError, match=message):
        api.adapt("tpt", pretrained, num_examples=4, **place)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine (GPU test)")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_gpu_train_evaluate_adapt(pretrained, precision):
    place = {"device": "cuda", "precision": precision}
    bb = api.pretrain(config=TINY, train=QUICK, num_shapes=16, num_persons=2, **place)
    assert next(bb.parameters()).device.type == "cpu"
    for method, config in [("mope", None), ("uit", {"decoder_width": 16, "decoder_heads": 2})]:
        model = api.train(
            method, pretrained, train=QUICK, num_examples=16, method_config=config, **place
        )
        state = model.state_dict()
        assert {v.device.type for v in state.values()} == {"cpu"}
        assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float32}
        metrics = api.evaluate(model, num_examples=12, **place)
        assert all(0 <= v <= 1 for v in metrics.values())
    cpu = api.evaluate_retrieval(pretrained, num_identities=4)
    gpu = api.evaluate_retrieval(pretrained, num_identities=4, **place)
    if precision == "fp32":
        assert gpu == pytest.approx(cpu, abs=1e-6)
    for method in ["zero_shot", "tpt", "invariant_tta"]:
        config = None if method == "zero_shot" else {"steps": 1}
        result = api.adapt(method, pretrained, method_config=config, num_examples=4, **place)
        assert 0 <= result["worst_group_accuracy"] <= result["accuracy"] <= 1
