"""Image datasets (offline by default) and their out-of-distribution variants.

``datasets`` loads real images as fixed train/val/test arrays (loaders are
registered under the ``nas_lab.datasets`` entry-point group; ``digits`` is the
default and needs no download); ``corruptions`` turns a test split into
corrupted (5 severities each) and sketch versions.
"""

from nas_lab.data.corruptions import (
    CORRUPTIONS,
    SEVERITIES,
    OodVariants,
    corrupt,
    ood_variants,
    severity_parameters,
    sketch,
)
from nas_lab.data.datasets import ImageData, cifar10, digits, folder, mnist

__all__ = [
    "CORRUPTIONS", "SEVERITIES", "ImageData", "OodVariants",
    "cifar10", "corrupt", "digits", "folder", "mnist", "ood_variants", "severity_parameters", "sketch",
]  # fmt: skip
