"""Where data enters: open files, pick the variable, convert units, regrid, bias-correct."""

from typing import Any

from esmscale.prepare.clipping import clip_negative, compute_clipped
from esmscale.prepare.coords import find_latlon
from esmscale.prepare.inputs import field_values, grid_spacing, open_dataset, select_variable
from esmscale.prepare.interp import upsample_bilinear
from esmscale.prepare.physics import check_field, check_values, is_nonnegative, rule_for
from esmscale.prepare.regrid import refine_grid, regrid, target_mask, to_regular

__all__ = [
    "QDMCorrector",
    "check_field",
    "check_values",
    "clip_negative",
    "compute_clipped",
    "field_values",
    "find_latlon",
    "grid_spacing",
    "is_nonnegative",
    "open_dataset",
    "refine_grid",
    "regrid",
    "rule_for",
    "select_variable",
    "target_mask",
    "to_regular",
    "upsample_bilinear",
]


def __getattr__(name: str) -> Any:
    # xsdba compiles numba kernels on import (~15 s): load it only when QDM is used
    if name == "QDMCorrector":
        from esmscale.prepare.bias import QDMCorrector

        return QDMCorrector
    raise AttributeError(f"module 'esmscale.prepare' has no attribute {name!r}")
