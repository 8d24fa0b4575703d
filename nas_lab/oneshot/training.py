"""Training a weight-sharing supernet on a task: what SPOS, DARTS and the supernet objective share.

- ``Settings``: the training length, batch, learning rate and BN-recalibration
  size every one-shot method is configured with, checked once;
- ``TaskTensors``: the task's train and val splits as tensors on its device;
- ``new_supernet``: the space's supernet (checked against the contract of
  ``contract.Supernet``) with seeded initial weights;
- ``train_weights``: the epoch loop of weight steps, whatever each batch trains;
- ``train_single_path``: single-path uniform sampling (SPOS, Guo et al., ECCV
  2020): every batch trains one arch drawn uniformly from the space, so every
  arch's slice of the shared weights is trained about equally often.

Scoring paths with the trained weights is ``evaluation.py``'s.

Weights are trained with SGD (momentum 0.9, Nesterov, weight decay 5e-4) under a
cosine learning-rate schedule to zero, DARTS' weight optimiser (SPOS uses the
same SGD with a linear decay); no data augmentation. Vision transformers do not
learn under that recipe in a few epochs (the ViTAS super-transformer stays near
chance on digits), so ``optimizer="adamw"`` is the transformer recipe of DeiT and
ViTAS: AdamW (weight decay 0.05 on tensors of two or more dimensions, none on biases and norm
scales)
with a linear warm-up over the first tenth of the steps, then the cosine decay.
A space names the recipe its supernet wants as ``supernet_recipe`` (see
``contract.py``); ``Settings.resolve`` fills the unset settings from it. Torch's randomness (initial weights, shuffling) is drawn from
generators seeded by the caller's ``np.random.Generator`` or seed, never from
global state.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from nas_lab.core.errors import UserError
from nas_lab.core.space import Space
from nas_lab.core.task import Task
from nas_lab.data.datasets import ImageData
from nas_lab.oneshot.contract import Supernet, check_supernet

#: bumped whenever ``train_single_path`` learns other weights from the same settings and seed (keys cached supernets);
#: still 1 after the move from ``searchers/supernet_training.py``, which changed no weight
VERSION = 1
MOMENTUM, WEIGHT_DECAY = 0.9, 5e-4
#: optimiser recipes and their default peak learning rates
LEARNING_RATES = {"sgd": 0.1, "adamw": 1e-3}
EPOCHS = 5  # the default training length, sized for the HyViTas supernet on a CPU
RECALIBRATION = 4  # the default number of train batches that re-estimate BN per arch
ADAMW_WEIGHT_DECAY, WARMUP_SHARE = 0.05, 0.1

Split = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Settings:
    """How a supernet is trained (``epochs`` over the train split in batches of ``batch_size``, at most
    ``max_batches`` per epoch, peak ``learning_rate``) and how many train batches re-estimate BN per arch."""

    epochs: int
    batch_size: int
    learning_rate: float
    max_batches: int | None
    recalibration: int
    optimizer: str = "sgd"
    #: largest gradient norm a step may take (``clip_grad_norm_``); None: no clipping
    grad_clip: float | None = None

    def check(self, owner: str) -> Settings:
        """``self``, or ``UserError`` naming the first bad value as ``<owner>.<param>``."""
        for name in ("epochs", "batch_size", "recalibration"):
            if getattr(self, name) < 1:
                raise UserError(f"{owner}.{name} must be a positive whole number, got {getattr(self, name)}")
        if self.max_batches is not None and self.max_batches < 1:
            raise UserError(f"{owner}.max_batches must be a positive whole number or none (whole epochs), "
                            f"got {self.max_batches}")
        if self.optimizer not in LEARNING_RATES:
            raise UserError(f"{owner}.optimizer must be one of auto, {', '.join(LEARNING_RATES)}, got {self.optimizer!r}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise UserError(f"{owner}.learning_rate must be a positive number, got {self.learning_rate}")
        if self.grad_clip is not None and not (self.grad_clip > 0 and math.isfinite(self.grad_clip)):
            raise UserError(f"{owner}.grad_clip must be a positive number or none, got {self.grad_clip}")
        return self

    def batches_per_epoch(self, images: int) -> int:
        """Training batches an epoch over ``images`` images has (full batches only, see ``minibatches``)."""
        full = max(1, images // self.batch_size)
        return full if self.max_batches is None else min(full, self.max_batches)

    def training(self) -> dict:
        """The settings the trained weights depend on (recalibration does not change them); the optimiser only
        when it is not SGD and the clipping only when set, so supernets cached before there was a choice keep
        their keys."""
        out = {"epochs": self.epochs, "batch_size": self.batch_size, "learning_rate": self.learning_rate,
               "max_batches": self.max_batches}
        if self.optimizer != "sgd":
            out["optimizer"] = self.optimizer
        if self.grad_clip is not None:
            out["grad_clip"] = self.grad_clip
        return out

    @classmethod
    def resolve(cls, space: Space | None, epochs: int | None, batch_size: int, learning_rate: float | None,
                max_batches: int | None, recalibration: int | None, optimizer: str, owner: str) -> Settings:
        """Checked settings where ``optimizer="auto"``, ``epochs=None`` and ``recalibration=None`` take the space's
        recipe (``space.supernet_recipe``, see ``contract.py``; else SGD, 5 epochs, 4 batches) and
        ``learning_rate=None`` the optimiser's default peak rate."""
        recipe = space.supernet_recipe if space is not None else {}
        if optimizer == "auto":
            optimizer = recipe.get("optimizer", "sgd")
        if epochs is None:
            epochs = recipe.get("epochs", EPOCHS)
        if recalibration is None:
            recalibration = recipe.get("recalibration", RECALIBRATION)
        rate = LEARNING_RATES.get(optimizer, 1.0) if learning_rate is None else learning_rate
        return cls(epochs, batch_size, rate, max_batches, recalibration, optimizer).check(owner)


@dataclass(frozen=True)
class Throughput:
    """Images a training pushed through the supernet and the seconds it took."""

    images: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("nan")


def torch_device(task: Task) -> torch.device:
    """The task's torch device, refusing ``cuda`` on a machine without a GPU."""
    if task.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("device=cuda was asked for but torch finds no CUDA GPU here; use device=cpu")
    return torch.device(task.device)


class TaskTensors:
    """A task's train and val splits as tensors on its device (``cuda`` refused without a GPU); ``data`` has them all."""

    def __init__(self, task: Task):
        self.device = torch_device(task)
        self.data: ImageData = task.data()
        if self.data.shape[0] != 3:
            raise UserError(f"supernets take RGB images, but dataset {self.data.name!r} has {self.data.shape[0]} "
                            "channel(s); drop dataset.channels or set dataset.channels=3")
        self.train, self.val = (self.tensors(*part.arrays(f"dataset {self.data.name}"))
                                for part in (self.data.train, self.data.val))

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    def tensors(self, x: np.ndarray, y: np.ndarray) -> Split:
        """Arrays as tensors on the device (copied: the dataset's arrays are read-only and shared)."""
        return torch.tensor(x, device=self.device), torch.tensor(y, device=self.device)


def torch_generator(rng: np.random.Generator) -> torch.Generator:
    """A CPU torch generator seeded from ``rng``, so torch's draws follow the run's seed."""
    return torch.Generator().manual_seed(int(rng.integers(2**62)))


def new_supernet(space: Space, num_classes: int, rng: np.random.Generator, device: torch.device) -> Supernet:
    """The space's supernet with initial weights drawn under a seed from ``rng`` (global torch state restored),
    checked to offer the ``Supernet`` contract."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng.integers(2**62)))
        net = check_supernet(space.supernet(num_classes=num_classes), space)
    return net.to(device)


def non_finite(net: torch.nn.Module) -> str | None:
    """The name of the first weight or buffer of ``net`` holding a NaN or an infinity, or None: such a supernet
    (diverged training, a damaged cache) scores every path alike, at chance, so it is refused rather than used."""
    return next((name for name, t in net.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()),
                None)


def minibatches(split: Split, batch_size: int, generator: torch.Generator | None = None,
                limit: int | None = None) -> Iterator[Split]:
    """``(x, y)`` batches of a split, at most ``limit``: in order, or shuffled by ``generator`` and then full only.

    Shuffled batches feed train-mode forward passes (training, BN recalibration),
    so a ragged last batch is dropped: a batch of one image has no batch
    statistics where the last stage is 1x1. A split smaller than a batch is one batch.
    """
    x, y = split
    n = len(y)
    if generator is None:
        order, starts = torch.arange(n), range(0, n, batch_size)
    else:
        order, starts = torch.randperm(n, generator=generator), range(0, max(1, n - batch_size + 1), batch_size)
    for start in starts if limit is None else starts[:limit]:
        idx = order[start:start + batch_size].to(x.device)
        yield x[idx], y[idx]


def epochs(split: Split, settings: Settings, generator: torch.Generator) -> Iterator[Split]:
    """Every training batch of every epoch, reshuffled each epoch."""
    for _ in range(settings.epochs):
        yield from minibatches(split, settings.batch_size, generator, settings.max_batches)


def weight_optimizer(params, settings: Settings, steps: int):
    """The optimiser of ``settings`` and its schedule over ``steps``: SGD with Nesterov momentum and weight decay,
    cosine from ``learning_rate`` to 0; or AdamW, linear warm-up then the same cosine."""
    steps = max(1, steps)
    if settings.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=settings.learning_rate, momentum=MOMENTUM, nesterov=True,
                                    weight_decay=WEIGHT_DECAY)
        return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    params = list(params)
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": ADAMW_WEIGHT_DECAY},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=settings.learning_rate)
    warmup = max(1, round(WARMUP_SHARE * steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def progress(total: int, desc: str, show: bool, unit: str = "it", postfix: str | None = None):
    """A tqdm bar on stderr when ``show`` (``Task.progress``: on for ``nas-lab run`` unless ``--no-progress``,
    off in study workers, whose study has a bar of its own); gone once done, like the work it tracked."""
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not show,
                dynamic_ncols=True, mininterval=0.5, leave=False, postfix=postfix)


def train_weights(net: Supernet, train: Split, settings: Settings, generator: torch.Generator, desc: str,
                  loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], show: bool = False) -> Throughput:
    """Train ``net``'s weights in place: every batch of every epoch, one SGD step on ``loss_of(x, y)``.

    ``loss_of`` picks what the batch trains (a sampled path, a mixture) and may
    take steps of its own first (DARTS' architecture step); ``generator``
    shuffles the epochs. The throughput counts the train images of the steps.
    With ``show``, a bar named ``desc`` counts the train images (so its rate is
    images/s and its ETA the training's) with the epoch, batch and loss.
    """
    n = len(train[1])
    per_epoch = settings.batches_per_epoch(n)
    steps = settings.epochs * per_epoch
    optimizer, schedule = weight_optimizer(net.parameters(), settings, steps)
    net.train()
    images, start = 0, time.perf_counter()
    with progress(steps * min(settings.batch_size, n), desc, show, unit="img",
                  postfix=f"epoch 1/{settings.epochs} batch 0/{per_epoch}") as bar:
        for step, (x, y) in enumerate(epochs(train, settings, generator)):
            loss = loss_of(x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(net.parameters(), settings.grad_clip)
            optimizer.step()
            schedule.step()
            images += len(y)
            if show:
                bar.set_postfix_str(f"epoch {step // per_epoch + 1}/{settings.epochs} batch {step % per_epoch + 1}/"
                                    f"{per_epoch} loss {loss.item():.3f}", refresh=False)
                bar.update(len(y))
    return Throughput(images, time.perf_counter() - start)


def train_single_path(net: Supernet, space: Space, train: Split, settings: Settings, rng: np.random.Generator,
                      desc: str, show: bool = False) -> Throughput:
    """Train ``net`` in place by uniform single-path sampling (SPOS): one arch from ``space.sample`` per batch."""
    return train_weights(net, train, settings, torch_generator(rng), desc,
                         lambda x, y: F.cross_entropy(net(x, space.sample(rng, 1)[0]), y), show)
