"""Spatio-temporal forecasting: PastNet and baselines on xarray data, lazily over Dask.

>>> # model = esmscale.forecast.train(da, ForecastConfig(t_in=10, t_out=10))
>>> # fc = esmscale.forecast.forecast(da, model, lead=10)   # lazy (init_time, lead_time, y, x)
>>> # base = esmscale.forecast.fit("persistence", da)       # same interface
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import xarray as xr

from esmscale.forecast.baselines import Climatology, OpticalFlow, Persistence
from esmscale.forecast.data import to_array
from esmscale.forecast.forecaster import NETWORKS, Forecaster, NeuralForecaster
from esmscale.forecast.intrinsic import intrinsic_dimension
from esmscale.forecast.predict import forecast, load_forecaster
from esmscale.forecast.training import ForecastConfig, train
from esmscale.prepare.inputs import select_variable
from esmscale.registry import Registry

__all__ = [
    "METHODS",
    "NETWORKS",
    "Climatology",
    "ForecastConfig",
    "Forecaster",
    "NeuralForecaster",
    "OpticalFlow",
    "Persistence",
    "available_methods",
    "fit",
    "forecast",
    "intrinsic_dimension",
    "load_forecaster",
    "train",
]


def _climatology(da: xr.DataArray, config: ForecastConfig, **kw: Any) -> Forecaster:
    arr, _ = to_array(select_variable(da, config.variable))
    n = round(arr.shape[0] * (1.0 - config.val_fraction)) or arr.shape[0]
    tdim = str(arr.dims[0])
    times = arr[tdim].values[:n] if tdim in arr.coords else None
    return Climatology.fit(arr.values[:n].astype("float64"), times, **kw)


def _network(kind: str) -> Callable[..., Forecaster]:
    def build(da: xr.DataArray, config: ForecastConfig, **kw: Any) -> Forecaster:
        if config.model_config.kind != kind:
            config = config.replace(model=kind)
        return train(da, config, **kw)

    return build


METHODS: Registry[Callable[..., Forecaster]] = Registry("forecast method")
for _kind in NETWORKS.available():
    METHODS.register(_kind, _network(_kind))
METHODS.register("persistence", lambda da, config, **kw: Persistence())
METHODS.register("climatology", _climatology)
METHODS.register("optical_flow", lambda da, config, **kw: OpticalFlow(**kw))


def available_methods() -> list[str]:
    """Names accepted by :func:`fit`.

    Examples
    --------
    >>> {"persistence", "climatology", "pastnet"} <= set(available_methods())
    True
    """
    return METHODS.available()


def fit(
    name: str, da: xr.DataArray | xr.Dataset, config: ForecastConfig | None = None, **kwargs: Any
) -> Forecaster:
    """Fit (or just build) the forecast method ``name`` on training data ``da``.

    Networks (``pastnet``, ``simvp``, ``fno``) are trained with :func:`train` (``kwargs`` go
    there, e.g. ``progress=False``); ``climatology`` uses the training part of ``da`` (all but
    the last ``val_fraction``); ``persistence`` and ``optical_flow`` need no fitting
    (``kwargs`` go to their constructors, e.g. ``t_in=3, backend="opencv"``).

    Examples
    --------
    >>> import numpy as np
    >>> da = xr.DataArray(np.zeros((4, 2, 2)), dims=("time", "y", "x"))
    >>> fit("persistence", da).name
    'persistence'
    """
    return METHODS.get(name)(da, config or ForecastConfig(), **kwargs)
