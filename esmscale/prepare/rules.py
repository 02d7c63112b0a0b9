"""Physical rules of variables, found from the CF ``standard_name``, else the variable name.

See :mod:`esmscale.prepare.physics` for how the rules are applied.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from esmscale.errors import EsmscaleError
from esmscale.prepare.units import linear_factors, quantity

__all__ = ["PRECIP_TOLERANCE", "TEMPERATURE_RANGE", "Rule", "is_nonnegative", "rule_for"]

PRECIP_TOLERANCE = 0.01
"""Largest negative precipitation accepted, in mm day-1 (numerical noise of regridding)."""
TEMPERATURE_RANGE = (150.0, 350.0)
"""Physical range of near-surface and tropospheric temperatures, in K."""

_PRECIP_STANDARD_NAMES = frozenset(
    {
        "precipitation_flux",
        "precipitation_amount",
        "lwe_precipitation_rate",
        "lwe_thickness_of_precipitation_amount",
        "convective_precipitation_flux",
        "convective_precipitation_rate",
        "lwe_convective_precipitation_rate",
        "stratiform_precipitation_flux",
        "rainfall_flux",
        "rainfall_rate",
        "rainfall_amount",
        "thickness_of_rainfall_amount",
        "snowfall_flux",
        "snowfall_amount",
        "lwe_snowfall_rate",
        "solid_precipitation_flux",
    }
)
_TEMP_STANDARD_NAMES = frozenset(
    {
        "air_temperature",
        "surface_temperature",
        "surface_air_temperature",
        "dew_point_temperature",
        "sea_surface_temperature",
        "sea_surface_skin_temperature",
    }
)
_PRECIP_NAMES = frozenset(
    {"pr", "tp", "rr", "prsn", "prc", "prra", "precip", "precipitation", "rain", "rainfall"}
)
_TEMP_NAMES = frozenset(
    {"tas", "tasmax", "tasmin", "ta", "ts", "t2m", "tg", "tx", "tn", "tdps", "temperature"}
)
_TEMP_LEVEL = re.compile(r"^ta\d+$")  # ta850, ta500, ...


@dataclass(frozen=True)
class Rule:
    """Physical range of one variable, in its own ``units``.

    ``lower``/``upper`` are None when there is no bound, or when the units are unknown or belong
    to another quantity (the unit conversion reports that later).

    Examples
    --------
    >>> rule = Rule("temperature", "degC", lower=-123.15, upper=76.85)  # 150..350 K
    >>> what, fix = rule.describe(-300.0, 20.0)
    >>> what
    'are outside the physical range -123.15..76.85 degC (150..350 K; minimum -300, maximum 20)'
    >>> fix
    'check the units attribute (K or degC) and fill values of the input'
    >>> found = rule_for("tas", {"units": "degC"})  # how rules are usually made
    >>> found.quantity, round(found.lower, 2), round(found.upper, 2)
    ('temperature', -123.15, 76.85)
    """

    quantity: Literal["precipitation", "temperature"]
    units: str
    lower: float | None = None
    upper: float | None = None

    def describe(self, low: float, high: float) -> tuple[str, str]:
        """What out-of-range values are, and what to do (``low``/``high``: their extremes)."""
        u = f" {self.units}" if self.units else ""
        if self.quantity == "precipitation":
            same = self.units in ("mm day-1", "mm/day", "mm d-1")
            tol = "" if same else f" (-{PRECIP_TOLERANCE} mm day-1)"
            return (
                (
                    f"are negative beyond the tolerance of {self.lower:.3g}{u}{tol} (minimum "
                    f"{low:.4g}{u})"
                ),
                (
                    "precipitation cannot be negative: check the sign convention, units and fill "
                    "values of the input"
                ),
            )
        lo, hi = TEMPERATURE_RANGE
        kelvin = "" if self.lower == lo else f"{lo:g}..{hi:g} K; "
        return (
            (
                f"are outside the physical range {self.lower:.5g}..{self.upper:.5g}{u} "
                f"({kelvin}minimum {low:.4g}, maximum {high:.4g})"
            ),
            "check the units attribute (K or degC) and fill values of the input",
        )


def _quantity(name: str | None, attrs: Mapping[str, Any]) -> str | None:
    std = str(attrs.get("standard_name", "")).strip()
    if std in _PRECIP_STANDARD_NAMES:
        return "precipitation"
    if std in _TEMP_STANDARD_NAMES:
        return "temperature"
    key = str(name or "").strip().lower()
    if key in _PRECIP_NAMES:
        return "precipitation"
    if key in _TEMP_NAMES or _TEMP_LEVEL.match(key):
        return "temperature"
    return None


def rule_for(name: str | None, attrs: Mapping[str, Any]) -> Rule | None:
    """The physical rule of a variable from its ``standard_name``, else its name; None if none.

    Examples
    --------
    >>> rule_for("pr", {"units": "kg m-2 s-1"}).lower
    -1.1574074074074074e-07
    >>> rule_for("t", {"standard_name": "air_temperature", "units": "degC"}).lower
    -123.14999999999998
    >>> rule_for("psl", {"units": "Pa"}) is None
    True
    """
    q = _quantity(name, attrs)
    if q is None:
        return None
    units = attrs.get("units")
    label = "" if units is None else str(units)
    canonical = "mm day-1" if q == "precipitation" else "K"
    try:
        scale, offset = linear_factors(canonical, label, str(name))
    except EsmscaleError:  # unknown units or another quantity: no bounds here
        return Rule(q, label)  # type: ignore[arg-type]
    if q == "precipitation":
        return Rule("precipitation", label, lower=-PRECIP_TOLERANCE * scale)
    lo, hi = TEMPERATURE_RANGE
    return Rule("temperature", label, lower=lo * scale + offset, upper=hi * scale + offset)


def is_nonnegative(name: str | None, attrs: Mapping[str, Any]) -> bool:
    """Whether the variable cannot be negative: precipitation by standard name or name.

    Units of another quantity (e.g. a variable named ``pr`` in ``degC``) overrule the name.

    Examples
    --------
    >>> is_nonnegative("pr", {"units": "kg m-2 s-1"}), is_nonnegative("pr", {"units": "degC"})
    (True, False)
    """
    if _quantity(name, attrs) != "precipitation":
        return False
    try:
        return quantity(attrs.get("units"), str(name)) == "precipitation"
    except EsmscaleError:  # unknown units (e.g. ERA5 "m"): the sign is still meaningful
        return True
