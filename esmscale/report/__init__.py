"""Figures and the Markdown report written by :func:`esmscale.evaluate`.

:mod:`esmscale.report.evaluation` holds :func:`~esmscale.report.evaluation.evaluate`, which
computes the numbers with :mod:`esmscale.report.scores` (no drawing there) and draws them with
:mod:`esmscale.report.drawing` (every figure of the report, from computed values).
:mod:`esmscale.report.figures` draws line and bar plots with plain Matplotlib,
:mod:`esmscale.report.maps` draws maps (coastlines from Cartopy's offline GSHHS data, see
:func:`~esmscale.report.maps.resolve_coastlines`; plain lat/lon axes without them) and
:mod:`esmscale.report.markdown` writes ``report.md``. All functions take computed
(numpy-backed) data and write one file each.
"""

from esmscale.report.figures import (
    plot_crps_vs_t,
    plot_histograms,
    plot_psd,
    plot_rank_histograms,
    plot_spread_skill,
    plot_zonal_profiles,
)
from esmscale.report.maps import (
    Coastlines,
    MapPanel,
    find_coastlines,
    is_synthetic,
    plot_maps,
    resolve_coastlines,
)
from esmscale.report.markdown import write_report

__all__ = [
    "Coastlines",
    "MapPanel",
    "find_coastlines",
    "is_synthetic",
    "plot_crps_vs_t",
    "plot_histograms",
    "plot_maps",
    "plot_psd",
    "plot_rank_histograms",
    "plot_spread_skill",
    "plot_zonal_profiles",
    "resolve_coastlines",
    "write_report",
]
