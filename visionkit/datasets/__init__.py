"""Synthetic datasets generated in code (seeded, fast, small images)."""

from visionkit.datasets.persons import PersonsData, identity_attributes, make_persons
from visionkit.datasets.shapes import (
    BACKGROUNDS,
    ENTAILMENT_LABELS,
    SHAPES,
    EntailmentData,
    ShapesData,
    home_background,
    make_shape_entailment,
    make_shapes,
)

__all__ = [
    "BACKGROUNDS",
    "ENTAILMENT_LABELS",
    "SHAPES",
    "EntailmentData",
    "PersonsData",
    "ShapesData",
    "home_background",
    "identity_attributes",
    "make_persons",
    "make_shape_entailment",
    "make_shapes",
]
