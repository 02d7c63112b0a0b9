"""Save and load trained methods as ``method.json`` + ``method.safetensors`` (never pickle)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from visionkit.backbones.base import DualEncoder
from visionkit.methods import TRAINED
from visionkit.methods.base import AdaptedModel, config_from_dict

FORMAT_VERSION = 1


def save_method(model: AdaptedModel, directory: str | Path) -> Path:
    """Write the method's name, config and trainable tensors into ``directory``.

    The backbone is not saved (except for UIT with a fine-tuned backbone, whose whole state is
    trainable); save it with ``backbone.save_pretrained``.
    """
    if model.name not in TRAINED:
        raise ValueError(f"save_method: {type(model).__name__} is not a registered trained method")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    meta = {
        "format_version": FORMAT_VERSION,
        "method": model.name,
        "config": dataclasses.asdict(model.config),
    }
    (path / "method.json").write_text(json.dumps(meta, indent=2) + "\n")
    state = {k: v.contiguous() for k, v in model.trainable_state_dict().items()}
    save_file(state, str(path / "method.safetensors"))
    return path


def read_method_config(directory: str | Path) -> tuple[str, Any]:
    """Method name and config object stored in ``directory/method.json``."""
    path = Path(directory) / "method.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; write it with visionkit.save_method")
    meta = json.loads(path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: format_version {meta.get('format_version')} is not {FORMAT_VERSION}"
        )
    name = meta.get("method")
    if name not in TRAINED:
        raise ValueError(f"{path}: unknown method {name!r}; valid names: {', '.join(TRAINED)}")
    _, config_cls = TRAINED[name]
    return name, config_from_dict(config_cls, meta["config"])


def load_method(directory: str | Path, backbone: DualEncoder) -> AdaptedModel:
    """Rebuild a method saved by :func:`save_method` around ``backbone``.

    Raises
    ------
    ValueError
        If the stored tensors do not match the config and backbone (names every mismatch).
    """
    name, config = read_method_config(directory)
    model_cls, _ = TRAINED[name]
    model = model_cls(backbone, config)
    weights = Path(directory) / "method.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} not found next to method.json")
    model.load_trainable_state_dict(load_file(str(weights)))
    model.eval()
    return model
