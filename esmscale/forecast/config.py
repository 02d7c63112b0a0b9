"""Settings of a forecast training run: :class:`ForecastConfig` (frozen, round-trips to JSON).

The network is named by its registered kind (:data:`esmscale.forecast.forecaster.NETWORKS`) or
given as a network config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from esmscale.errors import EsmscaleError
from esmscale.forecast.forecaster import NETWORKS
from esmscale.models.fno import FNOConfig
from esmscale.models.modeling_utils import ConfigMixin, config_from_dict
from esmscale.models.pastnet import PastNetConfig
from esmscale.models.simvp import SimVPConfig

__all__ = ["ForecastConfig", "ModelConfig"]

ModelConfig = PastNetConfig | SimVPConfig | FNOConfig


def _model_config(kind: str, where: str) -> Any:
    """Config class of the trainable network ``kind``; the error lists the known kinds."""
    try:
        return NETWORKS.get(kind).config_class
    except EsmscaleError as err:
        raise EsmscaleError(f"{where}={kind!r} is unknown: {err}") from None


@dataclass(frozen=True)
class ForecastConfig(ConfigMixin):
    """Training settings (frozen; round-trips through :meth:`to_dict` / :meth:`from_dict`).

    ``model`` is a network config (or its name for the defaults); its ``t_in``, ``t_out`` and
    ``in_channels`` are set from this config and the data.

    Examples
    --------
    >>> cfg = ForecastConfig(model="fno", t_in=4, t_out=2, steps=10)
    >>> ForecastConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    model: ModelConfig | str = "pastnet"
    t_in: int = 10
    t_out: int = 10
    steps: int = 2000
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    val_fraction: float = 0.2
    eval_every: int = 100
    patience: int = 5
    max_val_windows: int = 256
    seed: int = 0
    pad: bool = True
    checkpoint_every: int = 500
    id_warmup_steps: int = 100
    id_points: int = 3000
    code_dim_range: tuple[int, int] = (4, 64)
    variable: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.model, str):
            object.__setattr__(self, "model", _model_config(self.model, "ForecastConfig.model")())
        object.__setattr__(self, "code_dim_range", tuple(self.code_dim_range))
        for k in ("t_in", "t_out", "steps", "batch_size", "eval_every", "checkpoint_every"):
            if int(getattr(self, k)) < 1:
                raise EsmscaleError(f"ForecastConfig.{k}={getattr(self, k)} must be >= 1.")
        if not 0.0 <= self.val_fraction < 1.0:
            raise EsmscaleError(f"ForecastConfig.val_fraction={self.val_fraction} not in [0, 1).")

    @property
    def model_config(self) -> ModelConfig:
        """The network config (never a string after construction)."""
        assert not isinstance(self.model, str)
        return self.model

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["model"] = {"kind": self.model_config.kind, **self.model_config.to_dict()}
        d["code_dim_range"] = list(self.code_dim_range)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ForecastConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        d = dict(d)
        if isinstance(d.get("model"), dict):
            m = dict(d["model"])
            kind = m.pop("kind", "pastnet")
            d["model"] = _model_config(kind, "ForecastConfig.model['kind']").from_dict(m)
        return config_from_dict(cls, d, tuples=("code_dim_range",))
