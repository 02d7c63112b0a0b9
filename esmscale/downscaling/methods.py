"""Downscaling methods behind one interface: a name -> function registry.

Every method is called as ``fn(obj, model, **kwargs)`` and returns the same kind of object as
``obj`` (dims ``member, time, lat, lon`` on the target grid, CF attributes and provenance):

- ``"cm"``: the consistency model, one network call per member (:func:`esmscale.downscale`).
- ``"cm-multistep"``: multi-step consistency sampling (``steps=4`` by default).
- ``"noise-only"``: the control: the same interpolated field plus the same noise at t*, mapped
  back without the network (shows what the network adds).
- ``"diffusion-bridge"``: the paper's baseline, a diffusion model (``objective="diffusion"``)
  integrated from t* with 500 Euler-Maruyama steps.
- ``"bilinear"``, ``"conservative"``: interpolation only (deterministic, one member).
- ``"qdm-bilinear"``: quantile delta mapping (xsdba) on the bilinearly interpolated field.

>>> from esmscale.downscaling import methods
>>> methods.available()
['bilinear', 'cm', 'cm-multistep', 'conservative', 'diffusion-bridge', 'noise-only', 'qdm-bilinear']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import xarray as xr

from esmscale._version import __version__
from esmscale.downscaling.output import member_coord
from esmscale.downscaling.pipeline import downscale
from esmscale.errors import EsmscaleError
from esmscale.prepare.checks import check_time
from esmscale.prepare.grids import is_rectilinear_latlon, spatial_dims
from esmscale.prepare.inputs import select_variable
from esmscale.prepare.physics import check_field
from esmscale.prepare.regrid import refine_grid, regrid
from esmscale.prepare.regrid_cf import regrid_cf
from esmscale.pretrained import load_model
from esmscale.registry import Registry

__all__ = ["METHODS", "Method", "available", "get", "register"]

Method = Callable[..., xr.DataArray | xr.Dataset]
METHODS: Registry[Method] = Registry("downscaling method")


def register(name: str) -> Callable[[Method], Method]:
    """Decorator adding a method to the registry under ``name`` (names are never reused).

    Examples
    --------
    >>> @register("bilinear-x2")
    ... def doubled(obj, model=None, **kwargs):
    ...     return get("bilinear")(obj, model, **kwargs) * 2
    >>> "bilinear-x2" in available()
    True
    >>> register("cm")(doubled)
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: a downscaling method named 'cm' is already registered; ...
    >>> _ = METHODS._unregister("bilinear-x2")  # leave the registry as it was
    """
    return METHODS.register(name)


def available() -> list[str]:
    """Names of the registered methods.

    Examples
    --------
    >>> "cm" in available(), "bilinear" in available()
    (True, True)
    """
    return METHODS.available()


def get(name: str) -> Method:
    """The method called ``name``; the error lists the known names.

    Examples
    --------
    >>> from esmscale.datasets import synthetic_esm, synthetic_precip
    >>> esm = synthetic_esm(synthetic_precip(16, 16, 2), factor=4)
    >>> out = get("bilinear")(esm, factor=4)  # an interpolation baseline needs no network
    >>> out.pr.dims, out.pr.shape, out.pr.attrs["esmscale_method"]
    (('member', 'time', 'lat', 'lon'), (1, 2, 16, 16), 'bilinear')
    >>> get("nearest")
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: no downscaling method named 'nearest'; known downscaling ...
    """
    return METHODS.get(name)


@register("cm")
def _cm(obj: xr.Dataset | xr.DataArray, model: Any, **kwargs: Any) -> xr.DataArray | xr.Dataset:
    return downscale(obj, model, **kwargs)


@register("cm-multistep")
def _cm_multistep(
    obj: xr.Dataset | xr.DataArray, model: Any, *, steps: int = 4, **kwargs: Any
) -> xr.DataArray | xr.Dataset:
    return downscale(obj, model, steps=steps, **kwargs)


@register("noise-only")
def _noise_only(
    obj: xr.Dataset | xr.DataArray, model: Any, **kwargs: Any
) -> xr.DataArray | xr.Dataset:
    return downscale(obj, model, sampler="noise-only", **kwargs)


@register("diffusion-bridge")
def _bridge(
    obj: xr.Dataset | xr.DataArray, model: Any, *, steps: int = 500, **kwargs: Any
) -> xr.DataArray | xr.Dataset:
    return downscale(obj, model, steps=steps, sampler="bridge", **kwargs)


@dataclass(frozen=True)
class _Baseline:
    """An interpolation baseline: its registered name, how it regrids, whether QDM follows."""

    name: str
    regrid_method: str
    qdm: bool = False


#: Options of the network methods that the interpolation baselines accept and ignore.
_IGNORED = frozenset(
    {
        "members",
        "seed",
        "t_star",
        "steps",
        "tile",
        "halo",
        "chunks",
        "threads",
        "conserve",
        "device",
        "precision",
        "restore",
        "spread",
        "spread_length",
    }
)
#: Options of quantile delta mapping (used by ``qdm-bilinear``, accepted by all baselines).
_QDM_OPTIONS = frozenset({"bias_correction", "reference", "historical"})


def _quantile_mapped(
    fine: xr.DataArray, units: str, variable: str | None, options: dict[str, Any]
) -> xr.DataArray:
    """``fine`` after quantile delta mapping (:func:`esmscale.prepare.bias.bias_correct`)."""
    from esmscale.prepare.bias import bias_correct

    return bias_correct(
        fine,
        options.get("bias_correction") or "qdm",
        units=units,
        reference=options.get("reference"),
        historical=options.get("historical"),
        variable=variable,
    )


def _as_ensemble(fine: xr.DataArray, da: xr.DataArray, tdim: str, b: _Baseline) -> xr.DataArray:
    """One-member ``(member, time, lat, lon)`` float32 output with the input's attributes."""
    lat, lon = spatial_dims(fine)
    out = fine.transpose(tdim, lat, lon).expand_dims(member=1).astype("float32")
    out = out.assign_coords(member=member_coord(1))
    out.attrs = {
        **{k: v for k, v in da.attrs.items() if k not in ("history", "grid_mapping")},
        **({"grid_mapping": fine.attrs["grid_mapping"]} if "grid_mapping" in fine.attrs else {}),
        "esmscale_method": b.name,
        "esmscale_version": __version__,
        "history": f"esmscale {__version__}: {b.name} interpolation"
        + (" after quantile delta mapping" if b.qdm else ""),
    }
    out.name = da.name
    return out


def _interpolate(
    obj: xr.Dataset | xr.DataArray,
    model: Any,
    baseline: _Baseline,
    *,
    target: xr.Dataset | xr.DataArray | None = None,
    variable: str | None = None,
    factor: int | None = None,
    check: str = "raise",
    **options: Any,
) -> xr.DataArray | xr.Dataset:
    unknown = set(options) - _IGNORED - _QDM_OPTIONS
    if unknown:
        raise EsmscaleError(f"interpolation baselines do not take {sorted(unknown)}.")
    da = select_variable(obj, variable)
    tdim = check_time(da)
    da = check_field(da, check)
    if factor is None:
        factor = load_model(model).config.factor if model is not None else 4
    tgt = refine_grid(da, factor) if target is None else target
    if is_rectilinear_latlon(da) and is_rectilinear_latlon(tgt):
        fine = regrid(da, tgt, method=baseline.regrid_method)
    else:  # rotated-pole or projected grids
        fine = regrid_cf(da, tgt, method=baseline.regrid_method)
    if baseline.qdm:
        fine = _quantile_mapped(fine, str(da.attrs.get("units")), variable, options)
    out = _as_ensemble(fine, da, tdim, baseline)
    return out.to_dataset() if isinstance(obj, xr.Dataset) else out


@register("bilinear")
def _bilinear(
    obj: xr.Dataset | xr.DataArray, model: Any = None, **kwargs: Any
) -> xr.DataArray | xr.Dataset:
    return _interpolate(obj, model, _Baseline("bilinear", "bilinear"), **kwargs)


@register("conservative")
def _conservative(
    obj: xr.Dataset | xr.DataArray, model: Any = None, **kwargs: Any
) -> xr.DataArray | xr.Dataset:
    return _interpolate(obj, model, _Baseline("conservative", "conservative"), **kwargs)


@register("qdm-bilinear")
def _qdm_bilinear(
    obj: xr.Dataset | xr.DataArray, model: Any = None, **kwargs: Any
) -> xr.DataArray | xr.Dataset:
    return _interpolate(obj, model, _Baseline("qdm-bilinear", "bilinear", qdm=True), **kwargs)
