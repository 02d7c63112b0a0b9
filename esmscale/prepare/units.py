"""Unit conversion between user data and a model's training units (pure numpy): the one place.

Every conversion is linear, ``dst = src * scale + offset``: :func:`linear_factors` gives the
factors (used lazily on xarray/Dask data), :func:`convert` applies them to arrays.

Precipitation rates: ``kg m-2 s-1``, ``mm s-1``, ``mm day-1`` (also ``mm/day``, ``mm d-1``),
``m day-1`` and ``m s-1``; 1 kg m-2 of water is 1 mm. Temperature: ``K`` and ``degC``.
"""

from __future__ import annotations

import numpy as np

from esmscale.errors import EsmscaleError

__all__ = ["convert", "linear_factors", "quantity", "to_canonical"]

_DAY = 86400.0
# unit -> (quantity, scale, offset) such that canonical = value * scale + offset;
# canonical units: precipitation mm day-1, temperature K.
_UNITS: dict[str, tuple[str, float, float]] = {
    "kg m-2 s-1": ("precipitation", _DAY, 0.0),
    "kg/m2/s": ("precipitation", _DAY, 0.0),
    "kg m**-2 s**-1": ("precipitation", _DAY, 0.0),
    "mm s-1": ("precipitation", _DAY, 0.0),
    "mm/s": ("precipitation", _DAY, 0.0),
    "m s-1": ("precipitation", 1000.0 * _DAY, 0.0),
    "mm day-1": ("precipitation", 1.0, 0.0),
    "mm d-1": ("precipitation", 1.0, 0.0),
    "mm/day": ("precipitation", 1.0, 0.0),
    "mm/d": ("precipitation", 1.0, 0.0),
    "mm": ("precipitation", 1.0, 0.0),
    "m day-1": ("precipitation", 1000.0, 0.0),
    "m/day": ("precipitation", 1000.0, 0.0),
    "m d-1": ("precipitation", 1000.0, 0.0),
    "k": ("temperature", 1.0, 0.0),
    "kelvin": ("temperature", 1.0, 0.0),
    "degc": ("temperature", 1.0, 273.15),
    "celsius": ("temperature", 1.0, 273.15),
    "deg_c": ("temperature", 1.0, 273.15),
    "°c": ("temperature", 1.0, 273.15),
}


def _lookup(units: str | None, name: str) -> tuple[str, float, float]:
    key = " ".join(str(units).strip().split()).lower() if units is not None else ""
    if key not in _UNITS:
        known = sorted({k for k in _UNITS if k == k.lower()})
        what = "has no 'units' attribute" if not key else f"has units {units!r}, which are unknown"
        raise EsmscaleError(f"variable {name!r} {what}; set da.attrs['units'] to one of {known}.")
    return _UNITS[key]


def quantity(units: str | None, name: str = "data") -> str:
    """``"precipitation"`` or ``"temperature"`` for known units, else an error naming ``name``.

    Examples
    --------
    >>> quantity("kg m-2 s-1"), quantity("degC")
    ('precipitation', 'temperature')
    >>> quantity("furlongs", "pr")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: variable 'pr' has units 'furlongs', which are unknown; ...
    """
    return _lookup(units, name)[0]


def to_canonical(values: np.ndarray, units: str | None, name: str = "data") -> np.ndarray:
    """Convert to mm day-1 (precipitation) or K (temperature).

    Examples
    --------
    >>> to_canonical(np.array([1.0 / 86400]), "kg m-2 s-1")  # 1 kg m-2 = 1 mm of water
    array([1.])
    >>> to_canonical(np.array([0.0]), "degC")
    array([273.15])
    """
    _, scale, offset = _lookup(units, name)
    return np.asarray(values) * scale + offset


def linear_factors(src: str | None, dst: str, name: str = "data") -> tuple[float, float]:
    """``(scale, offset)`` with ``value_dst = value_src * scale + offset``.

    Examples
    --------
    >>> linear_factors("degC", "K", "tas")
    (1.0, 273.15)
    >>> linear_factors("kg m-2 s-1", "mm day-1", "pr")
    (86400.0, 0.0)
    """
    q1, s1, o1 = _lookup(src, name)
    q2, s2, o2 = _lookup(dst, name)
    if q1 != q2:
        raise EsmscaleError(
            f"variable {name!r}: cannot convert {q1} units {src!r} to {q2} units {dst!r}; the "
            "model was trained on a different quantity."
        )
    return s1 / s2, (o1 - o2) / s2


def convert(values: np.ndarray, src: str | None, dst: str, name: str = "data") -> np.ndarray:
    """Convert ``values`` from units ``src`` to ``dst`` (unchanged when they are equivalent).

    Examples
    --------
    >>> float(convert(np.array(1.0 / 86400), "kg m-2 s-1", "mm day-1", "pr"))
    1.0
    >>> float(convert(np.array(0.0), "degC", "K", "tas"))
    273.15
    """
    scale, offset = linear_factors(src, dst, name)
    if (scale, offset) == (1.0, 0.0):
        return np.asarray(values)
    return np.asarray(values) * scale + offset
