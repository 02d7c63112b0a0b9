"""Physical validation of input fields, driven by the CF ``standard_name`` and ``units``.

Rules (bounds are converted into the input's own units before comparing):

- **precipitation** (standard names such as ``precipitation_flux`` or
  ``lwe_precipitation_rate``; else variable names ``pr``, ``tp``, ``rr``, ``prsn``, ...):
  values below ``-0.01 mm day-1`` (:data:`PRECIP_TOLERANCE`) are impossible;
- **temperature** (``air_temperature``, ``surface_temperature``, ...; else names ``tas``,
  ``tasmax``, ``tasmin``, ``t2m``, ...): values outside ``150..350 K``
  (:data:`TEMPERATURE_RANGE`);
- **every variable**: ``+-inf``, magnitudes of at least ``1e15`` (fill values such as
  ``9.96921e36`` or ``1e20`` that leaked through) and values equal to the variable's
  ``_FillValue``/``missing_value`` (from its attributes, or its encoding when the data are not
  packed). ``-9999`` and ``-999`` outside a variable's physical range are reported as fill values.

A variable without a rule gets only the generic checks. ``check="raise"`` (the default) raises
:class:`~esmscale.errors.PhysicalCheckError`, ``"warn"`` emits an
:class:`~esmscale.errors.EsmscaleWarning` with the same text, ``"off"`` skips the check. Dask-backed
fields are checked inside the graph, chunk by chunk, when they are computed.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import dask
import dask.array as dsa
import numpy as np
import xarray as xr

from esmscale.errors import EsmscaleError, EsmscaleWarning, PhysicalCheckError
from esmscale.prepare.rules import (
    PRECIP_TOLERANCE,
    TEMPERATURE_RANGE,
    Rule,
    is_nonnegative,
    rule_for,
)

__all__ = [
    "CHECK_MODES",
    "PRECIP_TOLERANCE",
    "TEMPERATURE_RANGE",
    "CheckMode",
    "Rule",
    "check_field",
    "check_values",
    "is_nonnegative",
    "rule_for",
    "validate_mode",
]

CheckMode = Literal["raise", "warn", "off"]
CHECK_MODES: tuple[str, ...] = ("raise", "warn", "off")
HUGE = 1e15
_SENTINELS = (-9999.0, -999.0)


def validate_mode(check: str) -> CheckMode:
    """``check`` itself if it is ``"raise"``, ``"warn"`` or ``"off"``; else an error.

    Examples
    --------
    >>> validate_mode("warn")
    'warn'
    >>> validate_mode("strict")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: check='strict' is not known; use 'raise' (default), ...
    """
    if check not in CHECK_MODES:
        raise EsmscaleError(
            f"check={check!r} is not known; use 'raise' (default), 'warn' or 'off' "
            "(CLI: --check raise|warn|off)."
        )
    return check  # type: ignore[return-value]


def _declared_fills(attrs: Mapping[str, Any], encoding: Mapping[str, Any]) -> list[float]:
    """Fill values the data could still hold: undecoded attributes, unpacked encodings."""
    out = [attrs.get(k) for k in ("_FillValue", "missing_value")]
    if not any(k in encoding for k in ("scale_factor", "add_offset")):
        out += [encoding.get(k) for k in ("_FillValue", "missing_value")]
    vals: list[float] = []
    for v in out:
        for x in np.atleast_1d(np.asarray(v if v is not None else [], dtype=np.float64)):
            if np.isfinite(x) and float(x) not in vals:
                vals.append(float(x))
    return vals


@dataclass(frozen=True)
class _Finding:
    """One kind of problem: ``kind`` is ``"inf"``, ``"fill"`` or ``"range"``."""

    kind: str
    count: int
    first: tuple[int, ...]
    low: float
    high: float
    example: float


def _finding(kind: str, mask: np.ndarray, v: np.ndarray, offset: Sequence[int]) -> _Finding:
    first = np.unravel_index(int(np.argmax(mask)), mask.shape)
    sel = v[mask]
    return _Finding(
        kind,
        int(mask.sum()),
        tuple(int(i) + int(o) for i, o in zip(first, offset, strict=True)),
        float(sel.min()),
        float(sel.max()),
        float(v[first]),
    )


def _findings(
    values: np.ndarray,
    name: str | None,
    attrs: Mapping[str, Any],
    encoding: Mapping[str, Any],
    offset: Sequence[int] | None = None,
) -> list[_Finding]:
    v = np.asarray(values)
    if not np.issubdtype(v.dtype, np.number) or np.issubdtype(v.dtype, np.complexfloating):
        return []  # the dtype is reported where the values are loaded
    v = v.astype(np.float64, copy=False)
    off = tuple(offset) if offset is not None else (0,) * v.ndim
    rule = rule_for(name, attrs)
    with np.errstate(invalid="ignore"):
        inf = np.isinf(v)
        fill = (np.abs(v) >= HUGE) & ~inf
        for f in _declared_fills(attrs, encoding):
            fill |= np.isclose(v, f, rtol=1e-6, atol=0.0)
        bad = np.zeros(v.shape, dtype=bool)
        if rule is not None and rule.lower is not None:
            bad |= v < rule.lower
        if rule is not None and rule.upper is not None:
            bad |= v > rule.upper
        for s in _SENTINELS:
            fill |= bad & (v == s)
        bad &= ~fill
    masks = {"inf": inf, "fill": fill, "range": bad}
    return [_finding(k, m, v, off) for k, m in masks.items() if m.any()]


def _merge(parts: Sequence[Sequence[_Finding]]) -> list[_Finding]:
    """Combine the findings of several chunks: counts add up, the first stays first."""
    out: dict[str, _Finding] = {}
    for f in (f for p in parts for f in p):
        g = out.get(f.kind)
        if g is None:
            out[f.kind] = f
            continue
        head = f if f.first < g.first else g
        out[f.kind] = _Finding(
            f.kind,
            f.count + g.count,
            head.first,
            min(f.low, g.low),
            max(f.high, g.high),
            head.example,
        )
    return [out[k] for k in ("inf", "fill", "range") if k in out]


def _text(f: _Finding, rule: Rule | None) -> tuple[str, str]:
    if f.kind == "inf":
        return "are infinite (+-inf)", "mask or replace them, e.g. da.where(np.isfinite(da))"
    if f.kind == "fill" or rule is None:
        return (
            f"look like fill values that leaked through (e.g. {f.example:g})",
            (
                f"mask them, e.g. da.where(da != {f.example:g}), or set the variable's "
                "_FillValue/missing_value attribute and reopen the file"
            ),
        )
    return rule.describe(f.low, f.high)


def _where(
    index: tuple[int, ...], dims: Sequence[str] | None, labels: Mapping[str, Sequence[str]]
) -> str:
    if dims is None or len(dims) != len(index):
        return f"index {index}"
    parts = []
    for d, i in zip(dims, index, strict=True):
        lab = labels.get(d)
        parts.append(f"{d}={lab[i]}" if lab is not None else f"{d} index {i}")
    return ", ".join(parts)


def _label(v: Any) -> str:
    if isinstance(v, np.datetime64):
        return str(np.datetime_as_string(v, unit="s")).removesuffix("T00:00:00")
    if isinstance(v, float | np.floating):
        return f"{float(v):.6g}"
    text = str(v)
    return text.removesuffix(" 00:00:00")


def _report(
    findings: list[_Finding],
    name: str | None,
    attrs: Mapping[str, Any],
    total: int,
    where: Any,
    extra: str,
) -> str:
    rule = rule_for(name, attrs)
    parts = []
    for f in findings:
        what, advice = _text(f, rule)
        share = f" ({100.0 * f.count / total:.1f} %)" if total else ""
        parts.append(
            f"{f.count} of {total} values{share} {what}, the first at {where(f.first)}; {advice}"
        )
    return (
        f"variable {name!r}{extra}: " + ". ".join(parts) + ". To continue anyway, pass "
        "check='warn' (warn and go on) or check='off' (no check); on the command line use "
        "--check warn or --check off."
    )


def _emit(message: str, check: CheckMode) -> None:
    if check == "raise":
        raise PhysicalCheckError(message)
    warnings.warn(message, EsmscaleWarning, stacklevel=3)


def check_values(
    values: np.ndarray,
    *,
    name: str | None,
    attrs: Mapping[str, Any] | None = None,
    encoding: Mapping[str, Any] | None = None,
    check: str = "raise",
    dims: Sequence[str] | None = None,
    labels: Mapping[str, Sequence[str]] | None = None,
    offset: Sequence[int] | None = None,
    extra: str = "",
) -> None:
    """Check in-memory ``values`` of variable ``name`` (attributes ``attrs``, e.g. units).

    Parameters
    ----------
    values
        The data (any shape).
    name, attrs, encoding
        Variable name, CF attributes (``standard_name``, ``units``, ``_FillValue``) and encoding.
    check
        ``"raise"``, ``"warn"`` or ``"off"``.
    dims, labels, offset
        Dimension names, coordinate labels per dimension (for the location in the message)
        and the position of ``values`` in a larger array (a Dask chunk).
    extra
        Text appended to the variable name in the message.

    Raises
    ------
    PhysicalCheckError
        With ``check="raise"``, when values are physically impossible.

    Examples
    --------
    >>> import warnings
    >>> values = np.array([[1.0, -5.0], [2.0, 3.0]])
    >>> where = {"dims": ("lat", "lon"), "labels": {"lat": ["40N", "41N"], "lon": ["3W", "2W"]}}
    >>> try:
    ...     check_values(values, name="pr", attrs={"units": "mm day-1"}, **where)
    ... except PhysicalCheckError as err:
    ...     print(err)  # doctest: +NORMALIZE_WHITESPACE
    variable 'pr': 1 of 4 values (25.0 %) are negative beyond the tolerance of -0.01 mm day-1
    (minimum -5 mm day-1), the first at lat=40N, lon=2W; precipitation cannot be negative: ...
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     check_values(values, name="pr", attrs={"units": "mm day-1"}, check="warn")
    >>> caught[0].category.__name__
    'EsmscaleWarning'
    >>> check_values(values, name="tas", attrs={"units": "degC"})  # -5 degC is fine
    """
    mode = validate_mode(check)
    if mode == "off":
        return
    findings = _findings(values, name, attrs or {}, encoding or {}, offset)
    if findings:
        _raise_or_warn(findings, name, attrs, int(np.size(values)), dims, labels, extra, mode)


def _raise_or_warn(
    findings: list[_Finding],
    name: str | None,
    attrs: Mapping[str, Any] | None,
    total: int,
    dims: Sequence[str] | None,
    labels: Mapping[str, Sequence[str]] | None,
    extra: str,
    mode: CheckMode,
) -> None:
    def where(i: tuple[int, ...]) -> str:
        return _where(i, dims, labels or {})

    _emit(_report(findings, name, attrs or {}, total, where, extra), mode)


def _check_block(
    block: np.ndarray, *, info: dict[str, Any], block_info: dict[Any, Any] | None = None
) -> np.ndarray:
    """Dask block function: validate one chunk and pass it through unchanged."""
    loc = block_info[0]["array-location"] if block_info else [(0, n) for n in block.shape]
    offset = [int(a) for a, _ in loc]
    span = ", ".join(
        f"{d}={info['labels'][d][a]}..{info['labels'][d][b - 1]}"
        for d, (a, b) in zip(info["dims"], loc, strict=True)
        if d in info["labels"] and b - a < len(info["labels"][d])
    )
    extra = f" (in the Dask chunk {span}; other chunks are checked when computed)" if span else ""
    check_values(block, offset=offset, extra=extra, **info)
    return block


def _labels(da: xr.DataArray) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for d in da.dims:
        if d in da.coords and da[d].ndim == 1:
            out[str(d)] = [_label(v) for v in da[d].values]
    return out


def _block_findings(block: np.ndarray, offset: tuple[int, ...], info: dict[str, Any]) -> Any:
    return _findings(block, info["name"], info["attrs"], info["encoding"], offset)


def check_field(da: xr.DataArray, check: str = "raise", *, scan: bool = False) -> xr.DataArray:
    """Validate ``da`` against its physical rule; returns ``da`` (lazily checked with Dask).

    In-memory data are checked at once. Dask-backed data are returned with the check as a
    layer of the graph: each chunk is validated when it is computed, and the error names the
    chunk and the first bad value in it, so nothing is computed here. With ``scan=True``
    Dask-backed data are instead read once, chunk by chunk, and checked as a whole (counts
    over all chunks), e.g. before a long computation starts.

    Examples
    --------
    >>> da = xr.DataArray(np.array([[[1.0, -5.0]]]), dims=("time", "lat", "lon"), name="pr",
    ...                   attrs={"units": "mm day-1"})
    >>> check_field(da, "off") is da
    True
    >>> check_field(da)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    esmscale.errors.PhysicalCheckError: variable 'pr': 1 of 2 values (50.0 %) are negative ...
    """
    mode = validate_mode(check)
    if mode == "off":
        return da
    info: dict[str, Any] = {
        "name": None if da.name is None else str(da.name),
        "attrs": dict(da.attrs),
        "encoding": {k: v for k, v in da.encoding.items() if k in _ENCODING_KEYS},
        "check": mode,
        "dims": [str(d) for d in da.dims],
        "labels": _labels(da),
    }
    if not isinstance(da.data, dsa.Array):
        check_values(np.asarray(da.values), **info)
        return da
    if not scan:
        data = dsa.map_blocks(_check_block, da.data, info=info, dtype=da.dtype, meta=da.data._meta)
        return da.copy(data=data)
    starts = [np.cumsum((0, *c)) for c in da.data.chunks]
    blocks = da.data.to_delayed()
    tasks = [
        dask.delayed(_block_findings, pure=True)(
            blocks[i], tuple(int(s[k]) for s, k in zip(starts, i, strict=True)), info
        )
        for i in np.ndindex(*blocks.shape)
    ]
    findings = _merge(dask.compute(*tasks))
    if findings:
        _raise_or_warn(
            findings, info["name"], info["attrs"], da.size, info["dims"], info["labels"], "", mode
        )
    return da


_ENCODING_KEYS = ("_FillValue", "missing_value", "scale_factor", "add_offset")
