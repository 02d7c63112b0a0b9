"""Evaluate downscaled results against observations: metrics, figures and ``report.md``.

:func:`evaluate` checks every result against the observations (same grid, calendar and
overlapping times, see :func:`esmscale.metrics.align_to_obs`), computes the metrics of
:mod:`esmscale.metrics` (one ``dask.compute`` per method, so each input is read once or
twice), draws the figures of :mod:`esmscale.report` and writes ``report.md`` and
``metrics.json`` in ``output_dir``. Formulas: ``docs/evaluation.md``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dask
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from esmscale import metrics as M
from esmscale._version import __version__
from esmscale.errors import EsmscaleError
from esmscale.metrics import checks as C
from esmscale.report import (
    MapPanel,
    is_synthetic,
    plot_crps_vs_t,
    plot_histograms,
    plot_maps,
    plot_psd,
    plot_rank_histograms,
    plot_spread_skill,
    plot_zonal_profiles,
    resolve_coastlines,
    write_report,
)

__all__ = ["evaluate"]


def _jsonable(x: Any) -> Any:
    """Plain Python numbers/lists/dicts; NaN and infinities become None."""
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, xr.DataArray):
        x = x.values
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()] if x.ndim else _jsonable(x.item())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    return x


def _scalar(da: Any) -> float | None:
    v = float(np.asarray(da.values if isinstance(da, xr.DataArray) else da))
    return v if math.isfinite(v) else None


def _crps_curve(crps_vs_t: Any) -> dict[str, Any] | None:
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


def _slug(name: str, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "method"
    slug, i = base, 2
    while slug in used:
        slug, i = f"{base}_{i}", i + 1
    used.add(slug)
    return slug


def _check_results(results: Any) -> dict[str, xr.DataArray]:
    if not isinstance(results, Mapping) or not results:
        raise EsmscaleError(
            "results must be a non-empty dict {method name: DataArray}, e.g. "
            "{'cm': downscaled, 'bilinear': interpolated}."
        )
    out = {}
    for name, value in results.items():
        if not isinstance(name, str) or not name:
            raise EsmscaleError(f"results keys must be non-empty method names, got {name!r}.")
        out[name] = C.as_dataarray(value, f"results[{name!r}]")
    return out


def _method_lazy(
    r: xr.DataArray,
    o: xr.DataArray,
    coarse: xr.DataArray | None,
    *,
    factor: int | None,
    k_star: float,
    threshold: float,
    quantiles: Sequence[float],
    bins: int,
    map_time: Any,
    psd_obs: xr.DataArray,
    mask: xr.DataArray,
) -> dict[str, Any]:
    """Lazy metrics of one method, to be computed together (inputs read once)."""
    members = int(r.sizes[M.MEMBER]) if M.MEMBER in r.dims else 1
    tdim = next((str(d) for d in o.dims[:-2]), None)
    psd = M.radial_psd(r, mask=mask)
    lazy: dict[str, Any] = {
        "members": members,
        "n_times": int(o.sizes[tdim]) if tdim is not None else 1,
        "mae": M.mean_absolute_error(r, o),
        "psd": psd,
        "psd_error": M.psd_error(psd, psd_obs, k_min=k_star),
        "quantile_error": M.quantile_errors(r, o, quantiles),
        "quantile_error_relative": M.quantile_errors(r, o, quantiles, relative=True),
        "histogram_error": M.histogram_error(r, o, bins=bins),
        "wet_day_fraction": M.wet_day_fraction(r, threshold),
        "bias_map": M.bias_map(r, o),
        "zonal_mean": M.zonal_mean(r),
        "zonal_profile_error": M.zonal_profile_error(r, o),
        "min": r.min(),
        "max": r.max(),
    }
    if coarse is not None:
        lazy["pooled_corr"] = M.pooled_corr(r, coarse, factor)
        lazy["lowpass_corr"] = M.lowpass_corr(r, coarse, factor)
    if tdim is None:
        snap = r
    elif map_time is not None and map_time in o.indexes[tdim]:
        snap = r.sel({tdim: map_time})
    else:
        snap = r.isel({tdim: 0})
    if members >= 2:
        lazy["crps"] = M.fair_crps(r, o)
        lazy["spread_skill"] = M.spread_skill_ratio(r, o)
        lazy["rank_histogram"] = M.rank_histogram(r, o)
        if tdim is not None:
            ok = o.notnull() & r.notnull().all(M.MEMBER)
            red = list(o.dims[-2:])
            lazy["spread_t"] = np.sqrt(r.var(M.MEMBER, ddof=1).where(ok).mean(red))
            lazy["rmse_t"] = np.sqrt(((r.mean(M.MEMBER) - o) ** 2).where(ok).mean(red))
        lazy["snap_members"] = snap.isel({M.MEMBER: slice(0, 2)})
        lazy["snap_mean"] = snap.mean(M.MEMBER)
        lazy["snap_sd"] = snap.std(M.MEMBER, ddof=1)
    else:
        lazy["snap_mean"] = snap.isel({M.MEMBER: 0}) if M.MEMBER in snap.dims else snap
    return lazy


def _standard_times(da: xr.DataArray, tdim: str | None) -> xr.DataArray:
    """Standard-calendar cftime axes as numpy datetimes (as align_to_obs does)."""
    if tdim is None or tdim not in da.coords:
        return da
    idx = C.time_index(da, tdim)
    return da if idx is da.indexes[tdim] else da.assign_coords({tdim: idx})


def _pick_map_time(
    o: xr.DataArray, tdim: str | None, aligned: Mapping[str, tuple[xr.DataArray, xr.DataArray]]
) -> Any:
    """The wettest (largest spatial mean) observed time common to all methods, or None."""
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


def _input_snapshot(
    coarse: xr.DataArray, o: xr.DataArray, tdim: str | None, map_time: Any
) -> xr.DataArray | None:
    """The coarse input at ``map_time`` (None if it does not have that time)."""
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


def evaluate(
    obs: xr.DataArray | xr.Dataset,
    results: Mapping[str, xr.DataArray | xr.Dataset],
    coarse: xr.DataArray | xr.Dataset | None = None,
    *,
    output_dir: str | os.PathLike[str],
    factor: int | None = None,
    k_star: float | None = None,
    crps_vs_t: Mapping[float, float] | Any | None = None,
    progress: bool = True,
    maps: bool = True,
    threshold: float = 1.0,
    quantiles: Sequence[float] = M.DEFAULT_QUANTILES,
    bins: int = 500,
    coastline_data: str | os.PathLike[str] | None = None,
    download_coastlines: bool | None = None,
) -> dict[str, Any]:
    """Compare downscaled results with observations; write ``report.md``, figures and JSON.

    Parameters
    ----------
    obs
        High-resolution observations, dims ``(time, lat, lon)``, on the results' grid.
    results
        Method name -> result with dims ``(member?, time, lat, lon)`` (e.g. the output of
        :func:`esmscale.downscale`, and baselines such as bilinear interpolation). Each is
        compared on the times it shares with ``obs``.
    coarse
        The coarse input that was downscaled (e.g. the ESM after any bias correction), dims
        ``(time, lat, lon)``: enables the pooled and low-pass correlations and the input map.
    output_dir
        Folder for ``report.md``, ``metrics.json`` and the PNG figures (created if needed).
    factor
        Downscaling factor (default: ratio of the ``obs`` and ``coarse`` grid sizes).
    k_star
        Wavenumber (cycles per fine cell) above which the PSD error is averaged, e.g.
        ``Calibration.k_star``. Default ``1 / (2 * factor)``, the smallest scale the coarse
        grid resolves, or 0 (all scales) without a factor. Spectra are in cycles per degree
        (:func:`esmscale.metrics.radial_psd`); ``k_star`` is converted with
        :func:`esmscale.metrics.per_degree` (reported as ``k_star_per_degree``).
    crps_vs_t
        ``{t: CRPS}`` or a :class:`esmscale.Calibration` with ``t_grid``/``crps``: adds the
        CRPS-against-noise-level figure and table.
    progress
        Show a tqdm progress bar.
    maps
        Draw coastlines on the maps: offline GSHHS data through Cartopy (see
        :func:`esmscale.report.resolve_coastlines`); without Cartopy or the data the maps are
        drawn on plain latitude/longitude axes and one :class:`esmscale.EsmscaleWarning`
        says what provides them. Synthetic fields (no real location) never get coastlines.
        False draws the maps without coastlines, silently.
    threshold
        Wet-day threshold in the data's units (1 mm day-1).
    quantiles, bins
        Quantile levels and the number of histogram bins.
    coastline_data
        A Cartopy data folder holding ``shapefiles/gshhs/{l,c}/GSHHS_*_L1.shp``, searched
        instead of ``$CARTOPY_DATA_DIR``, Cartopy's folders and ``/usr/share/cartopy/data``.
    download_coastlines
        Let Cartopy download Natural Earth coastlines if no offline data is found (default:
        ``$ESMSCALE_DOWNLOAD_COASTLINES`` is 1, off otherwise).

    Returns
    -------
    dict
        JSON-serialisable metrics (also written to ``metrics.json``): ``methods`` maps each
        name to ``score`` (fair CRPS, or MAE for one member), ``crps``, ``mae``,
        ``spread_skill``, ``rank_flatness``, ``rank_histogram``, ``psd_error``,
        ``quantile_error`` and ``quantile_error_relative`` (keyed by quantile),
        ``histogram_error``, ``wet_day_fraction``, ``wet_day_error``, ``mean_bias``,
        ``zonal_profile_error``, ``pooled_corr``, ``lowpass_corr``; plus ``obs``, ``period``,
        ``grid``, ``factor``, ``k_star``, ``k_star_per_degree``, ``crps_vs_t`` and ``files``.

    Examples
    --------
    >>> import tempfile
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(16, 16, 4, seed=1).pr
    >>> noisy = xr.concat([obs * 0.9, obs * 1.1], dim="member")
    >>> out = evaluate(obs, {"toy": noisy}, output_dir=tempfile.mkdtemp(), maps=False,
    ...                progress=False)
    >>> out["methods"]["toy"]["members"], round(out["methods"]["toy"]["mean_bias"], 6)
    (2, 0.0)
    """
    res = _check_results(results)
    o = C.as_dataarray(obs, "obs")
    lat, lon = C.latlon_dims(o, "obs")
    tdim = C.time_dim(o, lat, lon, "obs")
    o = _standard_times(o, tdim)
    given = [obs, o, *results.values(), *res.values(), coarse]
    synthetic = any(is_synthetic(x) for x in given if isinstance(x, xr.DataArray | xr.Dataset))
    coast = (
        resolve_coastlines(coastline_data, download=download_coastlines)
        if maps and not synthetic
        else None
    )
    curve = _crps_curve(crps_vs_t)
    if bins < 1:
        raise EsmscaleError(f"bins must be >= 1, got {bins}.")
    aligned = {n: M.align_to_obs(r, o, what=f"results[{n!r}]") for n, r in res.items()}
    c_da: xr.DataArray | None = None
    if coarse is not None:
        c_da = C.as_dataarray(coarse, "coarse")
        clat, _ = C.latlon_dims(c_da, "coarse")
        if factor is None:
            factor = int(o.sizes[lat]) // max(int(c_da.sizes[clat]), 1)
    if k_star is not None:
        k_star_v, k_src = float(k_star), "given"
    elif factor:
        k_star_v, k_src = 1.0 / (2 * factor), "default: 1 / (2 * factor)"
    else:
        k_star_v, k_src = 0.0, "default: all wavenumbers"
    k_deg = M.per_degree(k_star_v, o)  # the spectra's wavenumbers are in cycles per degree
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    units = str(o.attrs.get("units", ""))

    n_ens = sum(M.MEMBER in r.dims and r.sizes[M.MEMBER] >= 2 for r, _ in aligned.values())
    n_fig = len(res) + 4 + (2 if n_ens else 0) + (1 if curve else 0)
    bar = tqdm(total=len(res) + 3 + n_fig, desc="evaluate", unit="step", disable=not progress)
    try:
        bar.set_postfix_str("observations")
        mask = o.notnull().all(tdim) if tdim is not None else o.notnull()
        obs_lazy: dict[str, Any] = {
            "psd": M.radial_psd(o, mask=mask),
            "quantiles": o.quantile([float(q) for q in quantiles], skipna=True),
            "wet_day_fraction": M.wet_day_fraction(o, threshold),
            "zonal_mean": M.zonal_mean(o),
            "mean": o.mean(),
            "min": o.min(),
            "max": o.max(),
            "mask": mask,
        }
        obs_v = dask.compute(obs_lazy)[0]
        map_time = _pick_map_time(o, tdim, aligned)
        bar.update(1)

        computed: dict[str, dict[str, Any]] = {}
        for name, (r, o_m) in aligned.items():
            bar.set_postfix_str(f"metrics: {name}")
            lazy = _method_lazy(
                r, o_m, c_da, factor=factor, k_star=k_deg, threshold=threshold,
                quantiles=quantiles, bins=bins, map_time=map_time, psd_obs=obs_v["psd"],
                mask=obs_v["mask"],
            )  # fmt: skip
            computed[name] = dask.compute(lazy)[0]
            bar.update(1)

        bar.set_postfix_str("histograms")
        lo = min([float(obs_v["min"])] + [float(c["min"]) for c in computed.values()])
        hi = max([float(obs_v["max"])] + [float(c["max"]) for c in computed.values()])
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
        extra: dict[str, Any] = {
            "hists": {
                "observed": M.histogram(o, edges),
                **{n: M.histogram(r, edges) for n, (r, _) in aligned.items()},
            }
        }
        if c_da is not None and factor:
            extra["psd_input"] = M.radial_psd(c_da)
            snap = _input_snapshot(c_da, o, tdim, map_time)
            if snap is not None:
                extra["input_snap"] = snap
        extra_v = dask.compute(extra)[0]
        bar.update(1)

        bar.set_postfix_str("figures")
        metrics = _assemble(
            computed, obs_v, quantiles=quantiles, threshold=threshold, bins=bins, factor=factor,
            k_star=k_star_v, k_src=k_src, o=o, tdim=tdim, units=units, curve=curve,
        )  # fmt: skip
        metrics["k_star_per_degree"] = k_deg
        metrics["spectra"] = _spectra(computed, obs_v, extra_v)
        figures = _draw(
            out_dir, computed, obs_v, extra_v, metrics, o=o, tdim=tdim, map_time=map_time,
            units=units, coast=coast, k_star=k_deg, psd_v=metrics["spectra"], curve=curve,
            bar=bar,
        )  # fmt: skip
        report = write_report(out_dir / "report.md", metrics, figures)
        metrics["files"] = {
            "report": str(report),
            "metrics": str(out_dir / "metrics.json"),
            "figures": [str(out_dir / f) for fs in figures.values() for f in fs],
        }
        metrics = _jsonable(metrics)
        (out_dir / "metrics.json").write_text(
            json.dumps(metrics, indent=2, allow_nan=False), encoding="utf-8"
        )
        bar.update(1)
    finally:
        bar.close()
    return metrics


def _spectra(
    computed: Mapping[str, Mapping[str, Any]],
    obs_v: Mapping[str, Any],
    extra_v: Mapping[str, Any],
) -> dict[str, dict[str, list[float]]]:
    """Label -> ``{"wavenumber", "psd"}`` (cycles per degree, per unit wavenumber area).

    The coarse input's spectrum is on its own grid: with physical wavenumbers and the area
    normalisation of :func:`esmscale.metrics.radial_psd` it needs no rescaling.
    """
    psds = {"observed": obs_v["psd"], **{n: c["psd"] for n, c in computed.items()}}
    if "psd_input" in extra_v:
        psds["coarse input"] = extra_v["psd_input"]
    return {
        n: {"wavenumber": p["wavenumber"].values.tolist(), "psd": p.values.tolist()}
        for n, p in psds.items()
    }


def _assemble(
    computed: Mapping[str, Mapping[str, Any]],
    obs_v: Mapping[str, Any],
    *,
    quantiles: Sequence[float],
    threshold: float,
    bins: int,
    factor: int | None,
    k_star: float,
    k_src: str,
    o: xr.DataArray,
    tdim: str | None,
    units: str,
    curve: dict[str, Any] | None,
) -> dict[str, Any]:
    qkeys = [str(float(q)) for q in quantiles]
    obs_wet = _scalar(obs_v["wet_day_fraction"])
    methods: dict[str, Any] = {}
    for name, c in computed.items():
        members = int(c["members"])
        crps = _scalar(c["crps"]) if "crps" in c else None
        mae = _scalar(c["mae"])
        wet = _scalar(c["wet_day_fraction"])
        rh = c.get("rank_histogram")
        methods[name] = {
            "members": members,
            "n_times": int(c["n_times"]),
            "score": crps if crps is not None else mae,
            "score_name": "crps" if "crps" in c else "mae",
            "crps": crps,
            "mae": mae,
            "spread_skill": _scalar(c["spread_skill"]) if "spread_skill" in c else None,
            "rank_histogram": None if rh is None else np.asarray(rh.values).tolist(),
            "rank_flatness": None if rh is None else _scalar(M.rank_flatness(rh)),
            "psd_error": _scalar(c["psd_error"]),
            "quantile_error": dict(
                zip(qkeys, np.asarray(c["quantile_error"]).tolist(), strict=True)
            ),
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
    if tdim is not None:
        t = o[tdim].values
        period = {"start": str(t[0])[:19], "end": str(t[-1])[:19], "n_times": int(t.size)}
    else:
        period = {"start": "-", "end": "-", "n_times": 1}
    return {
        "variable": str(o.name) if o.name is not None else None,
        "units": units,
        "esmscale_version": __version__,
        "period": period,
        "grid": {"ny": int(o.shape[-2]), "nx": int(o.shape[-1])},
        "factor": factor,
        "k_star": k_star,
        "k_star_source": k_src,
        "threshold": threshold,
        "quantiles": [float(q) for q in quantiles],
        "bins": bins,
        "obs": {
            "wet_day_fraction": obs_wet,
            "mean": _scalar(obs_v["mean"]),
            "quantiles": dict(zip(qkeys, np.asarray(obs_v["quantiles"]).tolist(), strict=True)),
        },
        "methods": methods,
        "crps_vs_t": curve,
    }


def _draw(
    out_dir: Path,
    computed: Mapping[str, Mapping[str, Any]],
    obs_v: Mapping[str, Any],
    extra_v: Mapping[str, Any],
    metrics: Mapping[str, Any],
    *,
    o: xr.DataArray,
    tdim: str | None,
    map_time: Any,
    units: str,
    coast: Any,
    k_star: float,
    psd_v: Mapping[str, Mapping[str, Any]],
    curve: dict[str, Any] | None,
    bar: Any,
) -> dict[str, list[str]]:
    """Draw every figure; return section title -> file names relative to ``out_dir``."""

    def done(what: str) -> None:
        bar.set_postfix_str(f"figure: {what}")
        bar.update(1)

    figures: dict[str, list[str]] = {}
    used: set[str] = set()
    if tdim is None:
        obs_snap, when = o, ""
    elif map_time is not None:
        obs_snap, when = o.sel({tdim: map_time}), f" on {str(map_time)[:10]}"
    else:
        obs_snap, when = o.isel({tdim: 0}), ""
    files = []
    for name, c in computed.items():
        panels = []
        if "input_snap" in extra_v:
            panels.append(MapPanel("coarse input", extra_v["input_snap"]))
        if "snap_members" in c:
            for i in range(int(c["snap_members"].sizes[M.MEMBER])):
                panels.append(MapPanel(f"member {i + 1}", c["snap_members"].isel({M.MEMBER: i})))
            panels.append(MapPanel("ensemble mean", c["snap_mean"]))
            panels.append(MapPanel("ensemble SD", c["snap_sd"], "spread"))
        else:
            panels.append(MapPanel(name, c["snap_mean"]))
        panels.append(MapPanel("observed", obs_snap))
        f = f"maps_{_slug(name, used)}.png"
        plot_maps(out_dir / f, panels, title=f"{name}{when}", units=units, coastlines=coast)
        done(f)
        files.append(f)
    figures["Maps"] = files
    bias = [MapPanel(f"{n}: mean bias", c["bias_map"], "diff") for n, c in computed.items()]
    plot_maps(
        out_dir / "bias_maps.png", bias, title="Time-mean bias (method - observed)", units=units,
        coastlines=coast, ncols=min(3, len(bias)),
    )  # fmt: skip
    figures["Mean-bias maps"] = ["bias_maps.png"]
    done("bias_maps.png")

    spectra = {n: (np.asarray(s["wavenumber"]), np.asarray(s["psd"])) for n, s in psd_v.items()}
    plot_psd(
        out_dir / "psd.png", spectra, k_star=k_star if k_star > 0 else None,
        psd_units=str(obs_v["psd"].attrs.get("units", "")),
    )  # fmt: skip
    figures["Power spectra"] = ["psd.png"]
    done("psd.png")

    hists = extra_v["hists"]
    centres = np.asarray(hists["observed"]["bin_centre"].values)
    plot_histograms(
        out_dir / "histograms.png", centres, {k: np.asarray(v.values) for k, v in hists.items()},
        units=units,
    )  # fmt: skip
    figures["Histograms"] = ["histograms.png"]
    done("histograms.png")

    lat = np.asarray(obs_v["zonal_mean"][obs_v["zonal_mean"].dims[0]].values)
    profiles = {"observed": np.asarray(obs_v["zonal_mean"].values)}
    profiles.update({n: np.asarray(c["zonal_mean"].values) for n, c in computed.items()})
    plot_zonal_profiles(out_dir / "zonal_profiles.png", lat, profiles, units=units)
    figures["Zonal-mean profiles"] = ["zonal_profiles.png"]
    done("zonal_profiles.png")

    ens = {n: c for n, c in computed.items() if "rank_histogram" in c}
    if ens:
        plot_rank_histograms(
            out_dir / "rank_histograms.png",
            {n: np.asarray(c["rank_histogram"].values) for n, c in ens.items()},
            {n: metrics["methods"][n]["rank_flatness"] for n in ens},
        )
        figures["Rank histograms"] = ["rank_histograms.png"]
        done("rank_histograms.png")
        per_time = {
            n: (
                np.asarray(c["spread_t"]),
                np.asarray(c["rmse_t"]),
                metrics["methods"][n]["members"],
            )
            for n, c in ens.items()
            if "spread_t" in c
        }
        plot_spread_skill(
            out_dir / "spread_skill.png",
            {n: metrics["methods"][n]["spread_skill"] for n in ens},
            per_time,
        )
        figures["Spread-skill"] = ["spread_skill.png"]
        done("spread_skill.png")
    if curve is not None:
        plot_crps_vs_t(out_dir / "crps_vs_t.png", curve["t"], curve["crps"], t_star=curve["t_best"])
        figures["CRPS against noise level"] = ["crps_vs_t.png"]
        done("crps_vs_t.png")
    return figures
