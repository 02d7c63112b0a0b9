"""Verification metrics for downscaled fields.

Two layers, one module per family of metrics:

* **xarray metrics** (:func:`radial_psd` in cycles per degree, :func:`psd_error`,
  :func:`quantile_errors`, :func:`histogram_error`, :func:`wet_day_fraction`,
  :func:`bias_map`, :func:`zonal_mean`, :func:`zonal_profile_error`, :func:`pooled_corr`,
  :func:`lowpass_corr`, :func:`fair_crps`, :func:`mean_absolute_error`,
  :func:`spread_skill_ratio`, :func:`rank_histogram`, :func:`rank_flatness`). They take
  DataArrays with dims ``(member?, time, lat, lon)`` (the output of
  :func:`esmscale.downscale`) and observations ``(time, lat, lon)``, check that both are
  comparable (:func:`align_to_obs`: grid, calendar, overlapping times, units) and return
  DataArrays. With Dask-backed input nothing is computed: call ``.compute()`` (or
  ``dask.compute`` on several metrics at once, so the inputs are read once).
  Modules: :mod:`~esmscale.metrics.spectral`, :mod:`~esmscale.metrics.distribution`,
  :mod:`~esmscale.metrics.consistency`, :mod:`~esmscale.metrics.ensemble`. ETCCDI climate
  indices through xclim (:func:`climate_indices`, :func:`index_bias`, :func:`index_change`) are in
  :mod:`~esmscale.metrics.indices`; the fractions skill score (:func:`fractions_skill_score`) in
  :mod:`~esmscale.metrics.spatial`; the checks they share
  are in :mod:`~esmscale.metrics.checks`.
* **numpy kernels** (:mod:`~esmscale.metrics.kernels`) for the array API
  (:func:`crps_ensemble`, :func:`mae`, :func:`pooled_correlation`, :func:`quantile_error`,
  :func:`wet_day_frequency`); each returns a float.

Formulas are given in each docstring and in ``docs/evaluation.md``.
"""

from esmscale.metrics.checks import DEFAULT_QUANTILES, MEMBER, align_to_obs, calendar_of
from esmscale.metrics.consistency import lowpass_corr, pooled_corr
from esmscale.metrics.distribution import (
    bias_map,
    histogram,
    histogram_edges,
    histogram_error,
    quantile_errors,
    wet_day_fraction,
    zonal_mean,
    zonal_profile_error,
)
from esmscale.metrics.ensemble import (
    fair_crps,
    mean_absolute_error,
    rank_flatness,
    rank_histogram,
    spread_skill_ratio,
)
from esmscale.metrics.indices import (
    INDICES,
    climate_indices,
    index_bias,
    index_change,
    wet_day_percentile,
)
from esmscale.metrics.kernels import (
    crps_ensemble,
    mae,
    pooled_correlation,
    quantile_error,
    wet_day_frequency,
)
from esmscale.metrics.spatial import fractions_skill_score
from esmscale.metrics.spectral import grid_spacing, per_degree, psd_error, radial_psd

__all__ = [
    "DEFAULT_QUANTILES",
    "INDICES",
    "MEMBER",
    "align_to_obs",
    "bias_map",
    "calendar_of",
    "climate_indices",
    "crps_ensemble",
    "fair_crps",
    "fractions_skill_score",
    "grid_spacing",
    "histogram",
    "histogram_edges",
    "histogram_error",
    "index_bias",
    "index_change",
    "lowpass_corr",
    "mae",
    "mean_absolute_error",
    "per_degree",
    "pooled_corr",
    "pooled_correlation",
    "psd_error",
    "quantile_error",
    "quantile_errors",
    "radial_psd",
    "rank_flatness",
    "rank_histogram",
    "spread_skill_ratio",
    "wet_day_fraction",
    "wet_day_frequency",
    "wet_day_percentile",
    "zonal_mean",
    "zonal_profile_error",
]
