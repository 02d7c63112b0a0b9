"""Where data enters: open files, pick the variable, convert units, interpolate to the fine grid."""

from esmscale.prepare.inputs import field_values, grid_spacing, open_dataset, select_variable
from esmscale.prepare.interp import upsample_bilinear

__all__ = ["field_values", "grid_spacing", "open_dataset", "select_variable", "upsample_bilinear"]
