"""Synthetic and sample datasets for esmscale."""

from esmscale.datasets.synthetic import (
    coarsen_block,
    synthetic_esm,
    synthetic_precip,
    synthetic_temperature,
)

__all__ = ["coarsen_block", "synthetic_esm", "synthetic_precip", "synthetic_temperature"]
