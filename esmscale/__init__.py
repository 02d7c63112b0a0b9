"""esmscale: zero-shot probabilistic downscaling of Earth system model output.

The path a field takes: :mod:`esmscale.prepare` (data enters: variable, units, interpolation)
-> :mod:`esmscale.models` (the consistency model and sampling kernels run) -> :mod:`esmscale.io`
(checkpoints and stores, where results leave). :mod:`esmscale.calibration` picks the noise level
t*, :mod:`esmscale.training` trains models, :mod:`esmscale.datasets` generates synthetic worlds.
"""

from esmscale import accessor as _accessor  # noqa: F401  (registers ds.esm / da.esm)
from esmscale import forecast
from esmscale._version import __version__
from esmscale.calibration import Calibration, calibrate_noise_level
from esmscale.downscale import downscale_array
from esmscale.errors import CheckpointError, EsmscaleError, EsmscaleWarning
from esmscale.evaluate import evaluate
from esmscale.models import ConsistencyConfig, ConsistencyModel, DataTransform
from esmscale.pipeline import downscale
from esmscale.pretrained import available_models, load_model
from esmscale.training import TrainConfig, train

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
