"""Datasets: the procedural shapes (quickstart), precomputed latents, image folders."""

from sgbench.data.arrays import ArrayDataset, to_model_range
from sgbench.data.registry import DATASETS, DataSplits, build_dataset, register_dataset
from sgbench.data.shapes import CLASS_NAMES, NUM_CLASSES, make_shapes, shapes_reference_images
from sgbench.data import builtin as _builtin  # noqa: F401  (registers the built-in datasets)

__all__ = [
    "ArrayDataset",
    "CLASS_NAMES",
    "DATASETS",
    "DataSplits",
    "NUM_CLASSES",
    "build_dataset",
    "make_shapes",
    "register_dataset",
    "shapes_reference_images",
    "to_model_range",
]
