"""Training a weight-sharing supernet on a task: what SPOS, DARTS and the supernet objective share.

- ``Settings``: the training length, batch, learning rate and BN-recalibration
  size every one-shot method is configured with, and the arithmetic, compile,
  augmentation, checkpoint and data-loading choices, checked once;
- ``TaskData``: the task's splits (image sets) and its device; ``batches_of``:
  the one way training, recalibration and evaluation read batches;
- ``new_supernet``: the space's supernet (checked against the contract of
  ``contract.Supernet``) with seeded initial weights;
- ``train_weights``: the epoch loop of weight steps, whatever each batch trains,
  in mixed precision, data-parallel under torchrun (``distributed.py``), with
  checkpoints that resume (``checkpoint.py``);
- ``train_single_path``: single-path uniform sampling (SPOS, Guo et al., ECCV
  2020): every batch trains one arch drawn uniformly from the space, so every
  arch's slice of the shared weights is trained about equally often.

Scoring paths with the trained weights is ``evaluation.py``'s.

Weights are trained with SGD (momentum 0.9, Nesterov, weight decay 5e-4) under a
cosine learning-rate schedule to zero, DARTS' weight optimiser (SPOS uses the
same SGD with a linear decay). Vision transformers do not
learn under that recipe in a few epochs (the ViTAS super-transformer stays near
chance on digits), so ``optimizer="adamw"`` is the transformer recipe of DeiT and
ViTAS: AdamW (weight decay 0.05 on tensors of two or more dimensions, none on biases and norm
scales)
with a linear warm-up over the first tenth of the steps, then the cosine decay.
A space names the recipe its supernet wants as ``supernet_recipe`` (see
``contract.py``); ``Settings.resolve`` fills the unset settings from it, the
augmentation (``oneshot.augment``) included, which applies on CUDA only unless
named (``augment=auto`` is none on the CPU, so the CPU miniatures keep their
results). Precision: ``auto`` is bf16 autocast on CUDA and fp32 on the CPU;
fp16 adds a gradient scaler; weights stay float32. Torch's randomness (initial weights, shuffling) is drawn from
generators seeded by the caller's ``np.random.Generator`` or seed, never from
global state.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import os
import sys
import time
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from typing import Annotated, Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from nas_lab.core.errors import UserError
from nas_lab.core.settings import Setting, from_hint
from nas_lab.core.space import Space
from nas_lab.core.task import Task
from nas_lab.data.datasets import ImageData
from nas_lab.data.images import ArrayImages, ImageSet
from nas_lab.oneshot import distributed
from nas_lab.oneshot import settings as declarations
from nas_lab.oneshot.augment import augmentation
from nas_lab.oneshot.augment import resolve as resolve_augment
from nas_lab.oneshot.checkpoint import Checkpoint, random_states, restore, restore_random_states, state_of
from nas_lab.oneshot.contract import Supernet, check_supernet, runs_mixtures
from nas_lab.oneshot.logs import TrainingLog

#: bumped whenever ``train_single_path`` learns other weights from the same settings and seed (keys cached supernets);
#: still 1 after the move from ``searchers/supernet_training.py``, which changed no weight
VERSION = 1
MOMENTUM, WEIGHT_DECAY = 0.9, 5e-4
#: optimiser recipes and their default peak learning rates
LEARNING_RATES = {"sgd": 0.1, "adamw": 1e-3}
EPOCHS = 5  # the default training length, sized for the HyViTas supernet on a CPU
RECALIBRATION = 4  # the default number of train batches that re-estimate BN per arch
ADAMW_WEIGHT_DECAY, WARMUP_SHARE = 0.05, 0.1
#: the autocast dtype of each precision (None: no autocast)
AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

Split = tuple[torch.Tensor, torch.Tensor]
#: what batches are read from: an image set (``data/images.py``), or images and labels already in tensors
Source = ImageSet | Split


@dataclass(frozen=True)
class Settings:
    """How a supernet is trained (``epochs`` over the train split in batches of ``batch_size``, at most
    ``max_batches`` per epoch, peak ``learning_rate``) and how many train batches re-estimate BN per arch;
    the arithmetic (``precision``, resolved: never ``auto``), ``compile``, the augmentation recipe (``augment``,
    resolved) and how often a checkpoint is written (``checkpoint_every`` steps, besides every epoch's end)."""

    epochs: Annotated[int, declarations.EPOCHS]
    batch_size: Annotated[int, declarations.BATCH_SIZE]
    learning_rate: Annotated[float, declarations.LEARNING_RATE]
    max_batches: Annotated[int | None, declarations.MAX_BATCHES]
    recalibration: Annotated[int, declarations.RECALIBRATION]
    optimizer: Annotated[str, Setting(choices=tuple(LEARNING_RATES))] = "sgd"
    #: largest gradient norm a step may take (``clip_grad_norm_``); None: no clipping
    grad_clip: Annotated[float | None, declarations.GRAD_CLIP] = None
    precision: Annotated[str, Setting(choices=tuple(AUTOCAST))] = "fp32"
    compile: Annotated[bool, declarations.COMPILE] = False
    augment: Annotated[str, declarations.AUGMENT] = "none"
    checkpoint_every: Annotated[int | None, declarations.CHECKPOINT_EVERY] = None
    #: processes decoding images of sets read from disk (resolved: never None)
    workers: Annotated[int, declarations.WORKERS] = 0

    def check(self, owner: str) -> Settings:
        """``self`` with every value read as its declaration reads it (``"5"`` is 5), or ``UserError`` naming the
        first value one refuses as ``<owner>.<param>``; the optimizer and precision are the resolved ones (never
        ``auto``), and the world size must divide the batch."""
        read = replace(self, **{name: s.coerce(getattr(self, name), owner) for name, s in _declarations().items()})
        distributed.check_divides(read.batch_size, f"{owner}.batch_size")
        return read

    def batches_per_epoch(self, images: int) -> int:
        """Training batches an epoch over ``images`` images has (full batches only, see ``data.loading.batches``)."""
        full = max(1, images // self.batch_size)
        return full if self.max_batches is None else min(full, self.max_batches)

    def training(self) -> dict:
        """The settings the trained weights depend on (recalibration and checkpoints do not change them); the
        optimiser only when it is not SGD, the clipping only when set, the precision only when not fp32, compile
        only when on and the augmentation only when there is one, so supernets cached before there was a choice
        keep their keys."""
        out = {"epochs": self.epochs, "batch_size": self.batch_size, "learning_rate": self.learning_rate,
               "max_batches": self.max_batches}
        if self.optimizer != "sgd":
            out["optimizer"] = self.optimizer
        if self.grad_clip is not None:
            out["grad_clip"] = self.grad_clip
        if self.precision != "fp32":
            out["precision"] = self.precision
        if self.compile:
            out["compile"] = True
        if self.augment != "none":
            out["augment"] = self.augment
        return out

    @classmethod
    def resolve(cls, space: Space | None, epochs: int | None, batch_size: int, learning_rate: float | None,
                max_batches: int | None, recalibration: int | None, optimizer: str, owner: str, *,
                device: str = "cpu", precision: str = "auto", compile: bool = False, augment: str = "auto",
                checkpoint_every: int | None = None, workers: int | None = None) -> Settings:
        """Checked settings where ``optimizer="auto"``, ``epochs=None`` and ``recalibration=None`` take the space's
        recipe (``space.supernet_recipe``, see ``contract.py``; else SGD, 5 epochs, 4 batches),
        ``learning_rate=None`` the optimiser's default peak rate, the recipe's gradient clipping (if it names one), and
        ``precision="auto"`` / ``augment="auto"`` bf16
        and the recipe's augmentation on CUDA, fp32 and none on CPU (the CPU miniatures keep their results),
        ``workers=None`` ``resolve_workers``."""
        recipe = space.supernet_recipe if space is not None else {}
        if optimizer == "auto":
            optimizer = recipe.get("optimizer", "sgd")
        if epochs is None:
            epochs = recipe.get("epochs", EPOCHS)
        if recalibration is None:
            recalibration = recipe.get("recalibration", RECALIBRATION)
        augment = resolve_augment(augment, space, device)
        rate = LEARNING_RATES.get(optimizer, 1.0) if learning_rate is None else learning_rate
        return cls(epochs, batch_size, rate, max_batches, recalibration, optimizer, recipe.get("grad_clip"),
                   precision=resolve_precision(precision, device), compile=compile, augment=augment,
                   checkpoint_every=checkpoint_every, workers=resolve_workers(workers, device)).check(owner)


@functools.cache
def _declarations() -> dict[str, Setting]:
    """Each ``Settings`` field's declaration (``oneshot/settings.py``, shared with the signatures of SPOS, DARTS
    and the supernet objective), named and typed by the field."""
    hints = typing.get_type_hints(Settings, include_extras=True)
    return {f.name: from_hint(f.name, hints[f.name], None) for f in fields(Settings)}


def on_cuda(device: str) -> bool:
    return device.split(":")[0] == "cuda"


def resolve_workers(workers: int | None, device: str) -> int:
    """``None``: on CUDA, up to 8 decoding processes per training process (as many as its share of the CPUs), so
    the GPU does not wait for images; on CPU none (decoding would take cores from the training itself)."""
    if workers is not None:
        return workers
    return max(1, min(8, (os.cpu_count() or 1) // distributed.world())) if on_cuda(device) else 0


def resolve_precision(precision: str, device: str) -> str:
    """``auto``: bf16 on CUDA, fp32 on CPU (where autocast is slower than float32 on most CPUs); else as given."""
    if precision == "auto":
        return "bf16" if on_cuda(device) else "fp32"
    return precision


@dataclass(frozen=True)
class Throughput:
    """Images a training pushed through the supernet and the seconds it took."""

    images: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("nan")


def torch_device(task: Task) -> torch.device:
    """The task's torch device, refusing ``cuda`` on a machine without a GPU; under torchrun on CUDA, this rank's
    GPU (``LOCAL_RANK``), the process group joined first (``distributed.setup``)."""
    if task.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("device=cuda was asked for but torch finds no CUDA GPU here; use device=cpu")
    distributed.setup()
    if distributed.launched() and task.device == "cuda":
        return torch.device("cuda", distributed.local_rank())
    return torch.device(task.device)


class TaskData:
    """A task's splits (``train``, ``val``, ``test``: image sets, ``data/images.py``) and the device their batches
    go to (``cuda`` refused without a GPU); ``data`` is the whole ``ImageData``. Nothing is copied here: training
    and evaluation read batches (``batches_of``) and move each to the device."""

    def __init__(self, task: Task):
        self.device = torch_device(task)
        self.data: ImageData = task.data()
        if self.data.shape[0] != 3:
            raise UserError(f"supernets take RGB images, but dataset {self.data.name!r} has {self.data.shape[0]} "
                            "channel(s); drop dataset.channels or set dataset.channels=3")
        self.train, self.val, self.test = self.data.train, self.data.val, self.data.test

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    @property
    def image_size(self) -> int:
        return int(self.data.shape[-1])


def training_key(space: Space, task: Task, settings: Settings, seed) -> dict:
    """Everything weights trained by ``train_single_path`` depend on: space, dataset and its settings, device type,
    training settings, ``seed`` (anything JSON can write), the number of data-parallel processes when above one
    (BatchNorm sees each rank's share of a batch, see ``distributed``) and the versions; what names cached
    supernets and checkpoints."""
    import nas_lab

    out = {"space": space.name, "decisions": repr(space.decisions), "dataset": task.dataset,
           "dataset_params": [[k, str(v)] for k, v in task.params], "device": torch.device(task.device).type,
           **settings.training(), "seed": seed, "training_version": VERSION, "nas_lab": nas_lab.__version__}
    if distributed.world() > 1:
        out["processes"] = distributed.world()
    return out


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


def batches_of(source: Source, batch_size: int, device: torch.device, generator: torch.Generator | None = None,
               limit: int | None = None, *, skip: int = 0, rank: int = 0, world: int = 1,
               workers: int = 0) -> Iterator[Split]:
    """The one way training, recalibration and evaluation read data: ``data.loading.batches`` of an image set (or of
    a pair of tensors, read as an in-memory set; tests and benchmarks hand those), each batch moved to ``device``
    (asynchronously from pinned memory on CUDA), the first ``skip`` left out (a training resumed mid-epoch; a set
    read from disk still decodes them). Images sets not in memory are decoded in ``workers`` processes."""
    from nas_lab.data.loading import batches

    if isinstance(source, tuple):
        source = ArrayImages(source[0].detach().cpu().numpy(), source[1].cpu().numpy())
    read = batches(source, batch_size, generator=generator, limit=limit, workers=workers, rank=rank, world=world,
                   pin_memory=device.type == "cuda")
    for x, y in itertools.islice(read, skip, None):
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def size(source: Source) -> int:
    """Images in a source of batches."""
    return len(source[1]) if isinstance(source, tuple) else len(source)


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


class _Step(torch.nn.Module):
    """The loss of one batch as a module around the network, so that DistributedDataParallel (and
    ``torch.compile``) wrap the whole step whatever ``loss_of`` does with the network (a sampled path, a
    mixture, an architecture step of its own first)."""

    def __init__(self, net: torch.nn.Module, loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        super().__init__()
        self.net, self.loss_of = net, loss_of

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss_of(x, target)


def channels_last(net: torch.nn.Module, device: torch.device) -> bool:
    """Whether training ``net`` on ``device`` keeps tensors channels-last: on CUDA, for networks with
    convolutions (its tensor cores take NHWC; on CPU and for plain transformers it gains nothing)."""
    return device.type == "cuda" and any(isinstance(m, torch.nn.Conv2d) for m in net.modules())


def step_module(net: torch.nn.Module, loss_of, settings: Settings, device: torch.device) -> torch.nn.Module:
    """What each training step calls with ``(x, target)``: the loss module, data-parallel under torchrun (gradients
    averaged over the ranks; ``find_unused_parameters`` unless the net runs DARTS mixtures, which use every weight:
    a sampled path leaves most weights out, and a plain model may hold some its forward skips), compiled
    when ``settings.compile``."""
    step = _Step(net, loss_of)
    if distributed.active():
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        step = DistributedDataParallel(step, device_ids=ids, find_unused_parameters=not runs_mixtures(net))
    return torch.compile(step) if settings.compile else step


def train_weights(net: Supernet, train: Source, settings: Settings, generator: torch.Generator, desc: str,
                  loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], show: bool = False, *,
                  augment: Callable | None = None, log=None, val: Callable[[], float] | None = None,
                  checkpoint: Checkpoint | None = None, resumable: dict[str, Any] | None = None) -> Throughput:
    """Train ``net``'s weights in place: every batch of every epoch, one optimiser step on ``loss_of(x, target)``.

    ``loss_of`` picks what the batch trains (a sampled path, a mixture) and may
    take steps of its own first (DARTS' architecture step); ``generator``
    shuffles the epochs. ``augment`` maps each training batch ``(x, y)``, on the
    device, to ``(x, target)`` (target: labels or class probabilities) before the
    loss. Steps run under ``settings.precision`` (autocast; fp16 with a gradient
    scaler), channels-last on CUDA for convolutional nets, compiled if asked, and
    data-parallel under torchrun (each rank a share of every global batch).

    ``log`` (an object with ``scalars(step, values)``; with a ``checkpoint`` and no ``log``, a ``TrainingLog``
    in the checkpoint's ``logs`` folder, started afresh unless the training resumes), on rank 0, gets the loss
    averaged over the ranks, the learning rate and images/s of every step, and,
    when ``val`` (a callable giving the val accuracy %, called on every rank) is
    given, ``val_accuracy`` after every epoch. With ``checkpoint``, the training
    resumes from a matching checkpoint and writes one at the end of every epoch
    and every ``checkpoint.every`` steps, holding the weights, optimiser,
    schedule, scaler, the generators (``generator``, torch's global ones and
    ``resumable``'s, e.g. the numpy generator of sampled paths) and the position
    in the data. The throughput counts the (global) train images of the steps
    this call took. With ``show``, a bar named ``desc`` counts the train images
    (so its rate is images/s and its ETA the training's) with the epoch, batch and
    loss (rank 0's share).
    """
    device = next(net.parameters()).device
    world, rank = distributed.world(), distributed.rank()
    distributed.check_divides(settings.batch_size, "batch_size")
    n = size(train)
    per_epoch = settings.batches_per_epoch(n)
    steps = settings.epochs * per_epoch
    nhwc = channels_last(net, device)
    if nhwc:
        net.to(memory_format=torch.channels_last)
    optimizer, schedule = weight_optimizer(net.parameters(), settings, steps)
    scaler = torch.amp.GradScaler(device.type, enabled=settings.precision == "fp16")
    dtype = AUTOCAST[settings.precision]
    model = step_module(net, loss_of, settings, device)
    keep = {"model": net, "optimizer": optimizer, "schedule": schedule, "scaler": scaler, **(resumable or {})}
    saved = checkpoint.load() if checkpoint is not None else None
    epoch, done = (saved["epoch"], saved["step"]) if saved else (0, 0)
    if saved:
        for name, thing in keep.items():
            restore(thing, saved["states"][name])
        restore_random_states(saved["random"])
        generator.set_state(saved["order"])
    if log is None and checkpoint is not None and distributed.main():
        log = TrainingLog(checkpoint.logs, fresh=saved is None)
        opened = log
    else:
        log, opened = (log if distributed.main() else None), None
    batch = min(settings.batch_size, n)
    net.train()
    images, start = 0, time.perf_counter()
    with opened or contextlib.nullcontext(), progress(steps * batch, desc, show, unit="img",
                                                    postfix=f"epoch {epoch + 1}/{settings.epochs} batch "
                                                            f"{done - epoch * per_epoch}/{per_epoch}") as bar:
        bar.update(done * batch)
        while epoch < settings.epochs:
            order = generator.get_state()  # what draws this epoch's permutation: resumes it mid-epoch
            within = done - epoch * per_epoch
            for x, y in batches_of(train, settings.batch_size, device, generator, settings.max_batches, skip=within,
                                   rank=rank, world=world, workers=settings.workers):
                tick = time.perf_counter()
                if nhwc:
                    x = x.contiguous(memory_format=torch.channels_last)
                x, target = augment(x, y) if augment is not None else (x, y)
                with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    loss = model(x, target)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if settings.grad_clip is not None:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(net.parameters(), settings.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                schedule.step()
                done, images = done + 1, images + batch
                if log is not None or world > 1:
                    value = distributed.mean(loss, device)  # every rank joins the reduction
                    if log is not None:
                        log.scalars(done, {"loss": value, "lr": optimizer.param_groups[0]["lr"],
                                           "images_per_s": batch / (time.perf_counter() - tick)})
                if show:
                    bar.set_postfix_str(f"epoch {epoch + 1}/{settings.epochs} batch {done - epoch * per_epoch}/"
                                        f"{per_epoch} loss {loss.item():.3f}", refresh=False)
                    bar.update(batch)
                if checkpoint is not None and checkpoint.every and done % checkpoint.every == 0 and done < steps:
                    _save(checkpoint, keep, epoch, done, order)
            epoch += 1
            if val is not None:
                accuracy = val()
                if log is not None:
                    log.scalars(done, {"val_accuracy": accuracy})
                net.train()
            if checkpoint is not None and done < steps:
                _save(checkpoint, keep, epoch, done, generator.get_state())
    return Throughput(images, time.perf_counter() - start)


def _save(checkpoint: Checkpoint, keep: dict[str, Any], epoch: int, done: int, order: torch.Tensor) -> None:
    """Checkpoint the training after ``done`` steps, in ``epoch``, whose permutation ``order`` draws (rank 0 only:
    the other ranks hold the same state)."""
    if not distributed.main():
        return
    checkpoint.save({"epoch": epoch, "step": done, "order": order, "random": random_states(),
                     "states": {name: state_of(thing) for name, thing in keep.items()}})


def augmentation_of(settings: Settings, num_classes: int, image_size: int, device: torch.device,
                    rng: np.random.Generator) -> tuple[Callable | None, dict[str, torch.Generator]]:
    """The augmentation of ``settings.augment`` (``oneshot.augment``) and the generator it draws from, to keep in
    checkpoints; ``(None, {})`` for ``none``, which draws nothing from ``rng`` (results as before augmentation)."""
    if settings.augment == "none":
        return None, {}
    generator = torch_generator(rng)
    return augmentation(settings.augment, num_classes, image_size, device, generator), {"augment": generator}


def train_single_path(net: Supernet, space: Space, train: Source, settings: Settings, rng: np.random.Generator,
                      desc: str, show: bool = False, *, augment: Callable | None = None, log=None,
                      checkpoint: Checkpoint | None = None, resumable: dict[str, Any] | None = None) -> Throughput:
    """Train ``net`` in place by uniform single-path sampling (SPOS): one arch from ``space.sample`` per batch, the
    same on every rank (``rng`` is seeded alike everywhere and kept in checkpoints)."""
    return train_weights(net, train, settings, torch_generator(rng), desc,
                         lambda x, y: F.cross_entropy(net(x, space.sample(rng, 1)[0]), y), show,
                         augment=augment, log=log, checkpoint=checkpoint, resumable={"paths": rng, **(resumable or {})})
