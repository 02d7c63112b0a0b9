"""SimVP: a small forecast network with PastNet's interface (Gao et al. 2022, simplified).

A per-frame convolutional encoder, a SimVP-style Inception-UNet translator over time stacked
in channels, and a mirrored decoder. Maps normalised clips ``(B, T_in, C, H, W)`` to
``(B, T_out, C, H, W)``; ``forward_train`` returns the forecast and an empty statistics dict.
Saves and loads like every esmscale network
(:class:`~esmscale.models.modeling_utils.PretrainedMixin`). Pure torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from esmscale.errors import EsmscaleError
from esmscale.models.modeling_utils import ConfigMixin, PretrainedMixin
from esmscale.models.pastnet import Decoder, Encoder, Translator, check_clip

__all__ = ["SimVP", "SimVPConfig"]


@dataclass(frozen=True)
class SimVPConfig(ConfigMixin):
    """Small SimVP: per-frame conv encoder, Inception-UNet translator over time, decoder.

    Examples
    --------
    >>> SimVPConfig.from_dict(SimVPConfig(hidden=16).to_dict()).hidden
    16
    """

    kind: ClassVar[str] = "simvp"
    in_channels: int = 1
    t_in: int = 10
    t_out: int = 10
    hidden: int = 16
    res_layers: int = 1
    translator_hidden: int = 64
    translator_blocks: int = 2
    residual: bool = False

    def __post_init__(self) -> None:
        if self.hidden < 2 or self.hidden % 2:
            raise EsmscaleError(f"SimVPConfig.hidden={self.hidden} must be even and >= 2.")

    @property
    def multiple(self) -> int:
        """Grid sizes must be multiples of this (two stride-2 convolutions)."""
        return 4


class SimVP(PretrainedMixin, nn.Module):
    """SimVP-style forecaster (continuous latents, no Fourier branch).

    Examples
    --------
    >>> net = SimVP(SimVPConfig(t_in=3, t_out=2, hidden=8, translator_hidden=16))
    >>> net(torch.zeros(1, 3, 1, 8, 12)).shape
    torch.Size([1, 2, 1, 8, 12])
    """

    config_class = SimVPConfig

    def __init__(self, config: SimVPConfig) -> None:
        super().__init__()
        self.config = config
        c, h = config.in_channels, config.hidden
        self.encoder = Encoder(c, h, config.res_layers)
        self.translator = Translator(
            config.t_in * h, config.t_out * h, config.translator_hidden, config.translator_blocks
        )
        self.decoder = Decoder(h, c, config.res_layers)

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Forecast and an empty statistics dict."""
        cfg = self.config
        check_clip(x, cfg, cfg.multiple, "SimVP")
        b, t, c, hh, ww = x.shape
        z = self.encoder(x.reshape(b * t, c, hh, ww))
        z = self.translator(z.reshape(b, t * cfg.hidden, *z.shape[-2:]))
        out = self.decoder(z.reshape(b * cfg.t_out, cfg.hidden, *z.shape[-2:]))
        out = out.reshape(b, cfg.t_out, c, hh, ww)
        return (out + x[:, -1:] if cfg.residual else out), {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forecast ``T_out`` frames."""
        return self.forward_train(x)[0]

    def __repr__(self) -> str:
        c = self.config
        return f"SimVP(t_in={c.t_in}, t_out={c.t_out}, params={self.num_parameters():,})"
