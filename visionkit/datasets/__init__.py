"""Synthetic datasets generated in code (seeded, fast, small images), and real image folders."""

from visionkit.datasets.folder import FolderData, load_image_folder
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
    "FolderData",
    "PersonsData",
    "ShapesData",
    "home_background",
    "identity_attributes",
    "load_image_folder",
    "make_persons",
    "make_shape_entailment",
    "make_shapes",
]
