r"""Late fusion: a head on the concatenated frozen image and text features (MoPE baseline).

Logits :math:`= h([\,f_v(x); f_t(t)\,])` with a linear head (``hidden = 0``,
:math:`(D_v + D_t + 1) C` parameters) or a one-hidden-layer MLP
(:math:`(D_v + D_t + 1) H + (H + 1) C`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from visionkit.backbones.base import DualEncoder
from visionkit.methods.base import AdaptedModel, check_labels


@dataclass(frozen=True)
class LateFusionConfig:
    """Late-fusion head: ``hidden = 0`` gives a linear head, otherwise a GELU MLP."""

    num_classes: int
    hidden: int = 0

    def __post_init__(self) -> None:
        if self.num_classes < 1 or self.hidden < 0:
            raise ValueError("LateFusionConfig: num_classes > 0 and hidden >= 0 required")


def late_fusion_parameter_count(
    config: LateFusionConfig, vision_width: int, text_width: int
) -> int:
    """Closed-form trainable parameter count.

    Examples
    --------
    >>> late_fusion_parameter_count(LateFusionConfig(2), 64, 64)
    258
    """
    d = vision_width + text_width
    if config.hidden == 0:
        return (d + 1) * config.num_classes
    return (d + 1) * config.hidden + (config.hidden + 1) * config.num_classes


def matched_hidden(target: int, num_classes: int, vision_width: int, text_width: int) -> int:
    """MLP width whose late-fusion head has closest to ``target`` trainable parameters.

    Examples
    --------
    >>> h = matched_hidden(20_000, 3, 64, 64)
    >>> late_fusion_parameter_count(LateFusionConfig(3, hidden=h), 64, 64)
    19935
    """
    d = vision_width + text_width
    return max(1, round((target - num_classes) / (d + 1 + num_classes)))


class LateFusion(AdaptedModel):
    """Classifier on frozen, concatenated image and text features.

    Examples
    --------
    >>> from visionkit.backbones import ClipBackbone, TinyClipConfig
    >>> bb = ClipBackbone.from_config(TinyClipConfig(vision_layers=1, text_layers=1))
    >>> LateFusion(bb, LateFusionConfig(3))(torch.rand(2, 3, 32, 32), bb.tokenize(["a", "b"])).shape
    torch.Size([2, 3])
    """

    name = "late_fusion"

    def __init__(self, backbone: DualEncoder, config: LateFusionConfig, *, seed: int = 0) -> None:
        super().__init__()
        self.backbone = backbone
        self.config = config
        d = backbone.vision_width + backbone.text_width
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            if config.hidden == 0:
                self.head: nn.Module = nn.Linear(d, config.num_classes)
            else:
                self.head = nn.Sequential(
                    nn.Linear(d, config.hidden),
                    nn.GELU(),
                    nn.Linear(config.hidden, config.num_classes),
                )

    def features(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Frozen ``[image; text]`` features ``(B, D_v + D_t)``."""
        with torch.no_grad():
            image = self.backbone.encode_image(pixel_values).pooled
            text = self.backbone.encode_text(input_ids).pooled
        return torch.cat([image, text], dim=-1)

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, C)``."""
        return self.head(self.features(pixel_values, input_ids))

    def loss(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """Cross-entropy of the logits."""
        check_labels(labels, self.config.num_classes, "LateFusion.loss")
        return F.cross_entropy(self(pixel_values, input_ids), labels)

    def predict(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        return self(pixel_values, input_ids)
