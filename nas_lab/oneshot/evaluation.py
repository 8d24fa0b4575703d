"""Scoring archs as paths of a trained supernet (inherited weights): what SPOS, DARTS and the supernet objective share.

- ``accuracy``: top-1 accuracy of a single path or a mixture on a split;
- ``PathEvaluator``: an arch's accuracy with inherited weights after
  re-estimating its normalisation statistics (``Supernet.recalibrate``; as SPOS
  does before scoring a candidate), on the same fixed train batches for every
  arch so that scores are comparable and an arch always gets the same score;
- ``InheritedAccuracies``: the supernet metrics of archs (``METRICS``: val
  accuracy and accuracies on OoD variants of the test split), each (arch,
  evaluation set) scored once; ``derived_arch_report``: a one-shot searcher's
  figures for the arch it derived.

Metrics (accuracies in %): ``id`` on the val split; on the test split's OoD
variants (``data/corruptions.py``), ``ood.c1`` / ``ood.c5`` the mean over the
nine ImageNet-C core corruptions at severity 1 / 5 and ``ood.sketch``; ``ood`` the
mean of those three (there is no stylized variant here) and ``id+ood`` the mean
of ``id`` and ``ood``.

Importing this module does not import torch (the supernet objective names its
metrics from here without training anything).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from nas_lab.core.space import Space
from nas_lab.data.corruptions import CORE_CORRUPTIONS, ood_variants

if TYPE_CHECKING:
    import torch

    from nas_lab.oneshot.contract import Supernet
    from nas_lab.oneshot.training import Settings, Source, TaskData

#: images per forward pass when only evaluating (no activations are kept)
EVAL_BATCH = 512
#: the evaluation sets each base metric is the mean accuracy over: the val split, or OoD variants of the test split
SETS = {"id": ("val",), **{m: tuple(f"c.{c}.{s}" for c in CORE_CORRUPTIONS) for m, s in (("ood.c1", 1), ("ood.c5", 5))},
        "ood.sketch": ("sketch",)}
#: metrics that are means of others (HyViTas-Bench's OoD mean and its ID+OoD search target, minus stylized)
DERIVED = {"ood": ("ood.c1", "ood.c5", "ood.sketch"), "id+ood": ("id", "ood")}
METRICS = ("id", "ood.c1", "ood.c5", "ood.sketch", "ood", "id+ood")
LABELS = {"id": "supernet val top-1", "ood.c1": "supernet C-1", "ood.c5": "supernet C-5",
          "ood.sketch": "supernet sketch", "ood": "supernet OoD mean", "id+ood": "supernet ID+OoD"}


def accuracy(net: Supernet, source: Source, arch=None, weights: Sequence[torch.Tensor] | None = None,
             workers: int = 0) -> float:
    """Top-1 accuracy (%) of the single path ``arch`` or the mixture ``weights`` on a split (an image set or a pair
    of tensors), in eval mode, in batches moved to the supernet's device (float32: scores do not depend on the
    training's precision). Under torchrun every rank scores the whole split, so every rank gets the same score and
    goes on with the same search."""
    import torch

    from nas_lab.oneshot.training import batches_of, size

    device = next(net.parameters()).device
    with torch.no_grad():
        was_training = net.training
        net.eval()
        correct = torch.zeros((), dtype=torch.int64, device=device)
        for x, y in batches_of(source, EVAL_BATCH, device, workers=workers):
            logits = net(x, arch) if weights is None else net(x, weights=weights)
            correct += (logits.argmax(1) == y).sum()
        net.train(was_training)
    return 100.0 * int(correct) / size(source)


class PathEvaluator:
    """Accuracies of single paths with inherited weights, normalisation re-estimated for each arch on fixed batches.

    The recalibration batches are ``settings.recalibration`` train batches
    drawn once (kept on the device), so every arch is scored on the same data and the same arch
    always gets the same score; the supernet is re-estimated only when the arch
    changes.
    """

    def __init__(self, net: Supernet, space: Space, train: Source, settings: Settings, rng: np.random.Generator):
        from nas_lab.oneshot.training import batches_of, torch_generator

        self.net, self.space, self.workers = net, space, settings.workers
        generator = torch_generator(rng)
        device = next(net.parameters()).device
        self.batches = [x for x, _ in batches_of(train, settings.batch_size, device, generator, settings.recalibration,
                                                  workers=settings.workers)]
        self._current: int | None = None  # index of the arch the statistics are estimated for

    def accuracy(self, arch, source: Source) -> float:
        """Top-1 accuracy (%) of ``arch`` on ``source`` after its recalibration."""
        index = int(self.space.index(arch))
        if index != self._current:
            self.net.recalibrate(arch, self.batches)
            self._current = index
        return accuracy(self.net, source, arch, workers=self.workers)


class InheritedAccuracies:
    """The supernet metrics of archs as slices of one trained supernet, each (arch, evaluation set) scored once.

    ``seed`` draws the OoD variants of the test split; each set is made on first use.
    """

    def __init__(self, evaluator: PathEvaluator, data: TaskData, seed: int):
        self.evaluator, self.data, self.seed = evaluator, data, seed
        self._sets: dict = {}  # evaluation set name -> image set
        self._scores: dict[tuple[int, str], tuple[float, float]] = {}  # (arch index, set) -> (accuracy, seconds)

    def _split(self, name: str):
        """An evaluation set: ``val``, or an OoD variant of the test split (corrupted per image as it is read)."""
        if name not in self._sets:
            self._sets[name] = self.data.val if name == "val" else ood_variants(self.data.test, self.seed)[name]
        return self._sets[name]

    def _score(self, arch, name: str) -> tuple[float, float]:
        """``(accuracy %, seconds)`` of ``arch`` on set ``name``; the seconds include a recalibration if one ran."""
        key = (int(self.evaluator.space.index(arch)), name)
        if key not in self._scores:
            split = self._split(name)
            start = time.perf_counter()
            accuracy = self.evaluator.accuracy(arch, split)
            self._scores[key] = (accuracy, time.perf_counter() - start)
        return self._scores[key]

    def metrics(self, archs: np.ndarray, metrics: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """``metrics``, and every metric they are computed from, for each arch; and the seconds that took per arch
        (the same when answered from memory)."""
        out = {b: np.empty(len(archs)) for m in metrics for b in _base(m)}
        seconds = np.zeros(len(archs))
        for i, arch in enumerate(self.evaluator.space.check(archs)):
            for b, values in out.items():
                scores = [self._score(arch, name) for name in SETS[b]]
                values[i] = np.mean([accuracy for accuracy, _ in scores])
                seconds[i] += sum(took for _, took in scores)

        def derive(metric: str) -> np.ndarray:
            if metric not in out:
                out[metric] = np.mean([derive(part) for part in DERIVED[metric]], axis=0)
            return out[metric]

        for m in metrics:
            derive(m)
        return out, seconds


def derived_arch_report(evaluator: PathEvaluator, data: TaskData, arch, seed: int) -> dict[str, float]:
    """A one-shot searcher's figures for the arch it derived: every supernet metric but ``id`` (its own val
    score), keyed ``"<label> %"``, with inherited weights from its supernet and OoD variants drawn from ``seed``."""
    scores = InheritedAccuracies(evaluator, data, seed).metrics(np.asarray(arch)[None], list(METRICS))[0]
    return {f"{LABELS[m]} %": float(scores[m][0]) for m in METRICS if m != "id"}


def _base(metric: str) -> list[str]:
    """The base metrics (each a mean accuracy over evaluation sets) ``metric`` is computed from."""
    return [b for part in DERIVED[metric] for b in _base(part)] if metric in DERIVED else [metric]
