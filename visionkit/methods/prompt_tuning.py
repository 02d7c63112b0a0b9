r"""Deep visual prompt tuning (VPT-deep) with a fusion head: the MoPE baseline.

Before each prompted vision layer :math:`l` the previous prompt outputs are replaced by learnable
tokens :math:`P_l \in \mathbb{R}^{L \times D_v}`; a linear head reads
``[image feature; text feature]`` from the frozen towers. Trainable parameters:
:math:`n_{layers} L D_v + (D_v + D_t + 1) C`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from visionkit.backbones.base import DualEncoder
from visionkit.methods.base import AdaptedModel, check_labels


@dataclass(frozen=True)
class PromptTuningConfig:
    """Deep prompt tuning hyper-parameters.

    Attributes
    ----------
    num_classes : int
        Classes of the fusion head.
    prompt_length : int
        Prompt tokens per layer.
    prompt_layers : tuple of int, optional
        Vision layers that get prompts (default: all).
    use_text : bool
        Feed the frozen text feature to the head (multimodal fusion) or only the image feature.
    init_std : float
        Standard deviation of the prompt initialisation.
    """

    num_classes: int
    prompt_length: int = 12
    prompt_layers: tuple[int, ...] | None = None
    use_text: bool = True
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.num_classes < 1 or self.prompt_length < 1:
            raise ValueError("PromptTuningConfig: num_classes and prompt_length must be positive")


def prompt_tuning_parameter_count(
    config: PromptTuningConfig, vision_width: int, text_width: int, num_layers: int
) -> int:
    """Closed-form trainable parameter count.

    Examples
    --------
    >>> prompt_tuning_parameter_count(PromptTuningConfig(2, prompt_length=10), 64, 64, 2)
    1538
    """
    layers = num_layers if config.prompt_layers is None else len(config.prompt_layers)
    head_in = vision_width + (text_width if config.use_text else 0)
    return layers * config.prompt_length * vision_width + (head_in + 1) * config.num_classes


def matched_prompt_length(
    target: int, num_classes: int, vision_width: int, text_width: int, num_layers: int
) -> int:
    """Prompt length whose deep prompt tuning has closest to ``target`` trainable parameters.

    Examples
    --------
    >>> matched_prompt_length(1538, 2, 64, 64, 2)
    10
    """
    head = (vision_width + text_width + 1) * num_classes
    return max(1, round((target - head) / (num_layers * vision_width)))


class DeepPromptTuning(AdaptedModel):
    """Deep prompt tuning on a frozen :class:`DualEncoder`.

    Examples
    --------
    >>> from visionkit.backbones import ClipBackbone, TinyClipConfig
    >>> bb = ClipBackbone.from_config(TinyClipConfig(vision_layers=1, text_layers=1))
    >>> model = DeepPromptTuning(bb, PromptTuningConfig(num_classes=3, prompt_length=4))
    >>> model(torch.rand(2, 3, 32, 32), bb.tokenize(["a", "b"])).shape
    torch.Size([2, 3])
    """

    name = "prompt_tuning"

    def __init__(self, backbone: DualEncoder, config: PromptTuningConfig, *, seed: int = 0) -> None:
        super().__init__()
        self.backbone = backbone
        self.config = config
        n = backbone.num_vision_layers
        layers = tuple(range(n)) if config.prompt_layers is None else config.prompt_layers
        if any(not 0 <= i < n for i in layers) or len(set(layers)) != len(layers):
            raise ValueError(f"prompt_layers {layers} must be distinct indices in [0, {n})")
        self.layers = tuple(sorted(layers))
        dv, dt = backbone.vision_width, backbone.text_width
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.prompts = nn.Parameter(
                torch.randn(len(self.layers), config.prompt_length, dv) * config.init_std
            )
            self.head = nn.Linear(dv + (dt if config.use_text else 0), config.num_classes)

    def forward(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Class logits ``(B, C)``."""
        per_layer: list[torch.Tensor | None] = [None] * self.backbone.num_vision_layers
        for j, layer in enumerate(self.layers):
            per_layer[layer] = self.prompts[j]
        image = self.backbone.encode_image(pixel_values, per_layer, prompt_mode="replace").pooled
        if not self.config.use_text:
            return self.head(image)
        if input_ids is None:
            raise ValueError("DeepPromptTuning with use_text=True needs input_ids (captions)")
        with torch.no_grad():
            text = self.backbone.encode_text(input_ids).pooled
        return self.head(torch.cat([image, text], dim=-1))

    def loss(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """Cross-entropy of the logits."""
        check_labels(labels, self.config.num_classes, "DeepPromptTuning.loss")
        return F.cross_entropy(self(pixel_values, input_ids), labels)

    def predict(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        return self(pixel_values, input_ids)
