"""Every figure of the evaluation report, drawn from computed scores (nothing computed here).

:func:`draw_figures` takes the :class:`~esmscale.report.scores.Scores` and the metrics dict
of :func:`esmscale.evaluate` and draws the maps (:mod:`esmscale.report.maps`) and the line
and bar plots (:mod:`esmscale.report.figures`), one PNG each.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from esmscale import metrics as M
from esmscale.report.figures import (
    plot_crps_vs_t,
    plot_histograms,
    plot_psd,
    plot_rank_histograms,
    plot_spread_skill,
    plot_zonal_profiles,
)
from esmscale.report.maps import MapPanel, plot_maps
from esmscale.report.scores import Scores

__all__ = ["FigureData", "draw_figures"]

#: Called with each figure's file name once it is written (e.g. to advance a progress bar).
Done = Callable[[str], None]


@dataclass(frozen=True)
class FigureData:
    """What the figures are drawn from.

    Attributes
    ----------
    out_dir
        Folder the PNGs are written to.
    obs, tdim
        The observations and their time dimension (None for a single field).
    scores
        The computed values (:func:`esmscale.report.scores.method_lazy` and friends).
    metrics
        The metrics dict of :func:`esmscale.report.scores.assemble` (units, spectra, k*,
        rank flatness, spread-skill, CRPS against t).
    coast
        Coastlines for the maps (:func:`esmscale.report.maps.resolve_coastlines`), or None.

    Examples
    --------
    The scores of one single-member method (as :func:`esmscale.evaluate` computes them):

    >>> import dask, tempfile
    >>> from esmscale import metrics as M
    >>> from esmscale.datasets import synthetic_precip
    >>> from esmscale.report import scores as S
    >>> obs = synthetic_precip(16, 16, 4, seed=1).pr
    >>> spec = S.ScoreSpec(
    ...     obs=obs, tdim="time", coarse=None, factor=None, k_star=0.0, k_source="given",
    ...     k_star_per_degree=0.0, threshold=1.0, quantiles=(0.5, 0.99), bins=20, curve=None,
    ... )
    >>> aligned = {"x1.1": M.align_to_obs((obs * 1.1).expand_dims(member=1), obs)}
    >>> obs_values = dask.compute(S.obs_lazy(spec))[0]
    >>> t = S.pick_map_time(spec, aligned)
    >>> lazy = S.method_lazy(*aligned["x1.1"], spec, map_time=t, obs_values=obs_values)
    >>> methods = {"x1.1": dask.compute(lazy)[0]}
    >>> extra = dask.compute(S.extra_lazy(spec, aligned, obs_values, methods, t))[0]
    >>> scores = S.Scores(obs_values, methods, extra, t)
    >>> metrics = S.assemble(spec, scores)
    >>> data = FigureData(Path(tempfile.mkdtemp()), obs, "time", scores, metrics)
    >>> data.units, data.coast is None
    ('mm day-1', True)
    """

    out_dir: Path
    obs: xr.DataArray
    tdim: str | None
    scores: Scores
    metrics: Mapping[str, Any]
    coast: Any = None

    @property
    def units(self) -> str:
        """Units of the data, for axis labels."""
        return str(self.metrics["units"])


def slug(name: str, used: set[str]) -> str:
    """A file-name-safe version of ``name``, unique among ``used`` (which it joins).

    Examples
    --------
    >>> used = set()
    >>> slug("ens/x", used), slug("ens x", used), slug("...", used)
    ('ens_x', 'ens_x_2', 'method')
    """
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "method"
    name_, i = base, 2
    while name_ in used:
        name_, i = f"{base}_{i}", i + 1
    used.add(name_)
    return name_


def _obs_snapshot(d: FigureData) -> tuple[xr.DataArray, str]:
    """The observed map and its date label (" on YYYY-MM-DD" or "")."""
    o, tdim, map_time = d.obs, d.tdim, d.scores.map_time
    if tdim is None:
        return o, ""
    if map_time is not None:
        return o.sel({tdim: map_time}), f" on {str(map_time)[:10]}"
    return o.isel({tdim: 0}), ""


def _panels(
    d: FigureData, name: str, c: Mapping[str, Any], obs_snap: xr.DataArray
) -> list[MapPanel]:
    """The map panels of one method: input, members or result, ensemble statistics, observed."""
    panels: list[MapPanel] = []
    if "input_snap" in d.scores.extra:
        panels.append(MapPanel("coarse input", d.scores.extra["input_snap"]))
    if "snap_members" in c:
        for i in range(int(c["snap_members"].sizes[M.MEMBER])):
            panels.append(MapPanel(f"member {i + 1}", c["snap_members"].isel({M.MEMBER: i})))
        panels.append(MapPanel("ensemble mean", c["snap_mean"]))
        panels.append(MapPanel("ensemble SD", c["snap_sd"], "spread"))
    else:
        panels.append(MapPanel(name, c["snap_mean"]))
    panels.append(MapPanel("observed", obs_snap))
    return panels


def _method_maps(d: FigureData, done: Done) -> list[str]:
    obs_snap, when = _obs_snapshot(d)
    files, used = [], set[str]()
    for name, c in d.scores.methods.items():
        f = f"maps_{slug(name, used)}.png"
        plot_maps(
            d.out_dir / f, _panels(d, name, c, obs_snap), title=f"{name}{when}", units=d.units,
            coastlines=d.coast,
        )  # fmt: skip
        done(f)
        files.append(f)
    return files


def _bias_maps(d: FigureData, done: Done) -> list[str]:
    bias = [MapPanel(f"{n}: mean bias", c["bias_map"], "diff") for n, c in d.scores.methods.items()]
    plot_maps(
        d.out_dir / "bias_maps.png", bias, title="Time-mean bias (method - observed)",
        units=d.units, coastlines=d.coast, ncols=min(3, len(bias)),
    )  # fmt: skip
    done("bias_maps.png")
    return ["bias_maps.png"]


def _psd(d: FigureData, done: Done) -> list[str]:
    psd_v = d.metrics["spectra"]
    spectra = {n: (np.asarray(s["wavenumber"]), np.asarray(s["psd"])) for n, s in psd_v.items()}
    k_star = d.metrics["k_star_per_degree"]
    plot_psd(
        d.out_dir / "psd.png", spectra, k_star=k_star if k_star > 0 else None,
        psd_units=str(d.scores.obs["psd"].attrs.get("units", "")),
    )  # fmt: skip
    done("psd.png")
    return ["psd.png"]


def _histograms(d: FigureData, done: Done) -> list[str]:
    hists = d.scores.extra["hists"]
    centres = np.asarray(hists["observed"]["bin_centre"].values)
    plot_histograms(
        d.out_dir / "histograms.png", centres,
        {k: np.asarray(v.values) for k, v in hists.items()}, units=d.units,
    )  # fmt: skip
    done("histograms.png")
    return ["histograms.png"]


def _zonal_profiles(d: FigureData, done: Done) -> list[str]:
    zonal = d.scores.obs["zonal_mean"]
    lat = np.asarray(zonal[zonal.dims[0]].values)
    profiles = {"observed": np.asarray(zonal.values)}
    profiles.update({n: np.asarray(c["zonal_mean"].values) for n, c in d.scores.methods.items()})
    plot_zonal_profiles(d.out_dir / "zonal_profiles.png", lat, profiles, units=d.units)
    done("zonal_profiles.png")
    return ["zonal_profiles.png"]


def _ensemble_figures(d: FigureData, done: Done) -> dict[str, list[str]]:
    """Rank histograms and spread-skill (only for methods with two or more members)."""
    ens = {n: c for n, c in d.scores.methods.items() if "rank_histogram" in c}
    if not ens:
        return {}
    scored = d.metrics["methods"]
    plot_rank_histograms(
        d.out_dir / "rank_histograms.png",
        {n: np.asarray(c["rank_histogram"].values) for n, c in ens.items()},
        {n: scored[n]["rank_flatness"] for n in ens},
    )
    done("rank_histograms.png")
    per_time = {
        n: (np.asarray(c["spread_t"]), np.asarray(c["rmse_t"]), scored[n]["members"])
        for n, c in ens.items()
        if "spread_t" in c
    }
    plot_spread_skill(
        d.out_dir / "spread_skill.png", {n: scored[n]["spread_skill"] for n in ens}, per_time
    )
    done("spread_skill.png")
    return {"Rank histograms": ["rank_histograms.png"], "Spread-skill": ["spread_skill.png"]}


def _crps_vs_t(d: FigureData, done: Done) -> dict[str, list[str]]:
    curve = d.metrics["crps_vs_t"]
    if curve is None:
        return {}
    plot_crps_vs_t(d.out_dir / "crps_vs_t.png", curve["t"], curve["crps"], t_star=curve["t_best"])
    done("crps_vs_t.png")
    return {"CRPS against noise level": ["crps_vs_t.png"]}


def draw_figures(d: FigureData, done: Done) -> dict[str, list[str]]:
    """Draw every figure; return section title -> file names relative to ``d.out_dir``.

    Examples
    --------
    The scores of one single-member method (as :func:`esmscale.evaluate` computes them):

    >>> import dask, tempfile
    >>> from esmscale import metrics as M
    >>> from esmscale.datasets import synthetic_precip
    >>> from esmscale.report import scores as S
    >>> obs = synthetic_precip(16, 16, 4, seed=1).pr
    >>> spec = S.ScoreSpec(
    ...     obs=obs, tdim="time", coarse=None, factor=None, k_star=0.0, k_source="given",
    ...     k_star_per_degree=0.0, threshold=1.0, quantiles=(0.5, 0.99), bins=20, curve=None,
    ... )
    >>> aligned = {"x1.1": M.align_to_obs((obs * 1.1).expand_dims(member=1), obs)}
    >>> obs_values = dask.compute(S.obs_lazy(spec))[0]
    >>> t = S.pick_map_time(spec, aligned)
    >>> lazy = S.method_lazy(*aligned["x1.1"], spec, map_time=t, obs_values=obs_values)
    >>> methods = {"x1.1": dask.compute(lazy)[0]}
    >>> extra = dask.compute(S.extra_lazy(spec, aligned, obs_values, methods, t))[0]
    >>> scores = S.Scores(obs_values, methods, extra, t)
    >>> metrics = S.assemble(spec, scores)
    >>> data = FigureData(Path(tempfile.mkdtemp()), obs, "time", scores, metrics)
    >>> written = []
    >>> figures = draw_figures(data, written.append)
    >>> for section, files in figures.items():  # one member: no rank histograms, spread-skill
    ...     print(f"{section}: {files}")
    Maps: ['maps_x1.1.png']
    Mean-bias maps: ['bias_maps.png']
    Power spectra: ['psd.png']
    Histograms: ['histograms.png']
    Zonal-mean profiles: ['zonal_profiles.png']
    >>> sorted(p.name for p in data.out_dir.iterdir()) == sorted(written)
    True
    """
    figures = {"Maps": _method_maps(d, done), "Mean-bias maps": _bias_maps(d, done)}
    figures["Power spectra"] = _psd(d, done)
    figures["Histograms"] = _histograms(d, done)
    figures["Zonal-mean profiles"] = _zonal_profiles(d, done)
    figures.update(_ensemble_figures(d, done))
    figures.update(_crps_vs_t(d, done))
    return figures
