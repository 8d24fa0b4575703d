"""Image datasets (offline by default) that stream, their batches, and their out-of-distribution variants.

``datasets`` splits real images into train / val / test image sets (loaders are
registered under the ``nas_lab.datasets`` entry-point group; ``digits`` is the
default and needs no download); ``images`` holds the image sets, in memory or
read one image at a time; ``loading`` turns a set into batches (a DataLoader
for sets read from disk, one rank's share under data-parallel training);
``corruptions`` turns a test split into corrupted (5 severities each) and sketch versions.
"""

from nas_lab.data.corruptions import (
    CORRUPTIONS,
    SEVERITIES,
    CorruptedImages,
    OodVariants,
    corrupt,
    ood_variants,
    severity_parameters,
    sketch,
)
from nas_lab.data.datasets import ImageData, cifar10, cifar100, digits, folder, mnist
from nas_lab.data.images import ArrayImages, ConvertedImages, FileImages, ImageSet
from nas_lab.data.loading import batches

__all__ = [
    "CORRUPTIONS", "SEVERITIES", "ArrayImages", "ConvertedImages", "CorruptedImages", "FileImages", "ImageData",
    "ImageSet", "OodVariants", "batches", "cifar10", "cifar100", "corrupt", "digits", "folder", "mnist",
    "ood_variants", "severity_parameters", "sketch",
]  # fmt: skip
