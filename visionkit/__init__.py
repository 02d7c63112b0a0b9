"""visionkit: prompt-based adaptation of CLIP-style dual encoders, on generated data.

Backbones (:mod:`visionkit.backbones`) wrap a ``transformers`` ``CLIPModel`` (or, optionally,
open_clip) with hooks for deep vision prompts and text context. Methods
(:mod:`visionkit.methods`, one file each): MoPE, deep prompt tuning, late fusion, invariant
test-time prompt tuning, TPT and UIT. Data (:mod:`visionkit.datasets`) is generated in code.

Examples
--------
>>> import torch, visionkit
>>> cfg = visionkit.TinyClipConfig(vision_layers=1, text_layers=1)
>>> bb = visionkit.ClipBackbone.from_config(cfg)
>>> model = visionkit.MoPE(bb, visionkit.MoPEConfig(num_classes=3))
>>> model(torch.rand(1, 3, 32, 32), bb.tokenize(["a red circle"])).logits.shape
torch.Size([1, 3])
"""

from visionkit.api import adapt, evaluate, evaluate_retrieval, load_backbone, pretrain, train
from visionkit.backbones import (
    ClipBackbone,
    DualEncoder,
    ParameterCount,
    TinyClipConfig,
    count_parameters,
)
from visionkit.checkpoint import load_method, save_method
from visionkit.methods import (
    TPT,
    UIT,
    DeepPromptTuning,
    InvariantTTA,
    InvariantTTAConfig,
    LateFusion,
    LateFusionConfig,
    MoPE,
    MoPEConfig,
    PromptTuningConfig,
    TPTConfig,
    UITConfig,
    get_method,
)
from visionkit.tokenizer import WordTokenizer
from visionkit.training import TrainConfig

__version__ = "0.1.0"

__all__ = [
    "TPT",
    "UIT",
    "ClipBackbone",
    "DeepPromptTuning",
    "DualEncoder",
    "InvariantTTA",
    "InvariantTTAConfig",
    "LateFusion",
    "LateFusionConfig",
    "MoPE",
    "MoPEConfig",
    "ParameterCount",
    "PromptTuningConfig",
    "TPTConfig",
    "TinyClipConfig",
    "TrainConfig",
    "UITConfig",
    "WordTokenizer",
    "__version__",
    "adapt",
    "count_parameters",
    "evaluate",
    "evaluate_retrieval",
    "get_method",
    "load_backbone",
    "load_method",
    "pretrain",
    "save_method",
    "train",
]
