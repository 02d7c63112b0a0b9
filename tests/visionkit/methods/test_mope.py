import pytest
import torch

from tests.visionkit.conftest import state_copy, states_equal
from visionkit.methods.mope import (
    MoPE,
    MoPEConfig,
    importance_loss,
    mope_parameter_count,
    orthogonal_keys,
)
from visionkit.methods.prompt_tuning import DeepPromptTuning, PromptTuningConfig
from visionkit.training import TrainConfig, fit


@pytest.fixture
def images():
    return torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def routing(model, images, ids):
    model.eval()
    with torch.no_grad():
        return model(images, ids).routing


def test_routing_weights_sum_to_one(backbone, images):
    model = MoPE(backbone, MoPEConfig(num_classes=3))
    weights = routing(model, images, backbone.tokenize(["a red circle"] * 4))
    assert len(weights) == backbone.num_vision_layers
    for w in weights:
        assert w.shape == (4, 4)
        assert torch.allclose(w.sum(dim=1), torch.ones(4), atol=1e-6)
        assert (w >= 0).all()


def test_routing_changes_when_only_the_text_changes(backbone, images):
    model = MoPE(backbone, MoPEConfig(num_classes=3))
    a = routing(model, images, backbone.tokenize(["a red circle"] * 4))
    b = routing(model, images, backbone.tokenize(["a man wearing a blue shirt"] * 4))
    assert not torch.allclose(a[0], b[0], atol=1e-4)
    # and the same inputs give the same routing (no noise in eval mode)
    assert torch.equal(a[0], routing(model, images, backbone.tokenize(["a red circle"] * 4))[0])


def test_routing_noise_only_in_training(backbone, images):
    model = MoPE(backbone, MoPEConfig(num_classes=3, noise_std=0.5))
    ids = backbone.tokenize(["a red circle"] * 4)
    model.train()
    a, b = model(images, ids).routing[0], model(images, ids).routing[0]
    assert not torch.allclose(a, b)


def test_single_expert_without_mapping_is_deep_prompt_tuning(backbone, images):
    config = MoPEConfig(
        num_classes=3, static_length=2, dynamic_length=3, num_experts=1, mapped_length=0
    )
    mope = MoPE(backbone, config, seed=1).eval()
    dpt = DeepPromptTuning(backbone, PromptTuningConfig(num_classes=3, prompt_length=5)).eval()
    with torch.no_grad():
        dpt.prompts.copy_(torch.cat([mope.static, mope.experts[:, 0]], dim=1))
        dpt.head.load_state_dict(mope.head.state_dict())
    ids = backbone.tokenize(["a red circle", "a", "a black cross", "a small square"])
    with torch.no_grad():
        assert torch.allclose(mope(images, ids).logits, dpt(images, ids), atol=1e-6)
    assert mope.parameter_count().trainable == dpt.parameter_count().trainable


@pytest.mark.parametrize(
    "config",
    [
        MoPEConfig(num_classes=3),
        MoPEConfig(num_classes=5, num_experts=2, static_length=0, router_dim=4),
        MoPEConfig(num_classes=2, num_experts=1, mapped_length=0),
        MoPEConfig(num_classes=2, mapped_length=3, prompt_layers=(1,)),
    ],
)
def test_trainable_parameter_count_matches_closed_form(backbone, config):
    model = MoPE(backbone, config)
    expected = mope_parameter_count(config, backbone.vision_width, backbone.text_width, 2)
    count = model.parameter_count()
    assert count.trainable == expected
    assert count.frozen == backbone.parameter_count().total


def test_training_changes_prompts_but_not_the_backbone(backbone, images):
    model = MoPE(backbone, MoPEConfig(num_classes=3))
    before_backbone = state_copy(backbone)
    before_prompts = model.experts.detach().clone()
    ids = backbone.tokenize(["a red circle", "a", "a black cross", "a small square"])
    labels = torch.tensor([0, 1, 2, 0])
    model.train()
    losses = fit(
        list(model.parameters()),
        lambda idx: model.loss(images[idx], ids[idx], labels[idx]),
        4,
        TrainConfig(steps=5, batch_size=4, lr=1e-2, warmup=1),
    )
    assert losses[-1] < losses[0]
    assert states_equal(before_backbone, state_copy(backbone))
    assert not torch.allclose(before_prompts, model.experts)


def test_importance_loss():
    assert importance_loss(torch.full((6, 3), 1 / 3)).item() == pytest.approx(0.0, abs=1e-7)
    skewed = torch.tensor([[1.0, 0.0, 0.0]] * 4)
    # masses (4, 0, 0): var = 32/9, mean^2 = 16/9 -> CV^2 = 2
    assert importance_loss(skewed).item() == pytest.approx(2.0)


def test_orthogonal_keys_are_fixed_buffers(backbone):
    model = MoPE(backbone, MoPEConfig(num_classes=3))
    keys = model.keys
    assert torch.allclose(keys @ keys.T, torch.eye(4), atol=1e-5)
    assert not keys.requires_grad
    assert torch.equal(keys, orthogonal_keys(4, 32, 0))


def test_config_and_input_errors(backbone, images):
    with pytest.raises(ValueError, match="router_dim 2 must be >= num_experts 4"):
        MoPEConfig(num_classes=2, router_dim=2)
    with pytest.raises(ValueError, match=r"prompt_layers \(5,\)"):
        MoPE(backbone, MoPEConfig(num_classes=2, prompt_layers=(5,)))
    model = MoPE(backbone, MoPEConfig(num_classes=2))
    with pytest.raises(ValueError, match="4 images but 1 captions"):
        model(images, backbone.tokenize(["a"]))
    with pytest.raises(ValueError, match="labels span"):
        model.loss(images, backbone.tokenize(["a"] * 4), torch.tensor([0, 1, 2, 0]))
