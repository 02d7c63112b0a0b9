"""Deprecated alias of :mod:`esmscale.prepare.units` (the one unit-conversion module).

Importing it warns (:class:`DeprecationWarning`); its names keep working for one release.
"""

from __future__ import annotations

import warnings

from esmscale.prepare.units import convert, linear_factors, quantity, to_canonical

__all__ = ["convert", "linear_factors", "quantity", "to_canonical"]

warnings.warn(
    "esmscale.units is deprecated and will be removed in the next release; import from "
    "esmscale.prepare.units instead.",
    DeprecationWarning,
    stacklevel=2,
)
