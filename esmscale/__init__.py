"""esmscale: zero-shot probabilistic downscaling of Earth system model output.

The path a field takes through :func:`downscale` (also ``ds.esm.downscale`` and
``esmscale downscale``): :mod:`esmscale.prepare` brings it in (variable, time and physics
checks, units, regrid onto the target grid, optional QDM), :mod:`esmscale.downscaling` plans
fixed tiles of the target grid and builds one Dask task per output chunk, each the tile kernel
:func:`esmscale.downscaling.kernel.run_block` on one frozen
:class:`~esmscale.downscaling.spec.BlockSpec` (the network of :mod:`esmscale.models` runs
there), then wraps the output (units back, CF attributes, provenance); :mod:`esmscale.io`
writes it to Zarr. :func:`downscale_array` and every t* search of
:func:`calibrate_noise_level` call the same kernel. :func:`train` trains models,
:mod:`esmscale.datasets` generates synthetic worlds, :func:`evaluate` scores results.

Importing the package is light: the names below are imported on first use (PEP 562), so that
``esmscale --help`` does not load torch or xarray. The ``.esm`` accessor is registered on xarray
objects as soon as both esmscale and xarray are imported, in either order
(:mod:`esmscale._lazy`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from esmscale._lazy import register_accessor_with_xarray, register_deprecated_modules
from esmscale._version import __version__
from esmscale.errors import CheckpointError, EsmscaleError, EsmscaleWarning

if TYPE_CHECKING:
    from esmscale import forecast
    from esmscale.downscaling.arrays import downscale_array
    from esmscale.downscaling.calibration import Calibration, calibrate_noise_level
    from esmscale.downscaling.pipeline import downscale
    from esmscale.downscaling.training import TrainConfig, train
    from esmscale.models import ConsistencyConfig, ConsistencyModel, DataTransform
    from esmscale.pretrained import available_models, load_model
    from esmscale.report.evaluation import evaluate

#: Public name -> module that defines it (imported on first access).
_LAZY = {
    "Calibration": "esmscale.downscaling.calibration",
    "calibrate_noise_level": "esmscale.downscaling.calibration",
    "downscale_array": "esmscale.downscaling.arrays",
    "downscale": "esmscale.downscaling.pipeline",
    "evaluate": "esmscale.report.evaluation",
    "ConsistencyConfig": "esmscale.models",
    "ConsistencyModel": "esmscale.models",
    "DataTransform": "esmscale.models",
    "available_models": "esmscale.pretrained",
    "load_model": "esmscale.pretrained",
    "TrainConfig": "esmscale.downscaling.training",
    "train": "esmscale.downscaling.training",
}
_SUBMODULES = ("forecast",)

__all__ = [
    "Calibration",
    "CheckpointError",
    "ConsistencyConfig",
    "ConsistencyModel",
    "DataTransform",
    "EsmscaleError",
    "EsmscaleWarning",
    "TrainConfig",
    "__version__",
    "available_models",
    "calibrate_noise_level",
    "downscale",
    "downscale_array",
    "evaluate",
    "forecast",
    "load_model",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


register_deprecated_modules()
register_accessor_with_xarray()
