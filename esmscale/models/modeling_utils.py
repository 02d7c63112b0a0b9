"""Model plumbing shared by every network: configs from dicts, and save/load of weights.

- :func:`config_from_dict` builds a (frozen) config dataclass from its plain-JSON form and
  refuses unknown keys, naming them and the known ones.
- :class:`PretrainedMixin` gives a network ``save_pretrained`` / ``from_pretrained``
  (``model.safetensors`` + ``config.json`` through :mod:`esmscale.io.checkpoint`; pickles are
  refused), ``load_weights`` and ``num_parameters``. A network class sets ``config_class``
  and takes its config as the only constructor argument. When the config class has a
  ``kind`` class attribute (forecast networks), checkpoints record it as ``model_kind`` and
  loading checks it.

Pure torch (no xarray).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import torch
from torch import nn

from esmscale._version import __version__
from esmscale.errors import EsmscaleError
from esmscale.io.checkpoint import read_checkpoint, write_checkpoint

__all__ = ["ConfigMixin", "PretrainedMixin", "config_from_dict"]

_C = TypeVar("_C")
_M = TypeVar("_M", bound="PretrainedMixin")


def config_from_dict(cls: type[_C], d: dict[str, Any], tuples: tuple[str, ...] = ()) -> _C:
    """Build the dataclass ``cls`` from a dict; unknown keys are an error naming them.

    Parameters
    ----------
    cls
        A dataclass (usually frozen) whose fields are the allowed keys.
    d
        Plain-JSON form, e.g. from ``to_dict`` or a ``config.json``.
    tuples
        Fields stored as JSON lists that the dataclass holds as tuples.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Cfg:
    ...     size: tuple[int, ...] = (1,)
    >>> config_from_dict(Cfg, {"size": [2, 3]}, tuples=("size",))
    Cfg(size=(2, 3))
    >>> config_from_dict(Cfg, {"colour": 1})
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: Cfg has unknown keys ['colour']; known keys: ['size']. ...
    """
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(d) - known
    if unknown:
        raise EsmscaleError(
            f"{cls.__name__} has unknown keys {sorted(unknown)}; known keys: {sorted(known)}. "
            "Remove them (a config written by a newer esmscale needs that version)."
        )
    d = {k: (tuple(v) if k in tuples and isinstance(v, list) else v) for k, v in d.items()}
    return cls(**d)


class ConfigMixin:
    """``to_dict`` / ``from_dict`` / ``replace`` for a frozen config dataclass.

    ``to_dict`` is :func:`dataclasses.asdict`, ``from_dict`` is :func:`config_from_dict`
    (fields named in ``tuple_fields`` come back as tuples), ``replace`` is
    :func:`dataclasses.replace`.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class BoxConfig(ConfigMixin):
    ...     tuple_fields = ("size",)
    ...     size: tuple[int, ...] = (8, 8)
    ...     name: str = "box"
    >>> cfg = BoxConfig()
    >>> cfg.to_dict()
    {'size': (8, 8), 'name': 'box'}
    >>> BoxConfig.from_dict({"size": [4, 2]})  # a JSON list comes back as a tuple
    BoxConfig(size=(4, 2), name='box')
    >>> cfg.replace(name="tiny"), cfg.name  # a copy: the config itself is frozen
    (BoxConfig(size=(8, 8), name='tiny'), 'box')
    """

    tuple_fields: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form; :meth:`from_dict` inverts it."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        return config_from_dict(cls, d, cls.tuple_fields)

    def replace(self, **changes: Any) -> Self:
        """Copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


class PretrainedMixin:
    """``save_pretrained`` / ``from_pretrained`` (safetensors + JSON config) for a network.

    A subclass (also an :class:`torch.nn.Module`) sets ``config_class`` (a dataclass with
    ``to_dict``/``from_dict``) and takes the config as its only constructor argument.
    ``from_pretrained`` sets ``sha256`` (of the weights file) and ``source`` (its directory).

    Examples
    --------
    >>> import tempfile
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class TinyConfig(ConfigMixin):
    ...     width: int = 3
    >>> class Tiny(PretrainedMixin, nn.Module):
    ...     config_class = TinyConfig
    ...     def __init__(self, config):
    ...         super().__init__()
    ...         self.config = config
    ...         self.layer = nn.Linear(config.width, 1)
    >>> net = Tiny(TinyConfig(width=4))
    >>> folder = net.save_pretrained(Path(tempfile.mkdtemp()) / "tiny")
    >>> back = Tiny.from_pretrained(folder)
    >>> back.config, back.num_parameters(), torch.equal(back.layer.weight, net.layer.weight)
    (TinyConfig(width=4), 5, True)
    >>> back.sha256 is not None, back.source == str(folder.resolve())
    (True, True)
    """

    config_class: ClassVar[Any]
    config: Any
    sha256: str | None = None
    source: str | None = None

    @classmethod
    def _kind(cls) -> str | None:
        """The ``model_kind`` recorded in checkpoints (None: not recorded, not checked)."""
        return getattr(cls.config_class, "kind", None)

    def checkpoint_config(self, **extra: Any) -> dict[str, Any]:
        """The JSON config written beside the weights: the model config plus ``extra``."""
        cfg: dict[str, Any] = {"model": self.config.to_dict(), "esmscale_version": __version__}
        if self._kind() is not None:
            cfg["model_kind"] = self._kind()
        return {**cfg, **extra}

    def save_pretrained(self, directory: str | os.PathLike[str], **extra: Any) -> Path:
        """Write ``model.safetensors`` and ``config.json`` to ``directory`` (atomically)."""
        assert isinstance(self, nn.Module)
        return write_checkpoint(directory, dict(self.state_dict()), self.checkpoint_config(**extra))

    @classmethod
    def load_weights(
        cls: type[_M], config: Any, tensors: dict[str, torch.Tensor], path: str | os.PathLike[str]
    ) -> _M:
        """Build from ``config`` and load ``tensors`` (eval mode); mismatches name the keys."""
        model = cls(config)  # type: ignore[call-arg]
        assert isinstance(model, nn.Module)
        try:
            missing, unexpected = model.load_state_dict(tensors, strict=False)
        except RuntimeError as err:  # shape mismatch
            raise EsmscaleError(
                f"{path}: weights do not match the config ({str(err).splitlines()[-1].strip()}); "
                "the checkpoint is from a different architecture."
            ) from err
        if missing or unexpected:
            raise EsmscaleError(
                f"{path}: weights do not match the config (missing {missing[:3]}, unexpected "
                f"{unexpected[:3]}); the checkpoint is from a different architecture."
            )
        model.eval()
        return model

    @classmethod
    def from_pretrained(
        cls: type[_M], path: str | os.PathLike[str], *, device: str | None = None
    ) -> _M:
        """Load from a directory written by :meth:`save_pretrained` or its ``.safetensors`` file.

        Pickle files are refused with :class:`~esmscale.errors.CheckpointError`. Tensors are
        read onto the CPU whatever device wrote them, then moved to ``device`` (None: stay on
        the CPU; see :func:`esmscale.devices.resolve_device`).
        """
        tensors, cfg, sha = read_checkpoint(path)
        kind = cls._kind()
        if "model" not in cfg:
            raise EsmscaleError(
                f"{path}: config has no 'model' section; not an esmscale model checkpoint "
                "(write one with save_pretrained())."
            )
        if kind is not None and cfg.get("model_kind") != kind:
            raise EsmscaleError(
                f"{path}: not a {kind} checkpoint (model_kind={cfg.get('model_kind')!r}); load "
                "it with the class of that kind."
            )
        model = cls.load_weights(cls.config_class.from_dict(cfg["model"]), tensors, path)
        model.sha256 = sha
        model.source = str(Path(path).resolve())
        if device is not None:
            from esmscale.devices import resolve_device

            assert isinstance(model, nn.Module)
            model.to(resolve_device(device))
        return model

    def num_parameters(self) -> int:
        """Number of parameters."""
        assert isinstance(self, nn.Module)
        return sum(p.numel() for p in self.parameters())
