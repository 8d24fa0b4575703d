"""Image sets: the splits of a dataset as map-style collections that hand out one image at a time.

An image set has ``len(s)``, ``s[i] -> (float32 (C, H, W) in [0, 1], int label)``,
``labels`` (int64, one per image, read-only) and ``shape`` ``(C, H, W)``; it is
what ``torch.utils.data.DataLoader`` calls a map-style dataset, without
importing torch (``data/loading.py`` turns it into batches). Three kinds:

- ``ArrayImages``: float32 images already in memory (the small built-in sets,
  digits and the MNIST sample, and corrupted variants of them); ``in_memory``,
  so batches index the array directly;
- ``ConvertedImages``: source pixels kept as they are (CIFAR's uint8, a quarter
  of float32's size), converted to float and resized when an image is read;
- ``FileImages``: image files on disk, decoded and resized when an image is
  read, so a folder of a million images costs its list of names, never its pixels.

Pixel conversion is one function (``convert``) for all of them: float in [0, 1],
colour reduced to luma for 1 channel, a bilinear resize (PIL's filter), grey
replicated for 3 channels. ``take`` reads several images into one array;
``arrays`` reads a whole set, refused beforehand when it would not fit in memory.
"""

from __future__ import annotations

import abc
import os
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from nas_lab.core.errors import UserError

#: file suffixes the ``folder`` dataset reads (any case)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
#: copies of the float arrays that making a set's arrays holds at its peak (the result and a resize's intermediate)
RESIZE_COPIES = 2
#: ITU-R BT.601 luma weights, the ones PIL's ``convert("L")`` uses
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class ImageSet(abc.ABC):
    """A labelled set of images read one at a time: ``len``, ``s[i] -> (image, label)``, ``labels``, ``shape``."""

    #: whether the float32 pixels are in memory already (``ArrayImages``): batches are then indexed, not collated
    in_memory: ClassVar[bool] = False

    def __init__(self, labels: np.ndarray, shape: tuple[int, int, int]):
        self.labels = _read_only(np.asarray(labels, dtype=np.int64))
        self.shape = tuple(int(s) for s in shape)
        #: DataLoaders ``data/loading.py`` keeps for this set (their workers persist between passes), by settings
        self.loaders: dict = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "loaders": {}}  # a worker process gets the images, not the loaders reading them

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        label = int(self.labels[i])  # IndexError past the end, as a sequence should
        return self.image(int(i) % len(self)), label

    @abc.abstractmethod
    def image(self, i: int) -> np.ndarray:
        """Image ``i`` (``0 <= i < len``) as float32 ``(C, H, W)`` in [0, 1]."""

    def take(self, idx) -> tuple[np.ndarray, np.ndarray]:
        """Images ``idx`` as one float32 ``(n, C, H, W)`` array, and their labels."""
        idx = np.asarray(idx, dtype=np.int64)
        x = np.empty((len(idx), *self.shape), dtype=np.float32)
        for k, i in enumerate(idx):
            x[k] = self.image(int(i))
        return x, self.labels[idx]

    def arrays(self, what: str = "this image set") -> tuple[np.ndarray, np.ndarray]:
        """Every image in one float32 array, and the labels; ``UserError`` first if that would not fit in memory."""
        check_fits(what, len(self), self.shape)
        return self.take(np.arange(len(self)))


class ArrayImages(ImageSet):
    """Float32 ``(N, C, H, W)`` images in [0, 1] held in memory (read-only: shared by every user of the set)."""

    in_memory = True

    def __init__(self, x: np.ndarray, labels: np.ndarray):
        super().__init__(labels, x.shape[1:])
        if len(x) != len(self.labels):
            raise ValueError(f"{len(x)} images but {len(self.labels)} labels")
        self.x = _read_only(np.asarray(x, dtype=np.float32))

    def image(self, i: int) -> np.ndarray:
        return self.x[i]

    def take(self, idx) -> tuple[np.ndarray, np.ndarray]:
        idx = np.asarray(idx, dtype=np.int64)
        return self.x[idx], self.labels[idx]

    def arrays(self, what: str = "this image set") -> tuple[np.ndarray, np.ndarray]:
        return self.x, self.labels


class ConvertedImages(ImageSet):
    """Source images (uint8 or float, any size, 1 or 3 channels) kept as they are and ``convert``-ed when read."""

    def __init__(self, source: np.ndarray, labels: np.ndarray, image_size: int, channels: int):
        super().__init__(labels, (channels, image_size, image_size))
        self.source = _read_only(source)

    def image(self, i: int) -> np.ndarray:
        return convert(self.source[i : i + 1], self.shape[1], self.shape[0])[0]

    def take(self, idx) -> tuple[np.ndarray, np.ndarray]:
        idx = np.asarray(idx, dtype=np.int64)
        return convert(self.source[idx], self.shape[1], self.shape[0]), self.labels[idx]


class FileImages(ImageSet):
    """Image files under ``root`` (paths relative to it), decoded and resized by PIL when read.

    The paths are one numpy bytes array rather than a list of Python strings:
    it is a few bytes per image, and worker processes forked by a DataLoader
    share it without copying (reading a Python object writes its reference count).
    """

    def __init__(self, root: str | Path, files: np.ndarray, labels: np.ndarray, image_size: int, channels: int):
        super().__init__(labels, (channels, image_size, image_size))
        self.root = str(root)
        self.files = _read_only(np.asarray(files, dtype=np.bytes_))

    def path(self, i: int) -> Path:
        return Path(self.root, os.fsdecode(self.files[i]))

    def image(self, i: int) -> np.ndarray:
        pixels = read_image(self.path(i), "L" if self.shape[0] == 1 else "RGB", self.shape[1])
        return pixels.astype(np.float32) / 255.0


# ---------------------------------------------------------------- pixels


def read_image(path: Path, mode: str, size: int) -> np.ndarray:
    """One image file as uint8 ``(C, size, size)``; a file PIL cannot decode is named in the error."""
    try:
        with Image.open(path) as img:
            img = img.convert(mode).resize((size, size), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UserError(f"cannot read image {path} ({exc}); the folder dataset reads "
                        f"{', '.join(IMAGE_SUFFIXES)} files that PIL can decode") from None
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def convert(x: np.ndarray, image_size: int, channels: int) -> np.ndarray:
    """Source images ``(N, C, H, W)`` (uint8, or float in [0, 1]) as float32 ``(N, channels, size, size)``."""
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[1] == 3 and channels == 1:
        x = np.einsum("nchw,c->nhw", x, LUMA)[:, None]
    x = resize(x, image_size)
    if x.shape[1] == 1 and channels == 3:
        x = np.repeat(x, 3, axis=1)
    return x


def resize(x: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of float ``(N, C, H, W)`` to ``size`` x ``size``, antialiased when shrinking.

    The same triangle filter as PIL's ``BILINEAR`` (widened by the shrink
    factor), written as one matrix per axis so a whole dataset is two matmuls.
    """
    n, c, h, w = x.shape
    if (h, w) == (size, size):
        return x
    rows = x.reshape(-1, w) @ _bilinear_matrix(w, size).T  # (N*C*H, size): each row resized
    cols = rows.reshape(n, c, h, size).swapaxes(2, 3).reshape(-1, h) @ _bilinear_matrix(h, size).T
    out = np.ascontiguousarray(cols.reshape(n, c, size, size).swapaxes(2, 3))
    return np.clip(out, 0.0, 1.0, out=out)


@lru_cache(maxsize=16)
def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` weights: output pixel ``o`` is a triangle-weighted mean of the inputs around its centre
    (cached and read-only: an image set resizing one image at a time asks for the same two matrices every time)."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale
    distance = (np.arange(n_in)[None, :] + 0.5 - centres[:, None]) / support
    weights = np.maximum(0.0, 1.0 - np.abs(distance))
    return _read_only((weights / weights.sum(axis=1, keepdims=True)).astype(np.float32))


def check_fits(what: str, images: int, shape: tuple[int, int, int]) -> None:
    """``UserError`` if ``images`` float32 images of ``shape``, twice over (resizing holds a copy), would take
    more than the memory free on this machine."""
    channels, side = shape[0], shape[1]
    per_image = RESIZE_COPIES * channels * np.dtype(np.float32).itemsize
    need, free = images * per_image * side * shape[2], os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    if need > free:
        fits = int((free / (images * per_image)) ** 0.5)
        raise UserError(f"{what} at dataset.image_size={side} needs {need / 2**30:.1f} GiB for its "
                        f"{images:,} images, more than the {free / 2**30:.1f} GiB free here; choose "
                        f"dataset.image_size <= {fits}")


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a
