"""Shipped checkpoints and the name -> model registry.

``synthetic-pr-4x`` is trained on the package's own synthetic precipitation world
(:func:`esmscale.datasets.synthetic_precip`) at 4x downscaling; see ``docs/model_card.md``.
"""

from __future__ import annotations

import os
from pathlib import Path

from esmscale.errors import EsmscaleError
from esmscale.models.consistency import ConsistencyModel

__all__ = ["available_models", "load_model", "model_path"]

_HERE = Path(__file__).parent
_REGISTRY: dict[str, Path] = {"synthetic-pr-4x": _HERE / "synthetic-pr-4x"}


def available_models() -> list[str]:
    """Names of the shipped checkpoints that are installed."""
    return sorted(k for k, v in _REGISTRY.items() if (v / "model.safetensors").exists())


def model_path(name: str) -> Path:
    """Directory of a shipped checkpoint; the error lists the valid names."""
    if name not in _REGISTRY or not (_REGISTRY[name] / "model.safetensors").exists():
        raise EsmscaleError(
            f"no shipped model named {name!r}; available: {available_models()}. Pass a path to "
            "a directory written by save_pretrained() to load your own."
        )
    return _REGISTRY[name]


def load_model(model: str | os.PathLike[str] | ConsistencyModel) -> ConsistencyModel:
    """Return a model given a loaded model, a registered name or a checkpoint path.

    Examples
    --------
    >>> load_model("synthetic-pr-4x").config.factor
    4
    """
    if isinstance(model, ConsistencyModel):
        return model
    if isinstance(model, str) and model in _REGISTRY:
        return ConsistencyModel.from_pretrained(model_path(model))
    if Path(model).exists():
        return ConsistencyModel.from_pretrained(model)
    raise EsmscaleError(
        f"model {str(model)!r} is neither a shipped model name ({available_models()}) nor an "
        "existing checkpoint path."
    )
