"""Image sets that stream: CIFAR pickles and image folders (both layouts) read per image into batches, the batch
order of in-memory sets, data-parallel shares, lazy OoD variants, and bad input as one sentence."""

import pickle

import numpy as np
import pytest
import torch
from test_data import fake_cifar, real_format_pickle, write_png

from nas_lab.core import registry
from nas_lab.core.errors import UserError
from nas_lab.data import (
    ArrayImages,
    CorruptedImages,
    batches,
    corrupt,
    datasets,
    ood_variants,
)
from nas_lab.data.images import convert


def fake_cifar100(folder, n_train=200, n_test=100):
    """A miniature cifar-100-python folder in the real format: ``train``, ``test`` and ``meta``, fine labels cycling
    0..99 and coarse labels (which the loader must ignore) cycling 0..19."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    files = {}
    for name, n in (("train", n_train), ("test", n_test)):
        files[name] = {b"filenames": [f"{i}.png".encode() for i in range(n)], b"batch_label": name.encode(),
                       b"fine_labels": [i % 100 for i in range(n)], b"coarse_labels": [i % 20 for i in range(n)],
                       b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
        (folder / name).write_bytes(real_format_pickle(files[name]))
    meta = {b"fine_label_names": [f"fine{k}".encode() for k in range(100)],
            b"coarse_label_names": [f"coarse{k}".encode() for k in range(20)]}
    (folder / "meta").write_bytes(real_format_pickle(meta))
    return files


def colour(label: int, i: int) -> tuple[int, int, int]:
    """The solid colour of image ``i`` of class ``label`` in the generated folders: a fingerprint of both."""
    return 40 * label + 10, 7 * i + 3, 200


def imagenet_folder(root, classes=3, per_class=10, per_val=2):
    for c in range(classes):
        for i in range(per_class):
            write_png(root / "train" / f"n{c:08d}" / f"img_{i}.JPEG", colour(c, i), (12, 9))
        for i in range(per_val):
            write_png(root / "val" / f"n{c:08d}" / f"val_{i}.png", colour(c, 30 + i), (9, 12))
    return root


def single_folder(root, classes=2, per_class=6):
    for c in range(classes):
        for i in range(per_class):
            write_png(root / f"class{c}" / f"{i}.png", colour(c, i), (10, 10))
    return root


def collect(images, batch_size, seed=None, **kw):
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    return [(x.clone(), y.clone()) for x, y in batches(images, batch_size, generator=generator, **kw)]


# ---------------------------------------------------------------- in memory: the same batches as before


def test_in_memory_batches_are_the_permutations_full_batches():
    data = datasets.digits()
    train = data.train
    assert isinstance(train, ArrayImages) and train.in_memory
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(5))  # the order minibatches drew
    got = collect(train, 100, seed=5)
    assert len(got) == len(train) // 100  # the ragged last batch is dropped
    for k, (x, y) in enumerate(got):
        idx = order[k * 100 : (k + 1) * 100]
        assert torch.equal(x, torch.tensor(train.x)[idx]) and torch.equal(y, torch.tensor(train.labels)[idx])
    assert len(collect(train, 100, seed=5, limit=3)) == 3
    in_order = collect(data.test, 100)
    assert [len(y) for _, y in in_order] == [100, 100, 69]  # every image once, the last batch ragged
    assert torch.equal(torch.cat([x for x, _ in in_order]), torch.tensor(data.test.x))
    assert [len(y) for _, y in collect(data.val, 1000, seed=0)] == [len(data.val)]  # smaller than a batch: one batch


def test_batches_do_not_move_torchs_global_random_state(tmp_path):
    data = datasets.folder(root=str(single_folder(tmp_path)), image_size=4)
    before = torch.get_rng_state()
    collect(data.train, 2, seed=0)
    collect(datasets.digits().train, 64, seed=0)
    assert torch.equal(torch.get_rng_state(), before)


# ---------------------------------------------------------------- CIFAR pickles, streamed


def test_cifar10_pickles_stream_uint8_converted_per_image(tmp_path):
    files = fake_cifar(tmp_path / "cifar-10-batches-py", per_batch=20)
    data = datasets.cifar10(root=str(tmp_path), image_size=16)
    source = np.concatenate([files[f"data_batch_{i}"][b"data"] for i in range(1, 6)]).reshape(-1, 3, 32, 32)
    assert data.train.source.dtype == np.uint8 and not data.train.in_memory
    seen = []
    for x, y in collect(data.train, 30, seed=1):
        assert x.shape == (30, 3, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64
        seen.append(x)
    # every batch image is a training image resized as a whole array would be (per image: same filter, to 1e-6)
    everything = convert(source, 16, 3)
    x = torch.cat(seen).numpy()
    distance = np.abs(x[:, None] - everything[None]).reshape(len(x), len(everything), -1).max(-1)
    assert (distance.min(1) < 1e-6).all()


def test_cifar100_gives_its_fine_labels_and_holds_out_val(tmp_path):
    files = fake_cifar100(tmp_path / "cifar-100-python")
    data = registry.create("dataset", "cifar100", {"root": str(tmp_path)})  # the archive's top folder works too
    assert data.name == "cifar100" and data.num_classes == 100 and data.classes[7] == "fine7"
    assert (len(data.train), len(data.val), len(data.test)) == (100, 100, 100)  # 2 per class: 1 kept, 1 held out
    np.testing.assert_array_equal(data.test.labels, files["test"][b"fine_labels"])
    x, y = collect(data.test, 64)[0]
    expected = files["test"][b"data"][:64].reshape(-1, 3, 32, 32) / np.float32(255)
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-7)
    assert y.tolist() == [i % 100 for i in range(64)]
    assert "fine" in datasets.cifar100.__doc__ and "CIFAR-100" in data.source


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[:300]), r"cannot read .*train as a CIFAR-100 python file"),
    (lambda p: p.write_bytes(real_format_pickle({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]})),
     r"train has no 'fine_labels' entry; it is not a CIFAR-100 python file"),
    (lambda p: p.write_bytes(real_format_pickle({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 100]})),
     r"'fine_labels' must be 2 integers in 0\.\.99"),
    (lambda p: p.unlink(), r"lacks train; dataset.root must be the folder of CIFAR-100's python version"),
])  # fmt: skip
def test_a_damaged_cifar100_folder_is_one_sentence(tmp_path, damage, message):
    fake_cifar100(tmp_path, n_train=100, n_test=10)
    damage(tmp_path / "train")
    with pytest.raises(UserError, match=message) as err:
        datasets.cifar100(root=str(tmp_path))
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- folders, decoded per image


def expected_pixels(y: int, i: int) -> np.ndarray:
    return np.array(colour(y, i), dtype=np.float32)[:, None, None] / 255


def test_imagenet_layout_holds_out_val_from_train_and_tests_on_val(tmp_path):
    root = imagenet_folder(tmp_path / "imagenet")
    data = datasets.folder(root=str(root), image_size=6)
    assert data.classes == ("n00000000", "n00000001", "n00000002")
    assert (len(data.train), len(data.val), len(data.test)) == (27, 3, 6)  # 10% of each train class held out as val
    assert "val/ as test" in data.source and "10%" in data.source
    train = {bytes(f) for f in data.train.files}
    assert not train & {bytes(f) for f in data.val.files} and all(f.startswith(b"train/") for f in train)
    assert all(f.startswith(b"val/") for f in data.test.files)
    assert [y.tolist() for _, y in collect(data.test, 4)] == [[0, 0, 1, 1], [2, 2]]  # in order: val/<class>/ sorted
    x, y = data.test[3]  # class 1's second val image, PNG: exact after the bilinear resize of a solid colour
    assert y == 1
    np.testing.assert_allclose(x, np.broadcast_to(expected_pixels(1, 31), (3, 6, 6)), atol=1e-6)
    # JPEG train images: each batch row is its class's colour within JPEG's error
    for x, y in collect(data.train, 9, seed=0):
        for image, label in zip(x.numpy(), y.tolist()):
            assert abs(image[0].mean() - colour(label, 0)[0] / 255) < 4 / 255


def test_single_folder_layout_streams_with_and_without_workers(tmp_path):
    data = registry.create("dataset", "folder", {"root": str(single_folder(tmp_path / "f", per_class=8)),
                                                 "image_size": "5", "channels": "1"})
    assert (len(data.train), len(data.val), len(data.test)) == (12, 2, 2)  # 70/15/15 per class, as before
    plain = collect(data.train, 4, seed=3)
    workers = collect(data.train, 4, seed=3, workers=2)
    assert len(plain) == 3 and len(data.train.loaders) == 1  # the loader with workers is kept for the next pass
    for (x0, y0), (x1, y1) in zip(plain, workers, strict=True):
        assert torch.equal(x0, x1) and torch.equal(y0, y1)
        assert x0.shape == (4, 1, 5, 5)
    again = collect(data.train, 4, seed=3, workers=2)  # a second pass over the persistent workers
    assert all(torch.equal(a[0], b[0]) for a, b in zip(again, plain, strict=True))
    abandoned = batches(data.train, 4, generator=torch.Generator().manual_seed(9), workers=2)
    next(abandoned)
    abandoned.close()  # a pass left half-read: the next one gets its own batches, none left over from it
    after = collect(data.train, 4, seed=3, workers=2)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(after, plain, strict=True))


def test_a_dropped_image_set_ends_its_workers_at_once(tmp_path):
    """A set and its kept loader once made a reference cycle: only the cyclic collector freed them, after it had
    stopped the queues' feeder threads, so the workers never heard they should end and each cost 5 s."""
    import gc
    import multiprocessing
    import weakref

    from nas_lab.data.images import FileImages

    train = datasets.folder(root=str(single_folder(tmp_path, per_class=8)), image_size=4).train
    images = FileImages(train.root, train.files, train.labels, 4, train.shape[0])  # a set no dataset cache keeps
    earlier = set(multiprocessing.active_children())  # other sets' persistent workers, if any
    collect(images, 4, seed=3, workers=2)
    started = set(multiprocessing.active_children()) - earlier
    assert len(started) == 2
    gone = weakref.ref(images)
    gc.disable()  # freed by reference counting alone, or not at all
    try:
        del images
        assert gone() is None
        assert not started & set(multiprocessing.active_children())  # told to end, and ended
    finally:
        gc.enable()


def test_two_passes_at_once_over_one_kept_loader_are_refused(tmp_path):
    data = datasets.folder(root=str(single_folder(tmp_path, per_class=8)), image_size=4)
    first = batches(data.train, 2, generator=torch.Generator().manual_seed(0), workers=1)
    next(first)
    second = batches(data.train, 2, generator=torch.Generator().manual_seed(1), workers=1)
    next(second)
    with pytest.raises(RuntimeError, match="a second pass over this image set started"):
        next(first)


# ---------------------------------------------------------------- data-parallel shares


@pytest.mark.parametrize("world", [2, 4])
def test_rank_shares_of_each_global_batch_make_the_one_process_batch(tmp_path, world):
    folder_data = datasets.folder(root=str(single_folder(tmp_path, per_class=10)), image_size=4)
    for images, size in ((datasets.digits().train, 64), (folder_data.train, 8)):
        whole = collect(images, size, seed=7, limit=5)
        shares = [collect(images, size, seed=7, limit=5, rank=r, world=world) for r in range(world)]
        for k, (x, y) in enumerate(whole):
            assert all(len(s[k][1]) == size // world for s in shares)
            assert torch.equal(torch.cat([s[k][0] for s in shares]), x)
            assert torch.equal(torch.cat([s[k][1] for s in shares]), y)
    test = datasets.digits().test  # in order: the ragged last batch (69 images) is shared the same way
    whole = collect(test, 100)
    shares = [collect(test, 100, rank=r, world=world) for r in range(world)]
    assert torch.equal(torch.cat([torch.cat([s[k][1] for s in shares if k < len(s)]) for k in range(len(whole))]),
                       torch.tensor(test.labels))


def test_a_world_that_does_not_divide_the_batch_is_one_sentence():
    with pytest.raises(UserError, match=r"a batch of 10 images cannot be shared equally by 4 processes; choose a "
                                        r"batch size that is a multiple of 4 \(e\.g\. 12\)$"):
        batches(datasets.digits().train, 10, world=4, rank=1)


# ---------------------------------------------------------------- OoD variants


def test_ood_variants_of_a_streamed_test_split_are_made_per_image(tmp_path):
    fake_cifar(tmp_path, per_batch=20, n_test=12)
    test = datasets.cifar10(root=str(tmp_path)).test
    variants = ood_variants(test, seed=3)
    noisy = variants["c.gaussian_noise.5"]
    assert isinstance(noisy, CorruptedImages) and noisy.labels is test.labels and len(noisy) == 12
    x, _ = noisy.take(np.arange(12))
    clean, _ = test.take(np.arange(12))
    assert np.abs(x - clean).mean() > 0.05 and 0 <= x.min() and x.max() <= 1
    np.testing.assert_array_equal(noisy[5][0], x[5])  # the same image whenever (and wherever) it is read
    np.testing.assert_array_equal(ood_variants(test, seed=3)["c.gaussian_noise.5"].take([7, 2])[0], x[[7, 2]])
    assert not np.array_equal(ood_variants(test, seed=4)["c.gaussian_noise.5"][5][0], x[5])
    blurred = variants["c.defocus_blur.3"]  # a deterministic corruption: per image equals the whole array at once
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(blurred.take(np.arange(12))[0], corrupt(clean, "defocus_blur", 3, rng), atol=1e-6)
    streamed = torch.cat([x for x, _ in batches(variants["sketch"], 5, workers=1)])
    assert streamed.shape == (12, 3, 32, 32)


def test_ood_variants_of_an_in_memory_test_split_are_whole_arrays():
    data = datasets.digits()
    variant = ood_variants(data.test, seed=1)["c.contrast.2"]
    assert isinstance(variant, ArrayImages)
    np.testing.assert_array_equal(
        variant.x, corrupt(data.test.x, "contrast", 2, np.random.default_rng([1, 0])))  # contrast draws nothing


# ---------------------------------------------------------------- bad input


def test_bad_folders_are_one_sentence(tmp_path):
    cases = []
    cases.append((tmp_path / "nowhere", "does not exist; dataset folder needs"))
    imagenet_folder(tmp_path / "one", per_class=1)
    cases.append((tmp_path / "one", (r"class folder .*train/n00000000 has 1 image\(s\).*at least 2, one to train on "
                                     "and one held out as val")))
    imagenet_folder(tmp_path / "noval")
    for f in (tmp_path / "noval" / "val").rglob("*.png"):
        f.unlink()
    cases.append((tmp_path / "noval", r"class folder .*val/n00000000 has 0 image\(s\)"))
    imagenet_folder(tmp_path / "flatval")
    for class_dir in list((tmp_path / "flatval" / "val").iterdir()):  # ImageNet's val as shipped: one flat folder
        for f in list(class_dir.iterdir()):
            f.rename(class_dir.parent / f"{class_dir.name}_{f.name}")
        class_dir.rmdir()
    cases.append((tmp_path / "flatval", r"val has no class subfolders.*val/<class>/"))
    imagenet_folder(tmp_path / "extra")
    write_png(tmp_path / "extra" / "val" / "zebra" / "0.png", (0, 0, 0), (4, 4))
    cases.append((tmp_path / "extra", r"val has class folder 'zebra', which .*train lacks"))
    single_folder(tmp_path / "few", per_class=2)
    cases.append((tmp_path / "few", r"has 2 image\(s\).*at least 3, one for each of train, val and test"))
    for root, message in cases:
        with pytest.raises(UserError, match=message) as err:
            datasets.folder(root=str(root))
        assert "\n" not in str(err.value), root


def test_an_image_that_will_not_decode_in_a_worker_is_one_sentence(tmp_path):
    root = single_folder(tmp_path, per_class=6)
    data = datasets.folder(root=str(root), image_size=4)
    broken = data.train.path(0)
    broken.write_bytes(b"not a png")
    for workers in (0, 1):
        with pytest.raises(UserError) as err:
            collect(data.train, 8, workers=workers)
        message = str(err.value)
        assert message.startswith(f"cannot read image {broken}") and "\n" not in message and "Traceback" not in message


def test_image_sets_pickle_without_their_loaders(tmp_path):
    data = datasets.folder(root=str(single_folder(tmp_path, per_class=6)), image_size=4)
    collect(data.train, 2, seed=0, workers=1)
    copy = pickle.loads(pickle.dumps(data.train))  # what a worker started by spawn receives
    assert copy.loaders == {} and len(data.train.loaders) == 1
    np.testing.assert_array_equal(copy[2][0], data.train[2][0])
