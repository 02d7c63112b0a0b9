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
from esmscale.pretrained.catalog import (
    ModelEntry,
    model_catalog,
    parse_model_spec,
    register_model_folder,
    resolve_model,
    verify_sha256,
)
from esmscale.registry import Registry

__all__ = [
    "LOAD_COUNT",
    "MODELS",
    "ModelEntry",
    "ModelRef",
    "available_models",
    "cached_model",
    "load_model",
    "model_catalog",
    "model_path",
    "model_ref",
    "register_model_folder",
    "resolve_model",
]

_HERE = Path(__file__).parent
#: Shipped checkpoints by name (a directory each; listed only once its weights are installed).
MODELS: Registry[Path] = Registry(
    "shipped model",
    hint="Pass a path to a directory written by save_pretrained() to load your own.",
)
MODELS.register("synthetic-pr-4x", _HERE / "synthetic-pr-4x")


def available_models() -> list[str]:
    """Names of the shipped checkpoints that are installed.

    Examples
    --------
    >>> available_models()
    ['synthetic-pr-4x']
    """
    return [k for k, v in MODELS.items() if (v / "model.safetensors").exists()]


def model_path(name: str) -> Path:
    """Directory of a shipped checkpoint; the error lists the valid names.

    Examples
    --------
    >>> sorted(p.name for p in model_path("synthetic-pr-4x").iterdir())
    ['config.json', 'model.safetensors']
    >>> model_path("nope")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: no shipped model named 'nope'; known shipped models: ...
    """
    if name not in available_models():
        raise EsmscaleError(
            f"no shipped model named {name!r}; known shipped models: {available_models()}. Pass "
            "a path to a directory written by save_pretrained() to load your own."
        )
    return MODELS.get(name)


def load_model(model: str | os.PathLike[str] | ConsistencyModel) -> ConsistencyModel:
    """Return a model given a loaded model, a catalog name or a checkpoint path.

    Parameters
    ----------
    model
        A :class:`~esmscale.models.ConsistencyModel` (returned as is); a name from the model
        catalog (``esmscale models``: the shipped models and the user's folders, see
        :mod:`esmscale.pretrained.catalog`), optionally pinned as ``NAME@sha256:HEX``; or a
        folder written by ``save_pretrained`` (also pinnable: ``FOLDER@sha256:HEX``).

    Returns
    -------
    ConsistencyModel
        Its ``sha256`` is that of the weights, checked against the catalog and the pin.

    Examples
    --------
    >>> model = load_model("synthetic-pr-4x")
    >>> model.config.factor
    4
    >>> load_model("synthetic-pr-4x@sha256:" + model.sha256).sha256 == model.sha256
    True
    >>> load_model("synthetic-pr-4x@sha256:" + "0" * 64)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: model 'synthetic-pr-4x': checksum mismatch: expected ...
    """
    if isinstance(model, ConsistencyModel):
        return model
    text = str(model)
    name, pin = parse_model_spec(text)
    entries = {e.name: e for e in model_catalog()}
    if name in entries:
        entry = resolve_model(text)
        loaded = ConsistencyModel.from_pretrained(entry.path)
        verify_sha256(name, entry.sha256, str(loaded.sha256), str(entry.path))
        return loaded
    if Path(name).exists():
        loaded = ConsistencyModel.from_pretrained(name)
        if pin is not None:
            verify_sha256(name, pin, str(loaded.sha256), name)
        return loaded
    user = sorted(n for n, e in entries.items() if e.source != "shipped")
    raise EsmscaleError(
        f"model {text!r} is neither a shipped model name ({available_models()}) nor a user "
        f"model ({user}) nor an existing checkpoint path. `esmscale models` lists the models; "
        "add your own folder of models with esmscale.pretrained.register_model_folder() or "
        "$ESMSCALE_MODELS."
    )
