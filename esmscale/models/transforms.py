"""Invertible data transforms between physical units and the network's space.

Pure numpy/torch; no xarray. A transform is a frozen dataclass stored in the checkpoint config.

Precipitation (``kind="log"``): ``y = log(x + eps) - log(eps)``, then mapped to ``[-1, 1]`` with
the training period's maximum, so 0 mm day-1 maps to -1. Temperature (``kind="standard"``):
``(x - mean) / std``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from esmscale.errors import EsmscaleError
from esmscale.models.modeling_utils import config_from_dict

__all__ = ["DataTransform", "fit_transform"]

Array = np.ndarray


@dataclass(frozen=True)
class DataTransform:
    """Map physical values to the network's space and back.

    Parameters
    ----------
    kind
        ``"log"`` for non-negative, intermittent fields (precipitation), ``"standard"`` otherwise.
    units
        Physical units of the training data (e.g. ``"mm day-1"`` or ``"K"``).
    eps
        Offset of the log transform in ``units``.
    log_max
        Maximum of ``log(x + eps) - log(eps)`` over the training data.
    mean, std
        Standardisation constants for ``kind="standard"``.
    dry_threshold
        Outputs below this value (in ``units``) are set to exactly 0 (log kind only); this
        removes the drizzle that small network errors near the log floor would otherwise create.

    Examples
    --------
    >>> import numpy as np
    >>> tr = DataTransform(kind="log", units="mm day-1", eps=0.5, log_max=5.0)
    >>> x = np.array([0.0, 1.0, 40.0])
    >>> bool(np.allclose(tr.inverse(tr.forward(x)), x, atol=1e-5))
    True
    """

    kind: Literal["log", "standard"] = "log"
    units: str = "mm day-1"
    eps: float = 0.5
    log_max: float = 1.0
    mean: float = 0.0
    std: float = 1.0
    dry_threshold: float = 0.05

    def __post_init__(self) -> None:
        if self.kind not in ("log", "standard"):
            raise EsmscaleError(
                f"DataTransform.kind={self.kind!r} is not known; use 'log' or 'standard'."
            )
        if self.kind == "log" and (self.eps <= 0 or self.log_max <= 0):
            raise EsmscaleError(
                f"DataTransform: eps={self.eps} and log_max={self.log_max} must be positive; "
                "a zero log_max means the training field is all dry: train on wetter data."
            )
        if self.kind == "standard" and not self.std > 0:
            raise EsmscaleError(
                f"DataTransform: std={self.std} must be positive; a constant training field "
                "cannot be standardised."
            )

    @property
    def fill_value(self) -> float:
        """Value in the network's space used for masked (NaN) cells: dry or the mean."""
        return -1.0 if self.kind == "log" else 0.0

    def forward(self, x: Array) -> Array:
        """Physical units -> network space (float32); NaN stays NaN."""
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "log":
            y = np.log(np.maximum(x, 0.0) + self.eps) - math.log(self.eps)
            out = 2.0 * y / self.log_max - 1.0
        else:
            out = (x - self.mean) / self.std
        return out.astype(np.float32)

    def inverse(self, y: Array) -> Array:
        """Network space -> physical units (float32); NaN stays NaN."""
        y = np.asarray(y, dtype=np.float64)
        if self.kind == "log":
            z = (y + 1.0) * 0.5 * self.log_max
            x = np.exp(z + math.log(self.eps)) - self.eps
            x = np.where(x < self.dry_threshold, 0.0, x)
        else:
            x = y * self.std + self.mean
        return x.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form; :meth:`from_dict` inverts it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataTransform:
        """Build from :meth:`to_dict` output; unknown keys are an error."""
        return config_from_dict(cls, d)


def fit_transform(
    x: Array, *, kind: Literal["log", "standard"], units: str, eps: float = 0.5
) -> DataTransform:
    """Fit transform constants to training data (NaN ignored).

    Examples
    --------
    >>> import numpy as np
    >>> tr = fit_transform(np.array([0.0, 2.0, 30.0]), kind="log", units="mm day-1")
    >>> float(tr.forward(np.array([30.0]))[0])
    1.0
    """
    x = np.asarray(x, dtype=np.float64)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        raise EsmscaleError("fit_transform: the training field has no finite value (all NaN).")
    if kind == "log":
        if finite.min() < 0:
            raise EsmscaleError(
                f"fit_transform: kind='log' needs non-negative data, found minimum "
                f"{finite.min():.3g} {units}; use kind='standard' for signed fields."
            )
        log_max = float(math.log(finite.max() + eps) - math.log(eps))
        if log_max <= 0:
            raise EsmscaleError(
                "fit_transform: the training field is all dry (maximum 0); a log transform "
                "needs some wet cells. Train on a period with precipitation."
            )
        return DataTransform(kind="log", units=units, eps=eps, log_max=log_max)
    std = float(finite.std())
    if not std > 0:
        raise EsmscaleError(
            f"fit_transform: the training field is constant ({finite.mean():.3g} {units}); "
            "it cannot be standardised. Train on data that varies."
        )
    return DataTransform(kind="standard", units=units, mean=float(finite.mean()), std=std)
