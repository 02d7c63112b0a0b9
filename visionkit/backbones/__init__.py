"""Dual-encoder backbones with prompt hooks."""

from visionkit.backbones.base import (
    DualEncoder,
    ParameterCount,
    PromptFn,
    TextOutput,
    VisionOutput,
    count_parameters,
)
from visionkit.backbones.clip import ClipBackbone, TinyClipConfig

__all__ = [
    "ClipBackbone",
    "DualEncoder",
    "ParameterCount",
    "PromptFn",
    "TextOutput",
    "TinyClipConfig",
    "VisionOutput",
    "count_parameters",
]
