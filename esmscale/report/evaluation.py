"""Evaluate downscaled results against observations: metrics, figures and ``report.md``.

:func:`evaluate` checks every result against the observations (same grid, calendar and
overlapping times, see :func:`esmscale.metrics.align_to_obs`), computes the metrics of
:mod:`esmscale.metrics` (:mod:`esmscale.report.scores`; one ``dask.compute`` per method, so
each input is read once or twice), draws the figures (:mod:`esmscale.report.drawing`) and
writes ``report.md`` and ``metrics.json`` in ``output_dir``. Formulas: ``docs/evaluation.md``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dask
import xarray as xr
from tqdm.auto import tqdm

from esmscale import metrics as M
from esmscale.errors import EsmscaleError
from esmscale.metrics import checks as C
from esmscale.report import is_synthetic, resolve_coastlines, write_report
from esmscale.report import scores as S
from esmscale.report.drawing import FigureData, draw_figures
from esmscale.report.fieldscores import field_scores

__all__ = ["evaluate"]

Aligned = dict[str, tuple[xr.DataArray, xr.DataArray]]


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


def _observations(obs: xr.DataArray | xr.Dataset) -> tuple[xr.DataArray, str | None]:
    """The observations with standard-calendar cftime axes as numpy datetimes, and ``tdim``."""
    o = C.as_dataarray(obs, "obs")
    lat, lon = C.latlon_dims(o, "obs")
    tdim = C.time_dim(o, lat, lon, "obs")
    if tdim is None or tdim not in o.coords:
        return o, tdim
    idx = C.time_index(o, tdim)  # as align_to_obs does
    return (o if idx is o.indexes[tdim] else o.assign_coords({tdim: idx})), tdim


def _coarse_input(
    coarse: xr.DataArray | xr.Dataset | None, o: xr.DataArray, factor: int | None
) -> tuple[xr.DataArray | None, int | None]:
    """The coarse input as a DataArray and the factor (default: ratio of the grid sizes)."""
    if coarse is None:
        return None, factor
    c_da = C.as_dataarray(coarse, "coarse")
    clat, _ = C.latlon_dims(c_da, "coarse")
    if factor is None:
        lat, _ = C.latlon_dims(o, "obs")
        factor = int(o.sizes[lat]) // max(int(c_da.sizes[clat]), 1)
    return c_da, factor


def _k_star(k_star: float | None, factor: int | None) -> tuple[float, str]:
    """The PSD-error cut-off in cycles per fine cell, and where it came from."""
    if k_star is not None:
        return float(k_star), "given"
    if factor:
        return 1.0 / (2 * factor), "default: 1 / (2 * factor)"
    return 0.0, "default: all wavenumbers"


def _compute(spec: S.ScoreSpec, aligned: Aligned, bar: Any) -> S.Scores:
    """Compute the observations' statistics, each method's metrics, then the histograms."""
    bar.set_postfix_str("observations")
    obs_v = dask.compute(S.obs_lazy(spec))[0]
    map_time = S.pick_map_time(spec, aligned)
    bar.update(1)
    methods: dict[str, dict[str, Any]] = {}
    for name, (r, o_m) in aligned.items():
        bar.set_postfix_str(f"metrics: {name}")
        lazy = S.method_lazy(r, o_m, spec, map_time=map_time, obs_values=obs_v)
        methods[name] = dask.compute(lazy)[0]
        bar.update(1)
    bar.set_postfix_str("histograms")
    extra = dask.compute(S.extra_lazy(spec, aligned, obs_v, methods, map_time))[0]
    bar.update(1)
    return S.Scores(obs=obs_v, methods=methods, extra=extra, map_time=map_time)


def _n_steps(spec: S.ScoreSpec, aligned: Aligned) -> int:
    """Progress-bar length: observations, one per method, histograms, indices, figures, report."""
    n_ens = sum(M.MEMBER in r.dims and r.sizes[M.MEMBER] >= 2 for r, _ in aligned.values())
    n_fig = len(aligned) + 4 + (2 if n_ens else 0) + (1 if spec.curve else 0)
    return len(aligned) + 4 + n_fig


def _write(
    out_dir: Path, metrics: dict[str, Any], figures: Mapping[str, list[str]]
) -> dict[str, Any]:
    """Write ``report.md`` and ``metrics.json``; return the JSON-ready metrics with ``files``."""
    report = write_report(out_dir / "report.md", metrics, figures)
    metrics["files"] = {
        "report": str(report),
        "metrics": str(out_dir / "metrics.json"),
        "figures": [str(out_dir / f) for fs in figures.values() for f in fs],
    }
    out: dict[str, Any] = S.jsonable(metrics)
    (out_dir / "metrics.json").write_text(
        json.dumps(out, indent=2, allow_nan=False), encoding="utf-8"
    )
    return out


def _report(
    spec: S.ScoreSpec,
    aligned: Aligned,
    out_dir: Path,
    coast: Any,
    bar: Any,
    field: Mapping[str, bool],
) -> dict[str, Any]:
    """Compute, draw and write, advancing ``bar``; return the metrics."""
    scores = _compute(spec, aligned, bar)
    bar.set_postfix_str("indices and FSS")
    metrics = S.assemble(spec, scores)
    metrics["field_scores"] = field_scores(aligned, spec.obs, spec.tdim, **field)
    bar.update(1)
    bar.set_postfix_str("figures")

    def done(what: str) -> None:
        bar.set_postfix_str(f"figure: {what}")
        bar.update(1)

    data = FigureData(out_dir, spec.obs, spec.tdim, scores, metrics, coast)
    figures = draw_figures(data, done)
    out = _write(out_dir, metrics, figures)
    bar.update(1)
    return out


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
    indices: bool = True,
    fss: bool = True,
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
    indices, fss
        Add the relative bias of each ETCCDI index (xclim; Rx1day, Rx5day, SDII, R10mm, R20mm,
        CDD, CWD, R95pTOT, PRCPTOT) and the fractions skill score at 1 and 10 mm day-1 over
        windows of 1 to 9 cells (:mod:`esmscale.report.fieldscores`). Both need daily
        precipitation; otherwise ``field_scores["skipped"]`` and the report say why.

    Returns
    -------
    dict
        JSON-serialisable metrics (also written to ``metrics.json``): ``methods`` maps each
        name to ``score`` (fair CRPS, or MAE for one member), ``crps``, ``mae``,
        ``spread_skill``, ``rank_flatness``, ``rank_histogram``, ``psd_error``,
        ``quantile_error`` and ``quantile_error_relative`` (keyed by quantile),
        ``histogram_error``, ``wet_day_fraction``, ``wet_day_error``, ``mean_bias``,
        ``zonal_profile_error``, ``pooled_corr``, ``lowpass_corr``; plus ``obs``, ``period``,
        ``grid``, ``factor``, ``k_star``, ``k_star_per_degree``, ``crps_vs_t``,
        ``field_scores`` (``index_bias`` and ``fss`` per method, or why ``skipped``) and
        ``files``.

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
    o, tdim = _observations(obs)
    given = [obs, o, *results.values(), *res.values(), coarse]
    synthetic = any(is_synthetic(x) for x in given if isinstance(x, xr.DataArray | xr.Dataset))
    coast = (
        resolve_coastlines(coastline_data, download=download_coastlines)
        if maps and not synthetic
        else None
    )
    curve = S.crps_curve(crps_vs_t)
    if bins < 1:
        raise EsmscaleError(f"bins must be >= 1, got {bins}.")
    aligned = {n: M.align_to_obs(r, o, what=f"results[{n!r}]") for n, r in res.items()}
    c_da, factor = _coarse_input(coarse, o, factor)
    k_value, k_source = _k_star(k_star, factor)
    spec = S.ScoreSpec(
        obs=o, tdim=tdim, coarse=c_da, factor=factor, k_star=k_value, k_source=k_source,
        # the spectra's wavenumbers are in cycles per degree
        k_star_per_degree=M.per_degree(k_value, o), threshold=threshold,
        quantiles=tuple(quantiles), bins=bins, curve=curve,
    )  # fmt: skip
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=_n_steps(spec, aligned), desc="evaluate", unit="step", disable=not progress)
    try:
        return _report(spec, aligned, out_dir, coast, bar, {"indices": indices, "fss": fss})
    finally:
        bar.close()
