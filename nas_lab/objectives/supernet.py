"""Supernet objective (family ``supernet``): score archs with weights inherited from one trained supernet.

``objective=supernet.id`` trains the space's supernet once by uniform
single-path sampling (the SPOS loop, ``oneshot/training.py``) and
then evaluates any arch as a slice of it, after re-estimating its normalisation
statistics on a few fixed train batches (``oneshot/evaluation.py``): the one-shot
evaluation SPOS and AutoViT search with, usable by every ask/tell searcher (e.g.
REA on a supernet), on any space whose supernet offers ``oneshot.contract.Supernet``.

Metrics (accuracies in %, ``oneshot.evaluation.METRICS``): ``id`` on the val
split; on the test split's OoD variants (``data/corruptions.py``), ``ood.c1`` /
``ood.c5`` the mean over the nine ImageNet-C core corruptions at severity 1 / 5
and ``ood.sketch``; ``ood`` the mean of those three (there is no stylized variant
here) and ``id+ood`` the mean of ``id`` and ``ood``. Reports add, when the space
has a benchmark table, the table's metrics for the same arch under ``table.``
(``table.id``...), to compare the supernet's view with the benchmark's.

The trained weights are cached on disk, one file per (space, dataset and its
settings, device type, training settings, seed, nas_lab and training-loop
versions), in ``objective.cache`` (a folder), else ``$NAS_LAB_CACHE/supernets``,
else ``~/.cache/nas_lab/supernets``. A file is written under a temporary name
and renamed, so parallel study workers never read half a file; two workers
that both miss train the same weights and the last rename wins. Training
happens on the first evaluation, not at construction, so checking a study's
config trains nothing. The cost of an evaluation is the seconds it takes
(recalibration and inference), stored per arch so asking again costs the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np

from nas_lab.core.cache import cache_root
from nas_lab.core.errors import UserError
from nas_lab.core.files import reason, replacing
from nas_lab.core.objective import Evaluation, Objective
from nas_lab.core.settings import Setting
from nas_lab.core.space import Space
from nas_lab.core.task import Task
from nas_lab.objectives.tabular.objective import reference_table
from nas_lab.oneshot import settings as declarations
from nas_lab.oneshot.checkpoint import digest
from nas_lab.oneshot.evaluation import LABELS, METRICS, InheritedAccuracies

TABLE = "table."


class SupernetObjective(Objective):
    """Accuracy of an arch with weights inherited from a cached SPOS-trained supernet, BN recalibrated if any.

    ``epochs``, ``batch_size``, ``learning_rate``, ``max_batches``, ``optimizer`` train the
    supernet (as ``searcher=spos`` does; ``optimizer=auto`` and ``epochs=none`` are the
    space's recipe: SGD for 5 epochs, or for ViTAS' transformers AdamW with warm-up for
    60; ``learning_rate=none`` is the optimiser's peak rate, 0.1 or 1e-3), ``recalibration`` train batches
    re-estimate BN per arch (``none``: the space's recipe, 4 unless it says; AutoViT 2), ``seed`` fixes
    everything random (initial weights, training, recalibration batches, corruptions) so every run searches the same
    supernet; ``cache`` is the folder of trained supernets; ``table`` the
    benchmark table reports compare with (default: the space's own, when it opens).
    """

    family = "supernet"
    cheap = False
    needs = ("supernet",)
    directions = ("max",)

    def __init__(
        self,
        space: Space,
        metric: str = "id",
        task: Task | None = None,
        epochs: Annotated[int | None, declarations.EPOCHS] = None,
        batch_size: Annotated[int, declarations.BATCH_SIZE] = 64,
        learning_rate: Annotated[float | None, declarations.LEARNING_RATE] = None,
        max_batches: Annotated[int | None, declarations.MAX_BATCHES] = None,
        recalibration: Annotated[int | None, declarations.RECALIBRATION] = None,
        seed: Annotated[int, Setting(ge=0, le=2**32 - 1, help="seed of the weights, training, recalibration "
                                                               "batches and corruptions")] = 0,
        cache: Annotated[str | None, Setting(help="folder of trained supernets (default: "
                                                   "$NAS_LAB_CACHE/supernets)")] = None,
        table: Annotated[str | None, Setting(help="benchmark table reports compare with (default: the space's "
                                                   "own)")] = None,
        optimizer: Annotated[str, declarations.OPTIMIZER] = "auto",
        precision: Annotated[str, declarations.PRECISION] = "auto",
        compile: Annotated[bool, declarations.COMPILE] = False,
        augment: Annotated[str, declarations.AUGMENT] = "auto",
        checkpoint_every: Annotated[int | None, declarations.CHECKPOINT_EVERY] = None,
        workers: Annotated[int | None, declarations.WORKERS] = None,
    ):
        from nas_lab.oneshot.training import Settings, torch_device

        if metric not in METRICS:
            raise UserError(f"unknown supernet metric {metric!r}; valid: {', '.join(METRICS)}")
        self.space = space
        self.metric = metric
        self.task = (task or Task()).for_space(space)
        self.settings = Settings.resolve(space, epochs, batch_size, learning_rate, max_batches, recalibration,
                                         optimizer, "objective", device=self.task.device, precision=precision,
                                         compile=compile,
                                         augment=augment, checkpoint_every=checkpoint_every, workers=workers)
        self.seed = seed
        self.folder = Path(cache).expanduser().resolve() if cache else cache_root() / "supernets"
        self.reference = reference_table(space, table)
        self.device = torch_device(self.task).type  # refuse a missing GPU before anything runs
        self.name = f"supernet.{metric}"
        self.targets = (self.name,)
        self.cost_unit = "CPU-seconds" if self.device == "cpu" else "GPU-seconds"
        self._ready = None  # (inherited accuracies of the trained supernet, training facts), on first use

    # -- cache ---------------------------------------------------------------------
    def key(self) -> dict:
        """Everything the trained weights depend on (``oneshot.training.training_key``)."""
        from nas_lab.oneshot.training import training_key

        return training_key(self.space, self.task, self.settings, self.seed)

    @property
    def path(self) -> Path:
        """The cache file of this objective's supernet."""
        return self.folder / f"{self.space.name}_{self.task.dataset}_{digest(self.key())}.pt"

    def checkpoint(self):
        """Where the training of this objective's supernet keeps its checkpoint: beside the cache file, same key."""
        from nas_lab.oneshot.checkpoint import SUFFIX, Checkpoint

        return Checkpoint(self.path.with_suffix(SUFFIX), self.key(), self.settings.checkpoint_every)

    def _setup(self):
        """Inherited accuracies from the trained supernet (from the cache, else trained and cached) and the
        training's facts."""
        if self._ready is None:
            from nas_lab.oneshot import training as st
            from nas_lab.oneshot.evaluation import PathEvaluator

            data = st.TaskData(self.task)
            init, train, recalibration = (np.random.default_rng(s) for s in np.random.SeedSequence(self.seed).spawn(3))
            net = st.new_supernet(self.space, data.num_classes, init, data.device)
            facts = self._load(net, data.device)
            if facts is None:
                augment, resumable = st.augmentation_of(self.settings, data.num_classes, data.image_size, data.device,
                                                        train)
                checkpoint = self.checkpoint()
                trained = st.train_single_path(net, self.space, data.train, self.settings, train,
                                               "supernet objective training", self.task.progress, augment=augment,
                                               checkpoint=checkpoint, resumable=resumable)
                facts = {"train_seconds": trained.seconds, "train_images_per_second": trained.images_per_second,
                         "train_images": trained.images}  # this process's: fewer after a resumed checkpoint
                bad = st.non_finite(net)
                if bad is not None:
                    raise UserError(f"training the supernet diverged: its weight {bad} is no longer finite, so every "
                                    "arch would score alike; lower objective.learning_rate or train fewer epochs")
                self._save(net, facts)
                checkpoint.remove()
            evaluator = PathEvaluator(net, self.space, data.train, self.settings, recalibration)
            self._ready = (InheritedAccuracies(evaluator, data, self.seed), facts)
        return self._ready

    def _load(self, net, device) -> dict | None:
        """Load the cached weights into ``net``; their training facts, or None if nothing is cached (under torchrun,
        what rank 0 finds on its disk, sent to every rank)."""
        from nas_lab.oneshot import distributed

        saved = distributed.share(self._read)
        if saved is None:
            return None
        path = self.path
        try:
            net.load_state_dict(saved["state_dict"])
            facts = saved["facts"]
        except Exception:  # noqa: BLE001 - a damaged file can fail in many ways
            raise UserError(f"{path} is not the cached supernet its name says (damaged, or written by something "
                            "else); delete it and the supernet is trained again") from None
        from nas_lab.oneshot.training import non_finite

        bad = non_finite(net)
        if bad is not None:
            raise UserError(f"the cached supernet {path} has weights that are not finite ({bad}), so every arch would "
                            "score alike; delete it and the supernet is trained again") from None
        return facts

    def _read(self) -> dict | None:
        """The cache file's content (key checked), None if there is none."""
        import torch

        path = self.path
        if not path.is_file():
            return None
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if saved["key"] != self.key():
                raise ValueError("saved under another key")
        except OSError as err:
            raise UserError(f"cannot read the cached supernet {path}: {reason(err)}") from None
        except Exception:  # noqa: BLE001 - a damaged file can fail in many ways
            raise UserError(f"{path} is not the cached supernet its name says (damaged, or written by something "
                            "else); delete it and the supernet is trained again") from None
        return saved

    def _save(self, net, facts: dict) -> None:
        """Write the weights atomically (``core.files``): a full disk leaves the previous file; under torchrun,
        rank 0 alone writes."""
        import torch

        from nas_lab.oneshot import distributed

        if not distributed.main():
            return
        path = self.path
        state = {name: value.cpu() for name, value in net.state_dict().items()}
        try:
            with replacing(path) as tmp:
                torch.save({"key": self.key(), "facts": facts, "state_dict": state}, tmp)
        except OSError as err:
            raise UserError(f"cannot write the trained supernet to {path.parent}: {reason(err)}; "
                            "choose another folder with objective.cache=DIR") from None

    def evaluate(self, archs: np.ndarray, rng: np.random.Generator) -> Evaluation:
        metrics, seconds = self._setup()[0].metrics(archs, [self.metric])
        return Evaluation(values=metrics[self.metric][:, None], directions=self.directions, cost=seconds,
                          feasible=np.ones(len(archs), dtype=bool), metrics=metrics)

    def measure(self, metric: str, archs: np.ndarray) -> np.ndarray:
        """A supernet metric (``id``, ``ood.c1``..., or ``supernet.<metric>``); ``table.<m>`` or any other
        metric from the reference table."""
        own = metric.removeprefix("supernet.")
        if own in METRICS:
            return self._setup()[0].metrics(archs, [own])[0][own]
        if self.reference is None:
            raise UserError(f"objective {self.name!r} has no benchmark table for space {self.space.name!r}, so it can "
                            f"measure only {', '.join(METRICS)}, not {metric!r}; give one with table=PATH")
        return self.reference.measure(metric.removeprefix(TABLE), archs)

    def can_measure(self, metric: str) -> bool:
        """Supernet metrics without training the supernet to find out; others if the reference table has them."""
        if metric.removeprefix("supernet.") in METRICS:
            return True
        return self.reference is not None and self.reference.can_measure(metric.removeprefix(TABLE))

    def report(self, archs: np.ndarray) -> dict[str, np.ndarray]:
        """Every supernet metric and, when there is a table, the table's metrics as ``table.<metric>``."""
        table = self.reference.report(archs) if self.reference is not None else {}
        own = self._setup()[0].metrics(archs, list(METRICS))[0]
        return {**{m: own[m] for m in METRICS}, **{TABLE + m: v for m, v in table.items()}}

    def table_values(self, metric: str) -> np.ndarray | None:
        """The reference table's values of ``table.<metric>`` (or another metric it holds that is not a supernet
        metric, which is measured with inherited weights)."""
        if self.reference is None or metric.removeprefix("supernet.") in METRICS:
            return None
        return self.reference.table_values(metric.removeprefix(TABLE))

    def label(self, metric: str) -> str:
        if metric.startswith(TABLE) and self.reference is not None:
            return "table " + self.reference.label(metric.removeprefix(TABLE))
        return LABELS.get(metric.removeprefix("supernet."), metric)

    def info(self) -> dict:
        out = {**super().info(), "metric": self.metric, "task": self.task.describe(),
               **self.settings.training(), "recalibration": self.settings.recalibration, "seed": self.seed,
               "cache": str(self.path)}
        if self._ready is not None:
            out.update(self._ready[1])
        if self.reference is not None:  # the tabular objective's keys: the run summary prints them
            ref = self.reference.info()
            out.update({k: ref[k] for k in ("table", "table_description", "simulated")})
        return out

    def describe(self) -> str:
        s = self.settings
        return (f"maximise {self.metric} with weights inherited from a supernet trained by uniform single-path "
                f"sampling ({self.task.dataset}, {s.epochs} epochs, batch {s.batch_size}, {s.optimizer} at "
                f"{s.learning_rate:g}, seed {self.seed}, on {self.device}), batch-norm statistics (where the models "
                f"have any) re-estimated on {s.recalibration} train batches per arch")
