"""Shipped checkpoints and the name -> model registry.

``synthetic-pr-4x`` is trained on the package's own synthetic precipitation world
(:func:`esmscale.datasets.synthetic_precip`) at 4x downscaling; see ``docs/model_card.md``.
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esmscale.errors import EsmscaleError
from esmscale.models.consistency import ConsistencyModel

__all__ = ["ModelRef", "available_models", "cached_model", "load_model", "model_path", "model_ref"]

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


@dataclass(frozen=True)
class ModelRef:
    """A small, picklable reference to a checkpoint on disk, sent to Dask tasks.

    Tasks turn it into a model with :func:`cached_model`, which loads each checkpoint once per
    process (worker), not once per task. ``cls`` is the model class (anything with
    ``from_pretrained`` returning an object with a ``sha256`` attribute).
    """

    path: str
    sha256: str
    cls: type = ConsistencyModel


_CACHE: dict[ModelRef, Any] = {}
LOAD_COUNT: dict[ModelRef, int] = {}  # checkpoint loads in this process (for diagnostics)
_LOCK = threading.Lock()


def model_ref(model: Any) -> ModelRef:
    """Reference for ``model``; a model that was never saved is written to a cache folder.

    ``model`` needs ``save_pretrained`` and the ``source``/``sha256`` attributes that
    ``from_pretrained`` sets (consistency models and neural forecasters have them).
    """
    if model.source is None or model.sha256 is None:
        from esmscale.io.checkpoint import file_sha256

        cache = Path(os.environ.get("ESMSCALE_CACHE", Path(tempfile.gettempdir()) / "esmscale"))
        tmp = cache / f"unsaved-{os.getpid()}-{id(model)}"
        model.save_pretrained(tmp)
        model.sha256 = file_sha256(tmp / "model.safetensors")
        model.source = str(tmp.resolve())
    ref = ModelRef(model.source, model.sha256, type(model))
    with _LOCK:
        _CACHE.setdefault(ref, model)
    return ref


def cached_model(ref: ModelRef) -> Any:
    """The model for ``ref``, loaded at most once per process; the sha256 is checked."""
    with _LOCK:
        model = _CACHE.get(ref)
        if model is None:
            model = ref.cls.from_pretrained(ref.path)  # type: ignore[attr-defined]
            if model.sha256 != ref.sha256:
                raise EsmscaleError(
                    f"checkpoint {ref.path} changed on disk (sha256 {model.sha256} != "
                    f"{ref.sha256}); rerun with the current file."
                )
            _CACHE[ref] = model
            LOAD_COUNT[ref] = LOAD_COUNT.get(ref, 0) + 1
        return model
