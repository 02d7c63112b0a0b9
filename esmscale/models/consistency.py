"""The consistency model: a diffusers ``UNet2DModel`` with the consistency parameterisation.

``f(x, t) = c_skip(t) x + c_out(t) F(c_in(t) x, c_noise(t))`` with
``c_skip = sd^2 / ((t - t_min)^2 + sd^2)`` and ``c_out = sd (t - t_min) / sqrt(t^2 + sd^2)``, so
``f(x, t_min) = x`` exactly (the boundary condition). Pure torch; no xarray.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from diffusers import UNet2DModel
from torch import nn

from esmscale.errors import EsmscaleError
from esmscale.models.modeling_utils import ConfigMixin, PretrainedMixin, config_from_dict
from esmscale.models.transforms import DataTransform

__all__ = ["ConsistencyConfig", "ConsistencyModel"]


@dataclass(frozen=True)
class ConsistencyConfig(ConfigMixin):
    """Everything needed to rebuild a consistency model and use it on physical data.

    Parameters
    ----------
    block_out_channels
        Channels of the UNet's resolution levels; its length sets the number of levels, and the
        input size must be divisible by ``2 ** (len - 1)``.
    layers_per_block
        Residual blocks per level.
    sigma_min, sigma_max, sigma_data
        Noise range and data scale of the consistency parameterisation.
    transform
        Data transform between physical units and the network's space.
    factor
        Downscaling factor the model was calibrated for (coarse cell / fine cell).
    grid_spacing
        Fine grid spacing of the training data in degrees (``None`` if unknown).
    patch_size
        Training patch size (cells).
    t_star
        Default noise level used when ``t_star="auto"``; set by calibration.
    name
        Human-readable model name.
    variable
        Name of the trained variable (e.g. ``"pr"``).
    objective
        ``"consistency"`` (one-step sampling) or ``"diffusion"``: the same network as an EDM
        denoiser ``D(x, t)`` (no boundary offset), used by the many-step diffusion-bridge baseline.

    Examples
    --------
    >>> cfg = ConsistencyConfig(block_out_channels=(16, 32))
    >>> ConsistencyConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    block_out_channels: tuple[int, ...] = (32, 32, 64, 64)
    layers_per_block: int = 1
    norm_num_groups: int = 8
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    sigma_data: float = 0.5
    transform: DataTransform = field(default_factory=DataTransform)
    factor: int = 4
    grid_spacing: float | None = None
    patch_size: int = 64
    t_star: float | None = None
    name: str = "esmscale-cm"
    variable: str = "pr"
    objective: Literal["consistency", "diffusion"] = "consistency"

    def __post_init__(self) -> None:
        if self.objective not in ("consistency", "diffusion"):
            raise EsmscaleError(
                f"ConsistencyConfig.objective={self.objective!r}; use 'consistency' or 'diffusion'."
            )
        chans = tuple(int(c) for c in self.block_out_channels)
        object.__setattr__(self, "block_out_channels", chans)
        if any(c % self.norm_num_groups for c in chans):
            raise EsmscaleError(
                f"ConsistencyConfig: every entry of block_out_channels={chans} must be divisible "
                f"by norm_num_groups={self.norm_num_groups}."
            )
        if not 0 < self.sigma_min < self.sigma_max:
            raise EsmscaleError(
                f"ConsistencyConfig: need 0 < sigma_min ({self.sigma_min}) < sigma_max "
                f"({self.sigma_max})."
            )
        if self.patch_size % self.multiple:
            raise EsmscaleError(
                f"ConsistencyConfig: patch_size={self.patch_size} must be a multiple of "
                f"{self.multiple} (2 ** number of downsamplings)."
            )

    @property
    def multiple(self) -> int:
        """Spatial sizes fed to the network must be multiples of this."""
        return int(2 ** (len(self.block_out_channels) - 1))

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form; :meth:`from_dict` inverts it."""
        d = dataclasses.asdict(self)
        d["block_out_channels"] = list(self.block_out_channels)
        d["transform"] = self.transform.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConsistencyConfig:
        """Build from :meth:`to_dict` output; unknown keys are an error naming them."""
        d = dict(d)
        if "transform" in d and isinstance(d["transform"], dict):
            d["transform"] = DataTransform.from_dict(d["transform"])
        return config_from_dict(cls, d, tuples=("block_out_channels",))


class ConsistencyModel(PretrainedMixin, nn.Module):
    """Consistency function ``f(x, t)`` on single-channel fields in the network's space.

    Examples
    --------
    >>> import torch
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16), patch_size=8))
    >>> x = torch.randn(2, 1, 8, 8)
    >>> bool(torch.equal(m(x, torch.full((2,), m.config.sigma_min)), x))
    True
    """

    config_class = ConsistencyConfig

    def __init__(self, config: ConsistencyConfig) -> None:
        super().__init__()
        self.config = config
        n = len(config.block_out_channels)
        self.unet = UNet2DModel(
            sample_size=config.patch_size,
            in_channels=1,
            out_channels=1,
            block_out_channels=config.block_out_channels,
            down_block_types=("DownBlock2D",) * n,
            up_block_types=("UpBlock2D",) * n,
            layers_per_block=config.layers_per_block,
            norm_num_groups=config.norm_num_groups,
            time_embedding_type="positional",
        )
        self.sha256: str | None = None
        self.source: str | None = None

    # consistency parameterisation -------------------------------------------------------------
    @property
    def _t0(self) -> float:
        """Offset of the boundary condition: sigma_min (consistency) or 0 (diffusion denoiser)."""
        return self.config.sigma_min if self.config.objective == "consistency" else 0.0

    def c_skip(self, t: torch.Tensor) -> torch.Tensor:
        """Skip weight; 1 at ``t = sigma_min`` (consistency models)."""
        sd = self.config.sigma_data
        return sd**2 / ((t - self._t0) ** 2 + sd**2)

    def c_out(self, t: torch.Tensor) -> torch.Tensor:
        """Output weight; 0 at ``t = sigma_min`` (consistency models)."""
        sd = self.config.sigma_data
        return sd * (t - self._t0) / torch.sqrt(t**2 + sd**2)

    def c_in(self, t: torch.Tensor) -> torch.Tensor:
        """Input scaling to unit variance."""
        return 1.0 / torch.sqrt(t**2 + self.config.sigma_data**2)

    @staticmethod
    def c_noise(t: torch.Tensor) -> torch.Tensor:
        """Noise conditioning: scaled ``log(t)`` for the positional time embedding."""
        return 250.0 * torch.log(t)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Evaluate ``f(x, t)``; ``x`` is ``(B, 1, H, W)``, ``t`` is ``(B,)`` noise levels."""
        if x.ndim != 4 or x.shape[1] != 1:
            raise EsmscaleError(
                f"ConsistencyModel expects x of shape (batch, 1, H, W), got {tuple(x.shape)}."
            )
        h, w = x.shape[-2:]
        m = self.config.multiple
        if h % m or w % m:
            raise EsmscaleError(
                f"ConsistencyModel: spatial size {h}x{w} must be a multiple of {m}; pad the field "
                "(the tiling code does this for you)."
            )
        t = t.to(x.dtype).reshape(-1)
        view = t.reshape(-1, 1, 1, 1)
        inner = self.unet(self.c_in(view) * x, self.c_noise(t)).sample  # type: ignore[operator]
        return self.c_skip(view) * x + self.c_out(view) * inner

    def __repr__(self) -> str:
        c = self.config
        return (
            f"ConsistencyModel(name={c.name!r}, variable={c.variable!r}, "
            f"channels={c.block_out_channels}, params={self.num_parameters():,}, "
            f"factor={c.factor}, t_star={c.t_star}, transform={c.transform.kind!r})"
        )


def sigma_schedule(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """Karras discretisation: ``n`` increasing noise levels from ``sigma_min`` to ``sigma_max``."""
    i = torch.arange(n, dtype=torch.float64) / max(n - 1, 1)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (lo + i * (hi - lo)) ** rho
