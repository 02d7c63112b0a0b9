"""Adaptation methods (one file each) and a name -> method registry."""

from __future__ import annotations

from typing import Any

from visionkit.methods.base import AdaptedModel
from visionkit.methods.context import ContextClassifier
from visionkit.methods.invariant_tta import InvariantTTA, InvariantTTAConfig
from visionkit.methods.late_fusion import LateFusion, LateFusionConfig
from visionkit.methods.mope import MoPE, MoPEConfig
from visionkit.methods.prompt_tuning import DeepPromptTuning, PromptTuningConfig
from visionkit.methods.tpt import TPT, TPTConfig
from visionkit.methods.uit import UIT, UITConfig

#: Trained methods: name -> (model class, config class).
TRAINED: dict[str, tuple[type[AdaptedModel], type[Any]]] = {
    "mope": (MoPE, MoPEConfig),
    "prompt_tuning": (DeepPromptTuning, PromptTuningConfig),
    "late_fusion": (LateFusion, LateFusionConfig),
    "uit": (UIT, UITConfig),
}
#: Test-time methods: name -> (adapter class, config class).
TEST_TIME: dict[str, tuple[type[Any], type[Any]]] = {
    "invariant_tta": (InvariantTTA, InvariantTTAConfig),
    "tpt": (TPT, TPTConfig),
}


def get_method(name: str) -> tuple[type[Any], type[Any]]:
    """Return ``(class, config class)`` of a method by name.

    Examples
    --------
    >>> get_method("mope")[0].__name__
    'MoPE'
    >>> get_method("vpt")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    KeyError: "unknown method 'vpt'; valid names: mope, prompt_tuning, late_fusion, uit, ..."
    """
    registry = {**TRAINED, **TEST_TIME}
    if name not in registry:
        raise KeyError(f"unknown method {name!r}; valid names: {', '.join(registry)}")
    return registry[name]


__all__ = [
    "TEST_TIME",
    "TPT",
    "TRAINED",
    "UIT",
    "AdaptedModel",
    "ContextClassifier",
    "DeepPromptTuning",
    "InvariantTTA",
    "InvariantTTAConfig",
    "LateFusion",
    "LateFusionConfig",
    "MoPE",
    "MoPEConfig",
    "PromptTuningConfig",
    "TPTConfig",
    "UITConfig",
    "get_method",
]
