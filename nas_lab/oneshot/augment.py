"""The training recipes' data augmentation, GPU-batched on kornia: what a training step does to a batch first.

``augmentation(recipe, num_classes, image_size, device, seed_or_generator)``
gives a callable ``(x, y) -> (x, target)`` that the training loop applies to
every training batch on its device, or None (``augment=none``: the batch is
left as it is). ``target`` is ``y`` (int64 labels) where the recipe mixes no
images and smooths no labels, else float ``(B, num_classes)`` probabilities;
``F.cross_entropy(logits, target)`` takes either.

Named recipes (``RECIPES``; values with where they come from):

- ``deit``: the DeiT recipe (Touvron et al., ICML 2021, its Table 9 and the
  training defaults it states) that AutoViT trains its supernets with
  "except for the repeated augmentation" (seed 001, L289) and that ViTAS
  retrains its found archs with (seed 004, L413-414): random resized crop
  (scale 0.08-1, aspect 3/4-4/3, bicubic), horizontal flip 0.5, RandAugment of 2 ops at
  magnitude 9 (of 10) with a magnitude noise of std 0.5, Mixup alpha 0.8 and
  CutMix alpha 1.0 (one of the two per batch, each half of the time), label
  smoothing 0.1, random erasing with probability 0.25. Not part of the
  recipe: repeated augmentation (a sampler, which AutoViT drops too) and
  stochastic depth (a model setting; ViTAS removes it, L406).
- ``deit-nocutmix``: ``deit`` without CutMix, with which ViTAS retrains its
  archs under 1.3 GFLOPs ("too weak to withstand" more, seed 004, L413-416;
  its FLOPs are our MACs).
- ``vitas``: ViTAS' weak recipe for its super-transformer (seed 004, Table 4,
  L392-396, and L406-410: of DeiT's augmentations only CutMix 1.0 and erasing
  0.25 are kept): random resized crop and flip as DeiT, CutMix alpha 1.0 on
  every batch, random erasing 0.25. The paper is silent on label smoothing,
  which its Table 3 does not list among what it removed: we keep DeiT's 0.1.
- ``hyvitas``: HyViTas-Bench's (seed 000, L397-401): RandAugment after a
  random resized crop, horizontal flip 0.5. Silent, so chosen: the crop's
  scale and aspect as DeiT's, RandAugment as DeiT's (2 ops, magnitude 9,
  noise 0.5), no mixing, erasing or label smoothing (none is named).
- ``cifar``: the standard CIFAR pipeline of NAS-Bench-201 (Dong & Yang, ICLR
  2020): a random 32-of-40 crop (4 px of zero padding) and horizontal flip
  0.5. The NB201 space's, and our choice for Pool-ViT, whose paper (seed 003,
  a summary) gives no recipe for its CIFAR-10 models.

How kornia carries them out, where it differs from timm (which DeiT used):
RandAugment (``kornia.augmentation.auto.RandAugment``, timm's 15 "rand" ops)
draws its ops once per batch rather than per image, applies each drawn op
(timm: each with probability 0.5), and measures magnitude out of 30, so DeiT's
9 of 10 is 27 of 30; the magnitude noise is drawn once per batch (std 1.5 of
30), clipped to 0.5..29.5. Mixup (``RandomMixUpV2``) and CutMix
(``RandomCutMixV2``) pair each image with another of a random permutation and
draw one mixing share per image (timm: one per batch, pairing the batch with
its reverse); Mixup's share follows Beta(alpha, alpha) as in the paper
(kornia's own draws it uniformly, which is Beta(1, 1)). Random erasing
(``RandomErasing``, scale 0.02-1/3, aspect 0.3-3.3) fills with mid-grey 0.5,
about the mean of natural images (timm: per-pixel noise); images are in [0, 1].

``augment=auto`` (``resolve``) is the space's recipe on a CUDA device and none
on the CPU: the recipes are for the real experiments (their images, their
hundreds of epochs, GPU batches), and the CPU miniatures on 8-px digits keep
the results and cache keys they had before there was augmentation. Any named
recipe runs on the CPU too when asked for. A space names its recipe as
``supernet_recipe["augment"]``; ``nas-lab train`` takes
``supernet_recipe["retrain"]["augment"]`` where the space retrains otherwise
than it trains its supernet (ViTAS: ``vitas`` for the super-transformer,
``deit`` to retrain), and ``["retrain"]["augment_below_macs"] = (limit, name)``
for the archs of fewer MACs per image (ViTAS: 1.3e9, ``deit-nocutmix``).

Randomness: kornia draws from torch's global generator, so every batch runs
under ``torch.random.fork_rng`` with the CPU generator (and the batch's CUDA
device's) seeded from the caller's generator: the same seed gives the same
batches, and torch's global random state is as it was. Drawing that seed from
the training's own generator makes the augmentation resume with it.

Importing this module does not import torch or kornia (the settings layer and
``--help`` read ``RECIPES``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from nas_lab.core.errors import UserError, shorten

if TYPE_CHECKING:
    import torch

#: kornia's RandAugment measures magnitude out of this (timm, and so DeiT, out of 10)
KORNIA_MAGNITUDE = 30
#: grey that random erasing fills with (images are in [0, 1])
ERASE_VALUE = 0.5


@dataclass(frozen=True)
class Recipe:
    """One augmentation recipe: what is done to each training batch, in this order (crop, flip, RandAugment,
    erasing per image; then Mixup or CutMix over the batch, with label smoothing)."""

    #: "resized" (random resized crop over ``scale`` of the area), "padded" (random crop after ``padding`` px), or None
    crop: str | None = None
    scale: tuple[float, float] = (0.08, 1.0)
    padding: int = 4
    #: chance of a horizontal flip
    flip: float = 0.0
    #: RandAugment ops per batch (0: none) and their magnitude out of 10 (timm's scale), with its noise's std
    ops: int = 0
    magnitude: float = 9.0
    magnitude_std: float = 0.0
    #: chance that an image is partly erased
    erasing: float = 0.0
    #: Beta(alpha, alpha) of Mixup's and of CutMix's share (0: off); with both on, CutMix takes ``switch`` of batches
    mixup: float = 0.0
    cutmix: float = 0.0
    switch: float = 0.5
    #: label smoothing: the true class gets 1 - smoothing + smoothing / classes, every other class smoothing / classes
    smoothing: float = 0.0


_DEIT_BASE = Recipe(crop="resized", flip=0.5)
#: the named recipes (see the module docstring for their sources)
RECIPES: dict[str, Recipe] = {
    "deit": replace(_DEIT_BASE, ops=2, magnitude=9.0, magnitude_std=0.5, erasing=0.25, mixup=0.8, cutmix=1.0,
                    smoothing=0.1),
    "deit-nocutmix": replace(_DEIT_BASE, ops=2, magnitude=9.0, magnitude_std=0.5, erasing=0.25, mixup=0.8,
                             smoothing=0.1),
    "vitas": replace(_DEIT_BASE, erasing=0.25, cutmix=1.0, smoothing=0.1),
    "hyvitas": replace(_DEIT_BASE, ops=2, magnitude=9.0, magnitude_std=0.5),
    "cifar": Recipe(crop="padded", padding=4, flip=0.5),
}
#: what ``augment=`` takes
CHOICES = ("auto", "none", *RECIPES)


def resolve(augment: str | None, space=None, device: str = "cpu", retrain: bool = False, arch=None) -> str:
    """The recipe name ``augment`` means: ``auto`` is the space's (``supernet_recipe["augment"]``, or with
    ``retrain`` its ``["retrain"]["augment"]`` where it has one, and ``["retrain"]["augment_below_macs"]`` for an
    ``arch`` under that many MACs) on CUDA and ``none`` on the CPU; None is ``none``."""
    if augment is None:
        return "none"
    if augment != "auto":
        return augment
    if not str(device).startswith("cuda") or space is None:
        return "none"
    recipe = space.supernet_recipe
    if retrain:
        recipe = {**recipe, **recipe.get("retrain", {})}
        if arch is not None and "augment_below_macs" in recipe:
            limit, small = recipe["augment_below_macs"]
            if space.macs([arch])[0] < limit:
                return small
    return recipe.get("augment", "none")


def recipe_of(recipe: str | Mapping[str, Any] | Recipe | None) -> Recipe | None:
    """The ``Recipe`` a name (``RECIPES``; ``none``/None: no augmentation), a mapping of ``Recipe`` fields (on top of
    nothing) or a ``Recipe`` stands for; ``UserError`` for an unknown name or field."""
    if recipe is None or isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, Mapping):
        unknown = sorted(set(recipe) - {f.name for f in fields(Recipe)})
        if unknown:
            raise UserError(f"an augmentation recipe has no field {unknown[0]!r}; valid: "
                            f"{', '.join(f.name for f in fields(Recipe))}")
        return Recipe(**recipe)
    if recipe == "none":
        return None
    if recipe not in RECIPES:
        raise UserError(f"unknown augmentation recipe {shorten(repr(recipe))}; valid: {', '.join(CHOICES)}")
    return RECIPES[recipe]


def augmentation(recipe: str | Mapping[str, Any] | Recipe | None, num_classes: int, image_size: int,
                 device: str | torch.device = "cpu", seed_or_generator: int | torch.Generator = 0, space=None
                 ) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None:
    """The training batches' augmentation of ``recipe`` for images ``(B, 3, image_size, image_size)`` in [0, 1]
    of ``num_classes`` classes, on ``device``; None for no augmentation. ``auto`` is resolved with ``space``
    (``resolve``). Its randomness comes from ``seed_or_generator`` (a seed, or a CPU ``torch.Generator`` it draws
    one seed from per batch), never from torch's global state."""
    if recipe == "auto":
        recipe = resolve(recipe, space, str(device))
    chosen = recipe_of(recipe)
    return None if chosen is None else Augmentation(chosen, num_classes, image_size, device, seed_or_generator)


class Augmentation:
    """A recipe built on kornia for one image size and class count: ``(x, y) -> (x, target)``."""

    def __init__(self, recipe: Recipe, num_classes: int, image_size: int, device: str | torch.device = "cpu",
                 seed_or_generator: int | torch.Generator = 0):
        import kornia.augmentation as K
        import torch
        from kornia.augmentation.auto import RandAugment

        self.recipe, self.num_classes = recipe, num_classes
        self.device = torch.device(device)
        if isinstance(seed_or_generator, torch.Generator):
            self.generator = seed_or_generator
        else:
            self.generator = torch.Generator().manual_seed(int(seed_or_generator))
        size = (image_size, image_size)
        self.crop = None  # bicubic resampling overshoots [0, 1]: clamped before the other operations
        if recipe.crop == "resized":
            self.crop = K.RandomResizedCrop(size, scale=recipe.scale, resample="bicubic")
        elif recipe.crop == "padded":
            self.crop = K.RandomCrop(size, padding=recipe.padding)
        per_image = []
        if recipe.flip:
            per_image.append(K.RandomHorizontalFlip(p=recipe.flip))
        self.rand_augment = None
        if recipe.ops:
            self.rand_augment = RandAugment(n=recipe.ops, m=self._magnitude(recipe.magnitude))
            per_image.append(self.rand_augment)
        if recipe.erasing:
            per_image.append(K.RandomErasing(p=recipe.erasing, value=ERASE_VALUE))
        self.images = K.AugmentationSequential(*per_image) if per_image else None
        self.mixup = beta_mixup()(recipe.mixup) if recipe.mixup else None
        self.cutmix = (K.RandomCutMixV2(beta=recipe.cutmix, use_correct_lambda=True, data_keys=["input", "class"])
                       if recipe.cutmix else None)

    @staticmethod
    def _magnitude(timm_magnitude: float) -> float:
        """A magnitude out of 10 on kornia's scale (out of 30), kept inside the open range kornia takes."""
        return min(max(timm_magnitude * KORNIA_MAGNITUDE / 10, 0.5), KORNIA_MAGNITUDE - 0.5)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        seed = int(torch.randint(2**62, (1,), generator=self.generator))
        cuda = []
        if self.device.type == "cuda":
            cuda = [torch.cuda.current_device() if self.device.index is None else self.device.index]
        with torch.random.fork_rng(devices=cuda), torch.no_grad():
            torch.default_generator.manual_seed(seed)
            for index in cuda:
                torch.cuda.default_generators[index].manual_seed(seed)
            return self._apply(x, y)

    def _apply(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        r = self.recipe
        if self.rand_augment is not None:
            self.rand_augment.m = self._magnitude(r.magnitude + r.magnitude_std * float(torch.randn(())))
        if self.crop is not None:
            x = self.crop(x).clamp_(0, 1)
        if self.images is not None:
            x = self.images(x)
        mixer = self.cutmix if self.mixup is None else self.mixup
        if self.mixup is not None and self.cutmix is not None and float(torch.rand(())) < r.switch:
            mixer = self.cutmix
        if mixer is None:
            return x, (self.smoothed(y, y, torch.ones(len(y), device=y.device)) if r.smoothing else y)
        x, mixed = mixer(x, y)
        mixed = mixed.reshape(-1, 3)  # CutMix returns (mixes = 1, B, 3)
        partner = mixed[:, 1].round().long()
        own = 1 - mixed[:, 2] if mixer is self.mixup else mixed[:, 2]
        return x, self.smoothed(y, partner, own)

    def smoothed(self, y: torch.Tensor, partner: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
        """``own`` of each image's smoothed one-hot target plus the rest of its ``partner``'s: rows summing to 1."""
        import torch.nn.functional as F

        off = self.recipe.smoothing / self.num_classes
        on = 1 - self.recipe.smoothing + off

        def hot(labels):
            return F.one_hot(labels, self.num_classes).float() * (on - off) + off

        own = own.float()[:, None]
        return own * hot(y) + (1 - own) * hot(partner)


@functools.cache
def beta_mixup() -> type:
    """kornia's Mixup with its mixing share drawn from Beta(alpha, alpha), as in the Mixup paper and DeiT (kornia's
    own draws it uniformly); made on first use, so that importing this module imports no kornia."""
    import torch
    from kornia.augmentation import RandomMixUpV2
    from kornia.augmentation.random_generator import MixupGenerator

    class BetaMixupGenerator(MixupGenerator):
        def __init__(self, alpha: float):
            self.alpha = alpha
            super().__init__()

        def make_samplers(self, device, dtype):
            super().make_samplers(device, dtype)
            concentration = torch.tensor(self.alpha, device=device, dtype=dtype)
            self.lambda_sampler = torch.distributions.Beta(concentration, concentration)

    class BetaMixUp(RandomMixUpV2):
        def __init__(self, alpha: float):
            super().__init__(data_keys=["input", "class"])
            self._param_generator = BetaMixupGenerator(alpha)

    return BetaMixUp
