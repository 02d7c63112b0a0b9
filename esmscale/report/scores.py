"""The numbers of the evaluation report: lazy metrics per method and the ``metrics.json`` dict.

Nothing here draws: :func:`esmscale.report.evaluation.evaluate` computes what
:func:`method_lazy`, :func:`obs_lazy` and :func:`extra_lazy` describe (one ``dask.compute``
each), :func:`assemble` turns the computed values into the JSON-ready metrics and
:mod:`esmscale.report.drawing` draws the figures from the same values. Formulas:
``docs/evaluation.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from esmscale import metrics as M
from esmscale._version import __version__
from esmscale.errors import EsmscaleError
from esmscale.metrics import checks as C

__all__ = [
    "ScoreSpec",
    "Scores",
    "assemble",
    "crps_curve",
    "extra_lazy",
    "jsonable",
    "method_lazy",
    "obs_lazy",
    "pick_map_time",
]

Aligned = Mapping[str, tuple[xr.DataArray, xr.DataArray]]


@dataclass(frozen=True)
class ScoreSpec:
    """The options of one evaluation, resolved once and shared by every step.

    Attributes
    ----------
    obs
        The observations (standard-calendar times), dims ``(time?, lat, lon)``.
    tdim
        Name of the time dimension of ``obs`` (None for a single field).
    coarse
        The coarse input, or None.
    factor
        Downscaling factor, or None.
    k_star, k_source, k_star_per_degree
        The PSD-error cut-off in cycles per fine cell, where it came from, and in cycles per
        degree (the spectra's wavenumbers).
    threshold, quantiles, bins
        Wet-day threshold, quantile levels and number of histogram bins.
    curve
        CRPS against noise level from :func:`crps_curve`, or None.

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(16, 16, 4, seed=1).pr  # (time, lat, lon), mm day-1
    >>> spec = ScoreSpec(
    ...     obs=obs, tdim="time", coarse=None, factor=None, k_star=0.0, k_source="given",
    ...     k_star_per_degree=0.0, threshold=1.0, quantiles=(0.5, 0.99), bins=20, curve=None,
    ... )
    >>> spec.units, spec.obs.shape
    ('mm day-1', (4, 16, 16))
    """

    obs: xr.DataArray
    tdim: str | None
    coarse: xr.DataArray | None
    factor: int | None
    k_star: float
    k_source: str
    k_star_per_degree: float
    threshold: float
    quantiles: tuple[float, ...]
    bins: int
    curve: dict[str, Any] | None

    @property
    def units(self) -> str:
        """Units of the observations ("" if none)."""
        return str(self.obs.attrs.get("units", ""))


@dataclass(frozen=True)
class Scores:
    """Computed (numpy-backed) values: observations, each method, histograms and extras.

    Examples
    --------
    What :func:`esmscale.evaluate` computes, one ``dask.compute`` per step:

    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(16, 16, 4, seed=1).pr  # (time, lat, lon), mm day-1
    >>> spec = ScoreSpec(
    ...     obs=obs, tdim="time", coarse=None, factor=None, k_star=0.0, k_source="given",
    ...     k_star_per_degree=0.0, threshold=1.0, quantiles=(0.5, 0.99), bins=20, curve=None,
    ... )
    >>> ens = xr.concat([obs * 0.9, obs * 1.1], dim="member")  # a two-member "method"
    >>> aligned = {"toy": M.align_to_obs(ens, obs)}
    >>> import dask
    >>> obs_values = dask.compute(obs_lazy(spec))[0]
    >>> map_time = pick_map_time(spec, aligned)
    >>> lazy = method_lazy(*aligned["toy"], spec, map_time=map_time, obs_values=obs_values)
    >>> methods = {"toy": dask.compute(lazy)[0]}
    >>> extra = dask.compute(extra_lazy(spec, aligned, obs_values, methods, map_time))[0]
    >>> scores = Scores(obs=obs_values, methods=methods, extra=extra, map_time=map_time)
    >>> scores.methods["toy"]["members"], sorted(scores.extra["hists"])
    (2, ['observed', 'toy'])
    """

    obs: Mapping[str, Any]
    methods: Mapping[str, Mapping[str, Any]]
    extra: Mapping[str, Any]
    map_time: Any


def jsonable(x: Any) -> Any:
    """Plain Python numbers/lists/dicts; NaN and infinities become None.

    Examples
    --------
    >>> jsonable({"a": np.float32(0.5), "b": np.array([1.0, np.nan])})
    {'a': 0.5, 'b': [1.0, None]}
    """
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, xr.DataArray):
        x = x.values
    if isinstance(x, np.ndarray):
        return [jsonable(v) for v in x.tolist()] if x.ndim else jsonable(x.item())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    return x


def _scalar(da: Any) -> float | None:
    v = float(np.asarray(da.values if isinstance(da, xr.DataArray) else da))
    return v if math.isfinite(v) else None


def crps_curve(crps_vs_t: Any) -> dict[str, Any] | None:
    """``{"t", "crps", "t_best"}`` sorted by t from a dict or a Calibration (None: no curve).

    Examples
    --------
    >>> crps_curve({0.2: 0.7, 0.1: 0.9})
    {'t': [0.1, 0.2], 'crps': [0.9, 0.7], 't_best': 0.2}
    """
    if crps_vs_t is None:
        return None
    if isinstance(crps_vs_t, Mapping):
        pairs = sorted((float(t), float(c)) for t, c in crps_vs_t.items())
    elif hasattr(crps_vs_t, "t_grid") and hasattr(crps_vs_t, "crps"):
        t_grid, crps = np.asarray(crps_vs_t.t_grid), np.asarray(crps_vs_t.crps)
        if t_grid.shape != crps.shape:
            raise EsmscaleError(
                f"crps_vs_t: t_grid has {t_grid.size} values but crps has {crps.size}."
            )
        pairs = sorted(zip(t_grid.tolist(), crps.tolist(), strict=True))
    else:
        raise EsmscaleError(
            "crps_vs_t must be a dict {t: CRPS} or a Calibration with t_grid and crps (from "
            f"calibrate_noise_level(..., held_out=...)), got {type(crps_vs_t).__name__}."
        )
    if not pairs:
        return None
    t, c = [p[0] for p in pairs], [p[1] for p in pairs]
    finite = [i for i, v in enumerate(c) if math.isfinite(v)]
    best = t[min(finite, key=lambda i: c[i])] if finite else None
    return {"t": t, "crps": c, "t_best": best}


def obs_lazy(spec: ScoreSpec) -> dict[str, Any]:
    """Lazy statistics of the observations (``mask``: cells valid at every time).

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(16, 16, 4, seed=1).pr  # (time, lat, lon), mm day-1
    >>> spec = ScoreSpec(
    ...     obs=obs, tdim="time", coarse=None, factor=None, k_star=0.0, k_source="given",
    ...     k_star_per_degree=0.0, threshold=1.0, quantiles=(0.5, 0.99), bins=20, curve=None,
    ... )
    >>> lazy = obs_lazy(spec)
    >>> sorted(lazy)
    ['mask', 'max', 'mean', 'min', 'psd', 'quantiles', 'wet_day_fraction', 'zonal_mean']
    >>> import dask
    >>> values = dask.compute(lazy)[0]
    >>> bool(np.isclose(values["mean"], obs.mean())), bool(values["mask"].all())
    (True, True)
    """
    o, tdim = spec.obs, spec.tdim
    mask = o.notnull().all(tdim) if tdim is not None else o.notnull()
    return {
        "psd": M.radial_psd(o, mask=mask),
        "quantiles": o.quantile([float(q) for q in spec.quantiles], skipna=True),
        "wet_day_fraction": M.wet_day_fraction(o, spec.threshold),
        "zonal_mean": M.zonal_mean(o),
        "mean": o.mean(),
        "min": o.min(),
        "max": o.max(),
        "mask": mask,
    }


def pick_map_time(spec: ScoreSpec, aligned: Aligned) -> Any:
    """The wettest (largest spatial mean) observed time common to all methods, or None.

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(16, 16, 4, seed=1).pr  # (time, lat, lon), mm day-1
    >>> spec = ScoreSpec(
    ...     obs=obs, tdim="time", coarse=None, factor=None, k_star=0.0, k_source="given",
    ...     k_star_per_degree=0.0, threshold=1.0, quantiles=(0.5, 0.99), bins=20, curve=None,
    ... )
    >>> ens = xr.concat([obs * 0.9, obs * 1.1], dim="member")  # a two-member "method"
    >>> aligned = {"toy": M.align_to_obs(ens, obs)}
    >>> wettest = obs.mean(("lat", "lon")).idxmax().values
    >>> pick_map_time(spec, aligned) == wettest
    True
    >>> pick_map_time(spec, {"late": M.align_to_obs(ens.isel(time=[3]), obs)})  # shared times
    Timestamp('2000-01-04 00:00:00')
    """
    o, tdim = spec.obs, spec.tdim
    if tdim is None or tdim not in o.coords:
        return None
    common = o.indexes[tdim]
    for _, o_m in aligned.values():
        common = common.intersection(o_m.indexes[tdim])
    if len(common) == 0:
        return None
    means = np.asarray(o.sel({tdim: common}).mean(list(o.dims[-2:])).values)
    i = int(np.nanargmax(means)) if np.isfinite(means).any() else 0
    return common[i]


def _snapshot(r: xr.DataArray, o: xr.DataArray, tdim: str | None, map_time: Any) -> xr.DataArray:
    """The result at ``map_time`` (its first time if it does not have that one)."""
    if tdim is None:
        return r
    if map_time is not None and map_time in o.indexes[tdim]:
        return r.sel({tdim: map_time})
    return r.isel({tdim: 0})


def _ensemble_lazy(
    r: xr.DataArray, o: xr.DataArray, tdim: str | None, snap: xr.DataArray
) -> dict[str, Any]:
    """The scores and map panels that need two or more members."""
    lazy: dict[str, Any] = {
        "crps": M.fair_crps(r, o),
        "spread_skill": M.spread_skill_ratio(r, o),
        "rank_histogram": M.rank_histogram(r, o),
    }
    if tdim is not None:
        ok = o.notnull() & r.notnull().all(M.MEMBER)
        red = list(o.dims[-2:])
        lazy["spread_t"] = np.sqrt(r.var(M.MEMBER, ddof=1).where(ok).mean(red))
        lazy["rmse_t"] = np.sqrt(((r.mean(M.MEMBER) - o) ** 2).where(ok).mean(red))
    lazy["snap_members"] = snap.isel({M.MEMBER: slice(0, 2)})
    lazy["snap_mean"] = snap.mean(M.MEMBER)
    lazy["snap_sd"] = snap.std(M.MEMBER, ddof=1)
    return lazy


def method_lazy(
    r: xr.DataArray,
    o: xr.DataArray,
    spec: ScoreSpec,
    *,
    map_time: Any,
    obs_values: Mapping[str, Any],
) -> dict[str, Any]:
    """Lazy metrics of one method (``r``) against its observations ``o``, computed together.

    ``obs_values`` are the computed :func:`obs_lazy` (the observed PSD and the valid mask).

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(16, 16, 4, seed=1).pr  # (time, lat, lon), mm day-1
    >>> spec = ScoreSpec(
    ...     obs=obs, tdim="time", coarse=None, factor=None, k_star=0.0, k_source="given",
    ...     k_star_per_degree=0.0, threshold=1.0, quantiles=(0.5, 0.99), bins=20, curve=None,
    ... )
    >>> ens = xr.concat([obs * 0.9, obs * 1.1], dim="member")  # a two-member "method"
    >>> aligned = {"toy": M.align_to_obs(ens, obs)}
    >>> import dask
    >>> obs_values = dask.compute(obs_lazy(spec))[0]
    >>> map_time = pick_map_time(spec, aligned)
    >>> lazy = method_lazy(*aligned["toy"], spec, map_time=map_time, obs_values=obs_values)
    >>> methods = {"toy": dask.compute(lazy)[0]}
    >>> toy = methods["toy"]
    >>> toy["members"], toy["n_times"], "crps" in toy  # two members: ensemble scores too
    (2, 4, True)
    >>> bool(np.isclose(toy["mae"], 0.1 * obs.mean()))  # members are 10 % off either way
    True
    """
    members = int(r.sizes[M.MEMBER]) if M.MEMBER in r.dims else 1
    tdim = next((str(d) for d in o.dims[:-2]), None)
    psd = M.radial_psd(r, mask=obs_values["mask"])
    q = spec.quantiles
    lazy: dict[str, Any] = {
        "members": members,
        "n_times": int(o.sizes[tdim]) if tdim is not None else 1,
        "mae": M.mean_absolute_error(r, o),
        "psd": psd,
        "psd_error": M.psd_error(psd, obs_values["psd"], k_min=spec.k_star_per_degree),
        "quantile_error": M.quantile_errors(r, o, q),
        "quantile_error_relative": M.quantile_errors(r, o, q, relative=True),
        "histogram_error": M.histogram_error(r, o, bins=spec.bins),
        "wet_day_fraction": M.wet_day_fraction(r, spec.threshold),
        "bias_map": M.bias_map(r, o),
        "zonal_mean": M.zonal_mean(r),
        "zonal_profile_error": M.zonal_profile_error(r, o),
        "min": r.min(),
        "max": r.max(),
    }
    if spec.coarse is not None:
        lazy["pooled_corr"] = M.pooled_corr(r, spec.coarse, spec.factor)
        lazy["lowpass_corr"] = M.lowpass_corr(r, spec.coarse, spec.factor)
    snap = _snapshot(r, o, tdim, map_time)
    if members >= 2:
        lazy.update(_ensemble_lazy(r, o, tdim, snap))
    else:
        lazy["snap_mean"] = snap.isel({M.MEMBER: 0}) if M.MEMBER in snap.dims else snap
    return lazy


def _input_snapshot(spec: ScoreSpec, map_time: Any) -> xr.DataArray | None:
    """The coarse input at ``map_time`` (None if it does not have that time)."""
    coarse, o, tdim = spec.coarse, spec.obs, spec.tdim
    if coarse is None:
        return None
    clat, clon = C.latlon_dims(coarse, "coarse")
    ct = C.time_dim(coarse, clat, clon, "coarse")
    if tdim is None or ct is None:
        return coarse if ct is None else coarse.isel({ct: 0})
    if map_time is None:
        return None
    try:
        _, c = C.common_times(o.sel({tdim: [map_time]}), tdim, coarse, ct, "obs", "coarse")
    except EsmscaleError:
        return None
    return c.isel({tdim: 0})


def extra_lazy(
    spec: ScoreSpec,
    aligned: Aligned,
    obs_values: Mapping[str, Any],
    methods: Mapping[str, Mapping[str, Any]],
    map_time: Any,
) -> dict[str, Any]:
    """Histograms on common bin edges, and the coarse input's PSD and map (if given).

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(16, 16, 4, seed=1).pr  # (time, lat, lon), mm day-1
    >>> spec = ScoreSpec(
    ...     obs=obs, tdim="time", coarse=None, factor=None, k_star=0.0, k_source="given",
    ...     k_star_per_degree=0.0, threshold=1.0, quantiles=(0.5, 0.99), bins=20, curve=None,
    ... )
    >>> ens = xr.concat([obs * 0.9, obs * 1.1], dim="member")  # a two-member "method"
    >>> aligned = {"toy": M.align_to_obs(ens, obs)}
    >>> import dask
    >>> obs_values = dask.compute(obs_lazy(spec))[0]
    >>> map_time = pick_map_time(spec, aligned)
    >>> lazy = method_lazy(*aligned["toy"], spec, map_time=map_time, obs_values=obs_values)
    >>> methods = {"toy": dask.compute(lazy)[0]}
    >>> extra = dask.compute(extra_lazy(spec, aligned, obs_values, methods, map_time))[0]
    >>> sorted(extra["hists"]), len(extra["hists"]["observed"])  # spec.bins bins
    (['observed', 'toy'], 20)
    """
    lo = min([float(obs_values["min"])] + [float(c["min"]) for c in methods.values()])
    hi = max([float(obs_values["max"])] + [float(c["max"]) for c in methods.values()])
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, spec.bins + 1)
    extra: dict[str, Any] = {
        "hists": {
            "observed": M.histogram(spec.obs, edges),
            **{n: M.histogram(r, edges) for n, (r, _) in aligned.items()},
        }
    }
    if spec.coarse is not None and spec.factor:
        extra["psd_input"] = M.radial_psd(spec.coarse)
        snap = _input_snapshot(spec, map_time)
        if snap is not None:
            extra["input_snap"] = snap
    return extra


def _method_summary(
    c: Mapping[str, Any], qkeys: list[str], obs_wet: float | None
) -> dict[str, Any]:
    """The ``metrics.json`` entry of one method from its computed values."""
    crps = _scalar(c["crps"]) if "crps" in c else None
    mae = _scalar(c["mae"])
    wet = _scalar(c["wet_day_fraction"])
    rh = c.get("rank_histogram")
    return {
        "members": int(c["members"]),
        "n_times": int(c["n_times"]),
        "score": crps if crps is not None else mae,
        "score_name": "crps" if "crps" in c else "mae",
        "crps": crps,
        "mae": mae,
        "spread_skill": _scalar(c["spread_skill"]) if "spread_skill" in c else None,
        "rank_histogram": None if rh is None else np.asarray(rh.values).tolist(),
        "rank_flatness": None if rh is None else _scalar(M.rank_flatness(rh)),
        "psd_error": _scalar(c["psd_error"]),
        "quantile_error": dict(zip(qkeys, np.asarray(c["quantile_error"]).tolist(), strict=True)),
        "quantile_error_relative": dict(
            zip(qkeys, np.asarray(c["quantile_error_relative"]).tolist(), strict=True)
        ),
        "histogram_error": _scalar(c["histogram_error"]),
        "wet_day_fraction": wet,
        "wet_day_error": None if wet is None or obs_wet is None else wet - obs_wet,
        "mean_bias": _scalar(c["bias_map"].mean()),
        "zonal_profile_error": _scalar(c["zonal_profile_error"]),
        "pooled_corr": _scalar(c["pooled_corr"]) if "pooled_corr" in c else None,
        "lowpass_corr": _scalar(c["lowpass_corr"]) if "lowpass_corr" in c else None,
    }


def _period(spec: ScoreSpec) -> dict[str, Any]:
    if spec.tdim is None:
        return {"start": "-", "end": "-", "n_times": 1}
    t = spec.obs[spec.tdim].values
    return {"start": str(t[0])[:19], "end": str(t[-1])[:19], "n_times": int(t.size)}


def _spectra(scores: Scores) -> dict[str, dict[str, list[float]]]:
    """Label -> ``{"wavenumber", "psd"}`` (cycles per degree, per unit wavenumber area).

    The coarse input's spectrum is on its own grid: with physical wavenumbers and the area
    normalisation of :func:`esmscale.metrics.radial_psd` it needs no rescaling.
    """
    psds = {"observed": scores.obs["psd"], **{n: c["psd"] for n, c in scores.methods.items()}}
    if "psd_input" in scores.extra:
        psds["coarse input"] = scores.extra["psd_input"]
    return {
        n: {"wavenumber": p["wavenumber"].values.tolist(), "psd": p.values.tolist()}
        for n, p in psds.items()
    }


def assemble(spec: ScoreSpec, scores: Scores) -> dict[str, Any]:
    """The metrics dict of :func:`esmscale.evaluate` (without ``files``).

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(16, 16, 4, seed=1).pr  # (time, lat, lon), mm day-1
    >>> spec = ScoreSpec(
    ...     obs=obs, tdim="time", coarse=None, factor=None, k_star=0.0, k_source="given",
    ...     k_star_per_degree=0.0, threshold=1.0, quantiles=(0.5, 0.99), bins=20, curve=None,
    ... )
    >>> ens = xr.concat([obs * 0.9, obs * 1.1], dim="member")  # a two-member "method"
    >>> aligned = {"toy": M.align_to_obs(ens, obs)}
    >>> import dask
    >>> obs_values = dask.compute(obs_lazy(spec))[0]
    >>> map_time = pick_map_time(spec, aligned)
    >>> lazy = method_lazy(*aligned["toy"], spec, map_time=map_time, obs_values=obs_values)
    >>> methods = {"toy": dask.compute(lazy)[0]}
    >>> extra = dask.compute(extra_lazy(spec, aligned, obs_values, methods, map_time))[0]
    >>> metrics = assemble(spec, Scores(obs_values, methods, extra, map_time))
    >>> metrics["variable"], metrics["grid"], metrics["period"]["n_times"]
    ('pr', {'ny': 16, 'nx': 16}, 4)
    >>> toy = metrics["methods"]["toy"]
    >>> toy["score_name"], sorted(toy["quantile_error"])
    ('crps', ['0.5', '0.99'])
    """
    o = spec.obs
    qkeys = [str(float(q)) for q in spec.quantiles]
    obs_wet = _scalar(scores.obs["wet_day_fraction"])
    obs_q = np.asarray(scores.obs["quantiles"]).tolist()
    return {
        "variable": str(o.name) if o.name is not None else None,
        "units": spec.units,
        "esmscale_version": __version__,
        "period": _period(spec),
        "grid": {"ny": int(o.shape[-2]), "nx": int(o.shape[-1])},
        "factor": spec.factor,
        "k_star": spec.k_star,
        "k_star_source": spec.k_source,
        "threshold": spec.threshold,
        "quantiles": [float(q) for q in spec.quantiles],
        "bins": spec.bins,
        "obs": {
            "wet_day_fraction": obs_wet,
            "mean": _scalar(scores.obs["mean"]),
            "quantiles": dict(zip(qkeys, obs_q, strict=True)),
        },
        "methods": {n: _method_summary(c, qkeys, obs_wet) for n, c in scores.methods.items()},
        "crps_vs_t": spec.curve,
        "k_star_per_degree": spec.k_star_per_degree,
        "spectra": _spectra(scores),
    }
