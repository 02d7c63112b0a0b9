"""Shipped checkpoints: the name -> checkpoint registry (:data:`MODELS`) and :func:`load_model`.

``synthetic-pr-4x`` is trained on the package's own synthetic precipitation world
(:func:`esmscale.datasets.synthetic_precip`) at 4x downscaling; see ``docs/model_card.md``.

The worker model cache (``ModelRef``, ``model_ref``, ``cached_model``, ``LOAD_COUNT``) lives in
:mod:`esmscale.io.model_cache`; its names stay importable from here.
"""

from __future__ import annotations

import os
from pathlib import Path

from esmscale.errors import EsmscaleError
from esmscale.io.model_cache import LOAD_COUNT, ModelRef, cached_model, model_ref
from esmscale.models.consistency import ConsistencyModel
from esmscale.registry import Registry

__all__ = [
    "LOAD_COUNT",
    "MODELS",
    "ModelRef",
    "available_models",
    "cached_model",
    "load_model",
    "model_path",
    "model_ref",
]

_HERE = Path(__file__).parent
#: Shipped checkpoints by name (a directory each; listed only once its weights are installed).
MODELS: Registry[Path] = Registry(
    "shipped model",
    hint="Pass a path to a directory written by save_pretrained() to load your own.",
)
MODELS.register("synthetic-pr-4x", _HERE / "synthetic-pr-4x")


def available_models() -> list[str]:
    """Names of the shipped checkpoints that are installed."""
    return [k for k, v in MODELS.items() if (v / "model.safetensors").exists()]


def model_path(name: str) -> Path:
    """Directory of a shipped checkpoint; the error lists the valid names."""
    if name not in available_models():
        raise EsmscaleError(
            f"no shipped model named {name!r}; known shipped models: {available_models()}. Pass "
            "a path to a directory written by save_pretrained() to load your own."
        )
    return MODELS.get(name)


def load_model(model: str | os.PathLike[str] | ConsistencyModel) -> ConsistencyModel:
    """Return a model given a loaded model, a registered name or a checkpoint path.

    Examples
    --------
    >>> load_model("synthetic-pr-4x").config.factor
    4
    """
    if isinstance(model, ConsistencyModel):
        return model
    if isinstance(model, str) and model in MODELS:
        return ConsistencyModel.from_pretrained(model_path(model))
    if Path(model).exists():
        return ConsistencyModel.from_pretrained(model)
    raise EsmscaleError(
        f"model {str(model)!r} is neither a shipped model name ({available_models()}) nor an "
        "existing checkpoint path."
    )
