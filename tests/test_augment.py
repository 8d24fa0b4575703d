"""The training recipes' augmentation (nas_lab/oneshot/augment.py): shapes, targets that are distributions,
determinism per seed, torch's global random state untouched, ``none`` off, ``auto`` resolved, every recipe built."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from nas_lab.core.errors import UserError
from nas_lab.oneshot.augment import CHOICES, RECIPES, augmentation, recipe_of, resolve
from nas_lab.spaces.hyvitas import HyViTasSpace
from nas_lab.spaces.nb201 import NB201Space
from nas_lab.spaces.poolvit import PoolViTSpace
from nas_lab.spaces.vitas import ViTASSpace

CLASSES, SIDE = 10, 16


def batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, SIDE, SIDE, generator=g), torch.randint(0, CLASSES, (n,), generator=g)


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_keeps_the_batch_shape_and_gives_labels_or_distributions(name):
    x, y = batch()
    out, target = augmentation(name, CLASSES, SIDE, "cpu", 0)(x, y)
    assert out.shape == x.shape and out.dtype == x.dtype and torch.isfinite(out).all()
    r = RECIPES[name]
    if r.mixup or r.cutmix or r.smoothing:
        assert target.shape == (len(y), CLASSES) and target.dtype == torch.float32
        assert (target >= 0).all()
        torch.testing.assert_close(target.sum(1), torch.ones(len(y)), atol=1e-6, rtol=0)  # float rounding only
    else:
        assert torch.equal(target, y)  # no mixing, no smoothing: the labels themselves
    assert not torch.equal(out, x)  # it did something


@pytest.mark.parametrize("name", list(RECIPES))
def test_the_same_seed_gives_the_same_batches_and_torch_global_state_is_untouched(name):
    x, y = batch()
    before = torch.get_rng_state()
    runs = []
    for seed in (3, 3, 4):
        aug = augmentation(name, CLASSES, SIDE, "cpu", seed)
        runs.append([aug(x, y) for _ in range(3)])  # a stream: every batch differs, the stream repeats
    assert torch.equal(torch.get_rng_state(), before)
    # exact by construction: the same draws drive the same per-pixel operations (no reductions whose order may vary)
    for (a, ta), (b, tb) in zip(runs[0], runs[1]):
        assert torch.equal(a, b) and torch.equal(ta, tb)
    assert any(not torch.equal(a, c) for (a, _), (c, _) in zip(runs[0], runs[2]))
    assert not torch.equal(runs[0][0][0], runs[0][1][0])


def test_a_generator_is_drawn_from_once_per_batch_so_the_augmentation_follows_the_training_generator():
    x, y = batch()
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    a, b = augmentation("deit", CLASSES, SIDE, "cpu", g1), augmentation("deit", CLASSES, SIDE, "cpu", g2)
    for _ in range(2):
        (xa, ta), (xb, tb) = a(x, y), b(x, y)
        assert torch.equal(xa, xb) and torch.equal(ta, tb)
    assert torch.equal(g1.get_state(), g2.get_state())
    assert not torch.equal(g1.get_state(), torch.Generator().manual_seed(7).get_state())


def test_mixing_shares_and_smoothing_are_the_recipe_s():
    x, y = batch(64)
    _, target = augmentation("vitas", CLASSES, SIDE, "cpu", 0)(x, y)  # CutMix on every batch, smoothing 0.1
    floor = 0.1 / CLASSES
    assert target.min() >= floor - 1e-6  # every class keeps its smoothing share
    assert (target.max(1).values <= 1 - 0.1 + floor + 1e-6).all()
    own = target[torch.arange(64), y]
    assert (own < 1 - 0.1 + floor - 1e-3).any()  # some images got part of another's label (a cut)
    _, smooth_only = augmentation({"smoothing": 0.2}, CLASSES, SIDE, "cpu", 0)(x, y)
    expected = torch.full((64, CLASSES), 0.02).scatter_(1, y[:, None], 0.82)
    torch.testing.assert_close(smooth_only, expected, atol=1e-6, rtol=0)


def test_mixup_shares_follow_beta_alpha_alpha():
    """DeiT's Mixup alpha 0.8: Beta(0.8, 0.8) has mean 0.5 and variance 1 / (4 (2 alpha + 1)) = 0.0962; a uniform
    share (kornia's own) would have 1/12 = 0.0833. 4,096 shares give the variance to about +-0.003."""
    x, y = torch.zeros(4096, 3, 4, 4), torch.zeros(4096, dtype=torch.long)
    y[::2] = 1
    mix = augmentation({"mixup": 0.8}, 2, 4, "cpu", 0)
    _, target = mix(x, y)
    share = target[:, 0][y == 1]  # images of class 1 paired with one of class 0 hold that share of class 0
    partner_zero = share > 0
    lam = share[partner_zero]
    assert abs(float(lam.mean()) - 0.5) < 0.02
    assert abs(float(lam.var()) - 1 / (4 * 2.6)) < 0.008


def test_none_is_no_augmentation_and_bad_names_are_one_sentence():
    assert augmentation("none", CLASSES, SIDE, "cpu", 0) is None
    assert augmentation(None, CLASSES, SIDE, "cpu", 0) is None
    assert recipe_of("none") is None
    with pytest.raises(UserError, match="unknown augmentation recipe 'cutout'; valid: auto, none, deit"):
        augmentation("cutout", CLASSES, SIDE, "cpu", 0)
    with pytest.raises(UserError, match="has no field 'mix'"):
        augmentation({"mix": 1.0}, CLASSES, SIDE, "cpu", 0)
    assert CHOICES[:2] == ("auto", "none")


def test_auto_is_the_space_s_recipe_on_cuda_and_none_on_the_cpu():
    """The tiny CPU runs keep their results and cache keys: ``auto`` adds no augmentation there."""
    vitas = ViTASSpace(setting="cpu")
    assert resolve("auto", vitas, "cpu") == "none"
    assert augmentation("auto", CLASSES, SIDE, "cpu", 0, space=vitas) is None
    assert resolve("auto", vitas, "cuda") == "vitas" and resolve("auto", vitas, "cuda:1", retrain=True) == "deit"
    assert resolve("auto", HyViTasSpace(), "cuda") == "hyvitas"
    assert resolve("auto", PoolViTSpace(), "cuda") == resolve("auto", NB201Space(), "cuda", retrain=True) == "cifar"
    assert resolve("deit", None, "cpu") == "deit" and resolve(None) == "none"


def test_vitas_retrains_archs_under_1_3_gflops_without_cutmix():
    """ViTAS (seed 004, L413-416) drops CutMix when retraining archs under 1.3 GFLOPs (its FLOPs: our MACs)."""
    space = ViTASSpace()  # the paper's setting: 224 px, ImageNet's 1,000 classes
    archs = space.sample(np.random.default_rng(0), 200)
    macs = space.macs(archs)
    small, large = archs[np.argmin(macs)], archs[np.argmax(macs)]
    assert macs.min() < 1.3e9 <= macs.max()
    assert resolve("auto", space, "cuda", retrain=True, arch=small) == "deit-nocutmix"
    assert resolve("auto", space, "cuda", retrain=True, arch=large) == "deit"
    assert resolve("auto", space, "cuda", retrain=False, arch=small) == "vitas"
    assert RECIPES["deit-nocutmix"] == replace(RECIPES["deit"], cutmix=0.0)


def test_every_space_names_a_recipe_that_exists():
    from nas_lab.spaces.autovit import AutoViTSpace

    for space in (HyViTasSpace(), NB201Space(), PoolViTSpace(), ViTASSpace(setting="cpu"), AutoViTSpace()):
        for retrain in (False, True):
            assert resolve("auto", space, "cuda", retrain) in RECIPES


def test_the_deit_recipe_carries_the_paper_values():
    r = RECIPES["deit"]
    assert (r.crop, r.scale, r.flip, r.ops, r.magnitude, r.magnitude_std) == ("resized", (0.08, 1.0), 0.5, 2, 9.0, 0.5)
    assert (r.mixup, r.cutmix, r.switch, r.smoothing, r.erasing) == (0.8, 1.0, 0.5, 0.1, 0.25)
    v = RECIPES["vitas"]
    assert (v.ops, v.mixup, v.cutmix, v.erasing) == (0, 0.0, 1.0, 0.25)  # ViTAS Table 4: CutMix 1.0, erasing 0.25


def test_images_stay_in_range_through_the_pipeline():
    x, y = batch(32)
    for name in RECIPES:
        out, _ = augmentation(name, CLASSES, SIDE, "cpu", 1)(x, y)
        assert float(out.min()) >= -1e-5 and float(out.max()) <= 1 + 1e-5, name
    np.testing.assert_array_equal(x.shape, (32, 3, SIDE, SIDE))
