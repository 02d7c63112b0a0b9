import json

import pytest
import torch
from transformers import CLIPVisionConfig, CLIPVisionModel

from tests.visionkit.conftest import state_copy, states_equal
from visionkit.backbones import ClipBackbone, TinyClipConfig


@pytest.fixture
def images():
    return torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def ids(backbone):
    return backbone.tokenize(["a red circle", "a man wearing a blue shirt .", "a"])


def test_hand_driven_towers_match_transformers(backbone, images, ids):
    with torch.no_grad():
        ours = backbone.encode_image(images).embeds
        ref = backbone.model.get_image_features(pixel_values=images).pooler_output
        assert torch.allclose(ours, ref, atol=1e-5)
        ours = backbone.encode_text(ids).embeds
        ref = backbone.model.get_text_features(input_ids=ids).pooler_output
        assert torch.allclose(ours, ref, atol=1e-5)


def test_frozen_by_default_and_unfreeze(backbone):
    count = backbone.parameter_count()
    assert count.trainable == 0
    assert count.frozen > 0
    backbone.unfreeze()
    assert backbone.parameter_count().frozen == 0
    assert ClipBackbone.from_config(TinyClipConfig(), freeze=False).parameter_count().frozen == 0


def test_replace_and_prepend_prompts(backbone, images):
    d = backbone.vision_width
    n_tokens = 1 + (32 // 8) ** 2
    seen = []

    def prompt_fn(layer, tokens):
        seen.append(tokens.shape[1])
        return torch.ones(layer + 2, d)

    out = backbone.encode_image(images, prompt_fn, prompt_mode="replace")
    assert seen == [n_tokens, n_tokens]  # prompt tokens are hidden from the hook
    assert out.tokens.shape == (3, n_tokens, d)
    plain = backbone.encode_image(images).embeds
    assert not torch.allclose(out.embeds, plain)
    prepended = backbone.encode_image(images, [torch.ones(2, d), torch.ones(3, d)], "prepend")
    replaced = backbone.encode_image(images, [torch.ones(2, d), torch.ones(3, d)], "replace")
    assert not torch.allclose(prepended.embeds, replaced.embeds)
    # a prompt only at the last layer equals replacing nothing before it
    only_last = backbone.encode_image(images, [None, torch.ones(3, d)])
    assert only_last.tokens.shape == (3, n_tokens, d)


def test_prompt_errors(backbone, images):
    with pytest.raises(ValueError, match="at most one entry per layer"):
        backbone.encode_image(images, [None] * 5)
    with pytest.raises(ValueError, match=r"expected \(P, 32\)"):
        backbone.encode_image(images, [torch.ones(2, 7)])
    with pytest.raises(ValueError, match="prompt_mode"):
        backbone.encode_image(images, None, prompt_mode="append")  # type: ignore[arg-type]


def test_text_context_is_inserted_and_differentiable(backbone, ids):
    context = torch.zeros(4, backbone.text_width, requires_grad=True)
    out = backbone.encode_text(ids, context=context)
    assert out.tokens.shape[1] == int((ids == 3).int().argmax(1).max()) + 1 + 4
    assert not torch.allclose(out.embeds, backbone.encode_text(ids).embeds)
    out.embeds.sum().backward()
    assert context.grad is not None
    assert context.grad.abs().sum() > 0


def test_text_errors_say_how_to_fix(backbone, ids):
    with pytest.raises(ValueError, match="context_length"):
        backbone.encode_text(ids, context=torch.zeros(39, backbone.text_width))
    with pytest.raises(ValueError, match="no <eos>"):
        backbone.encode_text(torch.ones(1, 5, dtype=torch.long))
    with pytest.raises(TypeError, match="int64"):
        backbone.encode_text(ids.int())
    with pytest.raises(ValueError, match="context holds 40"):
        backbone.tokenize(["a " * 45])


def test_save_load_round_trip(backbone, images, tmp_path):
    backbone.save_pretrained(tmp_path)
    loaded = ClipBackbone.from_pretrained(tmp_path)
    assert states_equal(state_copy(backbone), state_copy(loaded))
    with torch.no_grad():
        assert torch.equal(backbone.encode_image(images).embeds, loaded.encode_image(images).embeds)
    assert loaded.parameter_count().trainable == 0


def test_from_pretrained_is_local_only(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a local directory"):
        ClipBackbone.from_pretrained("openai/clip-vit-base-patch32")
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors"):
        ClipBackbone.from_pretrained(tmp_path)


def test_checkpoint_not_matching_config(backbone, tmp_path):
    backbone.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["vision_config"]["hidden_size"] = 48
    config["vision_config"]["intermediate_size"] = 96
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"does not match .*checkpoint \(32.*\) vs config \(48"):
        ClipBackbone.from_pretrained(tmp_path)


def test_backbone_without_expected_towers():
    vision_only = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2
        )
    )
    with pytest.raises(TypeError, match=r"lacks .*text_model.*pass a transformers.CLIPModel"):
        ClipBackbone(vision_only)


def test_config_validation_and_round_trip():
    cfg = TinyClipConfig(patch_size=4)
    assert TinyClipConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown keys"):
        TinyClipConfig.from_dict({"width": 3})
    with pytest.raises(ValueError, match="not a multiple of patch_size"):
        TinyClipConfig(patch_size=5)
    with pytest.raises(ValueError, match="not divisible"):
        TinyClipConfig(vision_width=30, vision_heads=4)


def test_tokenizer_larger_than_vocab_is_rejected():
    with pytest.raises(ValueError, match="vocab_size"):
        ClipBackbone.from_config(TinyClipConfig(vocab_size=10))
