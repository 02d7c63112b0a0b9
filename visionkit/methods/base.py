"""Shared parts of the adaptation methods: the trainable-state contract and config helpers."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from visionkit.backbones.base import DualEncoder, ParameterCount, count_parameters

C = TypeVar("C")


def config_from_dict(cls: type[C], values: dict[str, Any]) -> C:
    """Build the frozen config dataclass ``cls`` from ``values``, rejecting unknown keys.

    Lists are turned back into tuples (JSON has no tuples).

    Examples
    --------
    >>> from visionkit.methods.late_fusion import LateFusionConfig
    >>> config_from_dict(LateFusionConfig, {"num_classes": 3})
    LateFusionConfig(num_classes=3, hidden=0)
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {unknown}; valid keys are {sorted(known)}")
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls(**fixed)


class AdaptedModel(nn.Module):
    """A frozen :class:`DualEncoder` plus trainable parts.

    Subclasses set ``name`` (the registry key) and ``config`` (a frozen dataclass). Only the
    parameters outside ``backbone`` are saved by :meth:`trainable_state_dict`.
    """

    name: ClassVar[str] = ""
    backbone: DualEncoder
    config: Any

    def loss(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """Training loss of a batch (``labels``: classes or identities)."""
        raise NotImplementedError

    def predict(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Class logits of image-caption pairs (classification methods)."""
        raise NotImplementedError(f"{type(self).__name__} does not classify pairs")

    def parameter_count(self) -> ParameterCount:
        """Trainable vs frozen parameters of the whole model (backbone included)."""
        return count_parameters(self)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors of everything except the backbone (parameters and buffers)."""
        return {
            k: v.detach().clone()
            for k, v in self.state_dict().items()
            if not k.startswith("backbone.")
        }

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load tensors written by :meth:`trainable_state_dict`; errors name any mismatch."""
        own = self.trainable_state_dict()
        problems = [f"missing {k}" for k in own if k not in state]
        problems += [f"unexpected {k}" for k in state if k not in own]
        problems += [
            f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
            for k, v in own.items()
            if k in state and state[k].shape != v.shape
        ]
        if problems:
            raise ValueError(
                f"{type(self).__name__}: the checkpoint does not match this config/backbone: "
                + "; ".join(problems[:6])
                + ". Load it with the config and backbone it was trained with"
            )
        self.load_state_dict(state, strict=False)


def check_labels(labels: torch.Tensor, num_classes: int, where: str) -> None:
    """Raise if ``labels`` are not int64 class indices in ``[0, num_classes)``."""
    if labels.dtype != torch.long or labels.ndim != 1:
        raise ValueError(
            f"{where}: labels must be a 1-D int64 tensor of class indices, got dtype "
            f"{labels.dtype} and shape {tuple(labels.shape)}"
        )
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"{where}: labels span [{int(labels.min())}, {int(labels.max())}] but the model has "
            f"{num_classes} classes"
        )
