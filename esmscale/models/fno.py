"""A small 2-D Fourier neural operator forecaster with PastNet's interface (Li et al. 2021).

Time is stacked in channels; the lowest Fourier modes are mixed by learned complex weights.
Maps normalised clips ``(B, T_in, C, H, W)`` to ``(B, T_out, C, H, W)`` on any grid size;
``forward_train`` returns the forecast and an empty statistics dict. Saves and loads like every
esmscale network (:class:`~esmscale.models.modeling_utils.PretrainedMixin`). Pure torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from esmscale.models.modeling_utils import ConfigMixin, PretrainedMixin
from esmscale.models.pastnet import check_clip

__all__ = ["FNO2d", "FNOConfig"]


@dataclass(frozen=True)
class FNOConfig(ConfigMixin):
    """Small 2-D Fourier neural operator with time stacked in channels.

    Examples
    --------
    >>> FNOConfig.from_dict(FNOConfig(modes=6).to_dict()).modes
    6
    """

    kind: ClassVar[str] = "fno"
    in_channels: int = 1
    t_in: int = 10
    t_out: int = 10
    width: int = 20
    modes: int = 6
    layers: int = 4
    residual: bool = False

    @property
    def multiple(self) -> int:
        """Any grid works."""
        return 1


class _SpectralConv(nn.Module):
    """Keep the lowest ``modes`` Fourier modes and mix channels with complex weights."""

    def __init__(self, width: int, modes: int) -> None:
        super().__init__()
        self.modes = modes
        scale = 1.0 / (width * width)
        self.w = nn.Parameter(scale * torch.randn(2, width, width, 2 * modes, modes, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        spec = torch.fft.rfft2(x, norm="ortho")
        m1, m2 = min(self.modes, h // 2), min(self.modes, w // 2 + 1)
        out = torch.zeros_like(spec)
        for part, rows in enumerate((slice(0, m1), slice(h - m1, h))):
            wt = torch.view_as_complex(self.w[part][:, :, :m1, :m2].contiguous())
            out[:, :, rows, :m2] = torch.einsum("bixy,ioxy->boxy", spec[:, :, rows, :m2], wt)
        return torch.fft.irfft2(out, s=(h, w), norm="ortho")


class FNO2d(PretrainedMixin, nn.Module):
    """FNO forecaster: lift, ``layers`` x (spectral conv + 1x1 conv, GELU), project.

    Examples
    --------
    >>> net = FNO2d(FNOConfig(t_in=3, t_out=2, width=8, modes=4, layers=2))
    >>> net(torch.zeros(1, 3, 1, 10, 14)).shape
    torch.Size([1, 2, 1, 10, 14])
    """

    config_class = FNOConfig

    def __init__(self, config: FNOConfig) -> None:
        super().__init__()
        self.config = config
        c, w = config.in_channels, config.width
        self.lift = nn.Conv2d(config.t_in * c + 2, w, 1)
        self.spectral = nn.ModuleList(_SpectralConv(w, config.modes) for _ in range(config.layers))
        self.pointwise = nn.ModuleList(nn.Conv2d(w, w, 1) for _ in range(config.layers))
        self.project = nn.Sequential(
            nn.Conv2d(w, 4 * w, 1), nn.GELU(), nn.Conv2d(4 * w, c * config.t_out, 1)
        )

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Forecast and an empty statistics dict."""
        cfg = self.config
        check_clip(x, cfg, 1, "FNO2d")
        b, t, c, h, w = x.shape
        gy, gx = torch.meshgrid(
            torch.linspace(0, 1, h, dtype=x.dtype),
            torch.linspace(0, 1, w, dtype=x.dtype),
            indexing="ij",
        )
        grid = torch.stack([gy, gx]).expand(b, 2, h, w)
        z = self.lift(torch.cat([x.reshape(b, t * c, h, w), grid], dim=1))
        for i, (spec, point) in enumerate(zip(self.spectral, self.pointwise, strict=True)):
            z = spec(z) + point(z)
            z = F.gelu(z) if i < len(self.spectral) - 1 else z
        out = self.project(z).reshape(b, cfg.t_out, c, h, w)
        return (out + x[:, -1:] if cfg.residual else out), {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forecast ``T_out`` frames."""
        return self.forward_train(x)[0]

    def __repr__(self) -> str:
        c = self.config
        return (
            f"FNO2d(t_in={c.t_in}, t_out={c.t_out}, width={c.width}, modes={c.modes}, "
            f"params={self.num_parameters():,})"
        )
