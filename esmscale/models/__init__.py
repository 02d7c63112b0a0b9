"""Where the model runs: networks, transforms and sampling kernels (pure torch/numpy)."""

from esmscale.models.consistency import ConsistencyConfig, ConsistencyModel
from esmscale.models.transforms import DataTransform

__all__ = ["ConsistencyConfig", "ConsistencyModel", "DataTransform"]
