"""Deprecated alias: SimVP and FNO now live in :mod:`esmscale.models.simvp` and
:mod:`esmscale.models.fno`.

Importing this module warns (:class:`DeprecationWarning`); its names keep working for one
release. Import from the new modules instead.
"""

from __future__ import annotations

import warnings

from esmscale.models.fno import FNO2d, FNOConfig
from esmscale.models.simvp import SimVP, SimVPConfig

__all__ = ["FNO2d", "FNOConfig", "SimVP", "SimVPConfig"]

warnings.warn(
    "esmscale.models.forecast_baselines is deprecated and will be removed in the next release; "
    "import SimVP/SimVPConfig from esmscale.models.simvp and FNO2d/FNOConfig from "
    "esmscale.models.fno.",
    DeprecationWarning,
    stacklevel=2,
)
