import pytest
import torch

from visionkit.methods.mope import MoPEConfig, mope_parameter_count
from visionkit.methods.prompt_tuning import (
    DeepPromptTuning,
    PromptTuningConfig,
    matched_prompt_length,
    prompt_tuning_parameter_count,
)


@pytest.mark.parametrize("use_text", [True, False])
def test_parameter_count_closed_form(backbone, use_text):
    config = PromptTuningConfig(num_classes=4, prompt_length=7, use_text=use_text)
    model = DeepPromptTuning(backbone, config)
    assert model.parameter_count().trainable == prompt_tuning_parameter_count(config, 32, 32, 2)


def test_matched_length_is_within_one_layer_of_tokens():
    target = mope_parameter_count(MoPEConfig(num_classes=3), 32, 32, 2)
    length = matched_prompt_length(target, 3, 32, 32, 2)
    count = prompt_tuning_parameter_count(PromptTuningConfig(3, prompt_length=length), 32, 32, 2)
    assert abs(count - target) <= 2 * 32 / 2


def test_image_only_mode_and_errors(backbone):
    images = torch.rand(2, 3, 32, 32)
    model = DeepPromptTuning(backbone, PromptTuningConfig(num_classes=2, use_text=False))
    assert model(images).shape == (2, 2)
    with pytest.raises(ValueError, match="needs input_ids"):
        DeepPromptTuning(backbone, PromptTuningConfig(num_classes=2))(images)
