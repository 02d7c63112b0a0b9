"""Forecasters: objects that turn history clips into forecasts in physical units.

:class:`Forecaster` is the common interface (``predict``, ``t_in``, ``num_parameters``);
:class:`NeuralForecaster` wraps a trained network (PastNet, SimVP, FNO) with the normalisation
fitted on its training data and saves/loads both as one safetensors checkpoint. NaN cells of
the last input frame stay NaN in every forecast. Pure numpy/torch (no xarray).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from esmscale.devices import autocast, model_on, resolve_device, to_device
from esmscale.errors import EsmscaleError
from esmscale.forecast.data import Normalisation, pad_to_multiple
from esmscale.io.checkpoint import read_checkpoint, write_checkpoint
from esmscale.models.fno import FNO2d
from esmscale.models.pastnet import PastNet
from esmscale.models.simvp import SimVP
from esmscale.registry import Registry

__all__ = ["NETWORKS", "Forecaster", "NeuralForecaster"]

#: Trainable forecasting networks by ``config.kind``; each class has ``config_class``.
NETWORKS: Registry[Any] = Registry(
    "forecasting network",
    hint="Baselines without training: see esmscale.forecast.available_methods().",
)
for _net in (PastNet, SimVP, FNO2d):
    NETWORKS.register(_net.config_class.kind, _net)


class Forecaster:
    """Interface of every forecast method.

    ``predict(history, lead, target_times)`` takes ``(B, t_in, C, H, W)`` physical values (NaN
    allowed) and returns ``(B, lead, C, H, W)``; ``target_times`` (``(B, lead)``) are the valid
    times, used by methods such as climatology.

    Examples
    --------
    A forecaster needs ``name``, ``t_in`` and ``predict``; ``_check`` validates the history:

    >>> class LastFrameTimes(Forecaster):
    ...     name, t_in = "last-frame-times", 1
    ...     def __init__(self, factor):
    ...         self.factor = factor
    ...     def predict(self, history, lead, target_times=None):
    ...         self._check(history, lead)
    ...         return np.repeat(history[:, -1:] * self.factor, lead, axis=1)
    >>> LastFrameTimes(2.0).predict(np.ones((1, 1, 1, 2, 2)), lead=3)[0, :, 0, 0, 0].tolist()
    [2.0, 2.0, 2.0]
    >>> LastFrameTimes(2.0).predict(np.ones((1, 2, 1, 2, 2)), lead=3)
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: last-frame-times: history must be (batch, 1, channel, y, x), ...
    """

    name: str = "forecaster"
    t_in: int = 1

    def predict(
        self, history: np.ndarray, lead: int, target_times: np.ndarray | None = None
    ) -> np.ndarray:
        """Forecast ``lead`` steps after the last frame of each history clip."""
        raise NotImplementedError

    def num_parameters(self) -> int:
        """Number of fitted parameters (0 for parameter-free methods)."""
        return 0

    def _check(self, history: np.ndarray, lead: int) -> None:
        if history.ndim != 5 or history.shape[1] != self.t_in:
            raise EsmscaleError(
                f"{self.name}: history must be (batch, {self.t_in}, channel, y, x), got "
                f"{history.shape}."
            )
        if lead < 1:
            raise EsmscaleError(f"{self.name}: lead={lead} must be >= 1.")


class NeuralForecaster(Forecaster):
    """A trained network with its normalisation, grid padding and training record.

    Parameters
    ----------
    net
        :class:`~esmscale.models.pastnet.PastNet`, ``SimVP`` or ``FNO2d``.
    norm
        Normalisation fitted on the training period.
    info
        Metadata kept with the model (variable, units, channel names, time step, history).

    Examples
    --------
    An untrained FNO with a normalisation fitted on random fields, saved and loaded back:

    >>> import tempfile
    >>> from esmscale.models.fno import FNO2d, FNOConfig
    >>> _ = torch.manual_seed(0)
    >>> net = FNO2d(FNOConfig(t_in=2, t_out=1, width=8, modes=2, layers=1))
    >>> values = np.random.default_rng(0).normal(280.0, 5.0, (10, 1, 8, 8))  # (time, C, y, x)
    >>> model = NeuralForecaster(net, Normalisation.fit(values), {"variable": "tas"})
    >>> model.name, model.t_in, model.channels
    ('fno', 2, 1)
    >>> history = values[None, :2]
    >>> out = model.predict(history, lead=3)  # autoregressive beyond t_out=1
    >>> out.shape, out.dtype
    ((1, 3, 1, 8, 8), dtype('float32'))
    >>> folder = model.save_pretrained(tempfile.mkdtemp())
    >>> again = NeuralForecaster.from_pretrained(folder)
    >>> again.info["variable"], bool(np.allclose(again.predict(history, lead=3), out))
    ('tas', True)
    """

    def __init__(self, net: Any, norm: Normalisation, info: dict[str, Any] | None = None) -> None:
        self.net = net.eval()
        self.norm = norm
        self.info = dict(info or {})
        self.name = str(self.info.get("name", net.config.kind))
        self.t_in = int(net.config.t_in)
        self.t_out = int(net.config.t_out)
        self.sha256: str | None = None
        self.source: str | None = None

    @property
    def channels(self) -> int:
        """Channels per frame."""
        return int(self.net.config.in_channels)

    def num_parameters(self) -> int:
        """Number of network parameters."""
        return int(self.net.num_parameters())

    def predict(
        self,
        history: np.ndarray,
        lead: int,
        target_times: np.ndarray | None = None,
        batch_size: int = 16,
        *,
        device: str = "cpu",
        precision: str = "fp32",
    ) -> np.ndarray:
        """Forecast ``lead`` steps (autoregressively beyond ``t_out``) in physical units.

        ``device`` and ``precision`` choose where and how the network runs
        (:mod:`esmscale.devices`); the result is float32 on the host.
        """
        self._check(history, lead)
        if history.shape[2] != self.channels:
            raise EsmscaleError(
                f"{self.name} was trained on {self.channels} channel(s) but the input has "
                f"{history.shape[2]}; pass the same channels (in the same order)."
            )
        h, w = history.shape[-2:]
        nan = ~np.isfinite(history[:, -1])
        multiple = self.net.config.multiple
        x = pad_to_multiple(self.norm.forward(history), multiple)
        keep = pad_to_multiple((~nan).astype(np.float32), multiple)[:, None]
        out = []
        dev = resolve_device(device)
        net = model_on(self.net, dev)
        with torch.inference_mode(), autocast(dev, precision):
            for i in range(0, x.shape[0], batch_size):
                clip = to_device(x[i : i + batch_size], dev)
                valid = to_device(keep[i : i + batch_size], dev)
                frames: list[torch.Tensor] = []
                while sum(f.shape[1] for f in frames) < lead:
                    y = net(clip).float() * valid
                    frames.append(y)
                    clip = torch.cat([clip, y], dim=1)[:, -self.t_in :]
                out.append(torch.cat(frames, dim=1)[:, :lead, ..., :h, :w].cpu().numpy())
        y = self.norm.inverse(np.concatenate(out))
        y[np.broadcast_to(nan[:, None], y.shape)] = np.nan
        return y

    # persistence ------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write the network, its config, the normalisation and ``info`` (safetensors + JSON)."""
        cfg = self.net.checkpoint_config(normalisation=self.norm.to_dict(), forecast=self.info)
        return write_checkpoint(directory, dict(self.net.state_dict()), cfg)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str]) -> NeuralForecaster:
        """Load a checkpoint written by :meth:`save_pretrained` (pickles are refused)."""
        tensors, cfg, sha = read_checkpoint(path)
        kind = cfg.get("model_kind")
        if kind not in NETWORKS or "normalisation" not in cfg:
            raise EsmscaleError(
                f"{path}: not an esmscale forecast checkpoint (model_kind={kind!r}; known "
                f"{sorted(NETWORKS)}); write one with esmscale.forecast.train(..., output_dir=)."
            )
        net_cls = NETWORKS.get(str(kind))
        net = net_cls.load_weights(net_cls.config_class.from_dict(cfg["model"]), tensors, path)
        model = cls(net, Normalisation.from_dict(cfg["normalisation"]), cfg.get("forecast"))
        model.sha256 = sha
        model.source = str(Path(path).resolve())
        return model

    def __repr__(self) -> str:
        return f"NeuralForecaster({self.net!r}, variable={self.info.get('variable')!r})"
