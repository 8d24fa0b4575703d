"""Single Path One-Shot NAS (SPOS; Guo et al., ECCV 2020), as HyViTas-Bench runs it (its section IV-C).

On its first ask, SPOS

1. trains the space's supernet on the task's train split by uniform single-path
   sampling: one arch drawn uniformly per batch, only its slice of the weights
   updated (``oneshot.training.train_single_path``);
2. runs an evolutionary search over archs, each scored by its val accuracy with
   the weights it inherits from the supernet, after re-estimating its
   normalisation statistics on a few train batches (``oneshot.evaluation``):
   a first generation of ``population`` random archs, then ``generations``
   more, each of ``population`` new archs, half one-decision mutants and half uniform
   crossovers of parents drawn from the ``parents`` best archs scored so far; with
   constraints the run can check cheaply (closed-form ``params``, a latency table:
   ``core.searcher.cheap_bounds``), only archs within them are drawn and bred, the
   paper's constrained evolution, so the derived arch meets them
   (SPOS: population 50, 20 iterations, top 10, 25 mutants + 25 crossovers;
   the defaults here, population 20, 8 generations, top 5, are sized for a CPU);
3. proposes the best-scoring arch. The run's objective evaluates it (on the
   default hyvitas-sim table that is a table lookup: the paper queries its
   benchmark for the arch SPOS derives) and the next ask is empty: SPOS is done.

``report()`` keeps what only the searcher knows: the derived arch's supernet
accuracies (val, and the OoD metrics of ``objective=supernet.*``), the
training throughput and the time spent (search seconds exclude the OoD report). Randomness (initial
weights, shuffling, sampled paths, evolution) all comes from the run's generator.
"""

from __future__ import annotations

import time
from typing import Annotated

import numpy as np

from nas_lab.core.cache import cache_root
from nas_lab.core.errors import UserError
from nas_lab.core.searcher import OneShotSearcher, cheap_bounds, sample_distinct, within
from nas_lab.core.settings import Setting
from nas_lab.core.task import Task
from nas_lab.oneshot import settings as declarations

#: rounds of drawing children before a generation settles for fewer new archs than ``population``
TRIES = 10


class SinglePathOneShot(OneShotSearcher):
    """SPOS: train a supernet by uniform single-path sampling, then evolve archs scored with inherited weights."""

    name = "spos"
    title = "SPOS"
    needs = ("supernet", "sample", "mutate", "crossover")

    def __init__(
        self,
        task: Task | None = None,
        epochs: Annotated[int | None, declarations.EPOCHS] = None,
        batch_size: Annotated[int, declarations.BATCH_SIZE] = 64,
        learning_rate: Annotated[float | None, declarations.LEARNING_RATE] = None,
        max_batches: Annotated[int | None, declarations.MAX_BATCHES] = None,
        recalibration: Annotated[int | None, declarations.RECALIBRATION] = None,
        population: Annotated[int, Setting(ge=2, le="space.cardinality",
                                           help="archs per generation of the evolution over paths")] = 20,
        generations: Annotated[int, Setting(ge=0, le=100_000,
                                            help="generations of the evolution (0: the random initial "
                                                 "population only)")] = 8,
        parents: Annotated[int, Setting(ge=1, le="population", help="best paths kept as parents per generation")] = 5,
        optimizer: Annotated[str, declarations.OPTIMIZER] = "auto",
        precision: Annotated[str, declarations.PRECISION] = "auto",
        compile: Annotated[bool, declarations.COMPILE] = False,
        augment: Annotated[str, declarations.AUGMENT] = "auto",
        checkpoint_every: Annotated[int | None, declarations.CHECKPOINT_EVERY] = None,
        workers: Annotated[int | None, declarations.WORKERS] = None,
    ):
        from nas_lab.oneshot.training import Settings, torch_device

        self.task = task or Task()
        self._recipe = (epochs, batch_size, learning_rate, max_batches, recalibration, optimizer)
        self._speed = {"device": self.task.device, "precision": precision, "compile": compile, "augment": augment,
                       "checkpoint_every": checkpoint_every, "workers": workers}
        # checked now; ``auto`` resolved in reset
        self.settings = Settings.resolve(None, *self._recipe, "searcher", **self._speed)
        torch_device(self.task)  # refuse a missing GPU before anything runs
        self.epochs, self.batch_size, self.learning_rate = epochs, batch_size, learning_rate
        self.max_batches, self.recalibration, self.optimizer = max_batches, recalibration, optimizer
        self.population, self.generations, self.parents = population, generations, parents
        self.precision, self.compile, self.augment = precision, compile, augment
        self.checkpoint_every, self.workers = checkpoint_every, workers

    def reset(self, space, objective, rng):
        from nas_lab.oneshot.training import Settings

        super().reset(space, objective, rng)
        self._bounds = cheap_bounds(space, objective)
        self.settings = Settings.resolve(space, *self._recipe, "searcher", **self._speed)

    def _search(self) -> np.ndarray:
        from nas_lab.oneshot import training as st
        from nas_lab.oneshot.evaluation import PathEvaluator, derived_arch_report

        start = time.perf_counter()
        task = self.task.for_space(self.space)
        data = st.TaskData(task)
        checkpoint = self._checkpoint(task)  # keyed by the generator's state before anything is drawn
        net = st.new_supernet(self.space, data.num_classes, self.rng, data.device)
        show = self.task.progress
        augment, resumable = st.augmentation_of(self.settings, data.num_classes, data.image_size, data.device, self.rng)
        trained = st.train_single_path(net, self.space, data.train, self.settings, self.rng, "SPOS supernet training",
                                       show, augment=augment, checkpoint=checkpoint, resumable=resumable)
        checkpoint.remove()
        evaluator = PathEvaluator(net, self.space, data.train, self.settings, self.rng)
        searched = time.perf_counter()

        seen: set[int] = set()
        archs, scores = [], []
        with st.progress(self.population * (self.generations + 1), "SPOS evolution", show, unit="arch",
                         postfix=f"generation 0/{self.generations}") as bar:
            for generation in range(self.generations + 1):
                if generation == 0:
                    children = self._first(seen)
                else:
                    best = np.argsort(scores, kind="stable")[::-1][: self.parents]
                    children = self._children(np.array(archs)[best], seen)
                for arch in children:
                    archs.append(arch)
                    scores.append(evaluator.accuracy(arch, data.val))
                    bar.set_postfix_str(f"generation {generation}/{self.generations} best {max(scores):.2f}%",
                                        refresh=False)
                    bar.update()

        if not archs:
            raise UserError(f"SPOS drew no arch within the run's bounds ({', '.join(str(c) for c, _ in self._bounds)}) "
                            f"in {TRIES} rounds of {4 * self.population} archs; loosen the constraints")
        derived = archs[int(np.argmax(scores))]  # the first-scored arch among equals
        end = time.perf_counter()
        self._report = {
            "derived arch": int(self.space.index(derived)),
            "supernet val accuracy %": float(max(scores)),
            **derived_arch_report(evaluator, data, derived, int(self.rng.integers(2**31))),
            "archs scored": len(archs),
            "train images/s": trained.images_per_second,
            "train seconds": trained.seconds,
            "search seconds": end - searched,
            "seconds": end - start,
        }
        return derived

    def _checkpoint(self, task: Task):
        """Where SPOS' supernet training keeps its checkpoint: beside the cached supernets, keyed like them, the run's
        seed standing in as the state of its generator (the same command resumes; another seed never does)."""
        from nas_lab.oneshot.checkpoint import SUFFIX, Checkpoint, digest
        from nas_lab.oneshot.training import training_key

        seed = digest(self.rng.bit_generator.state)
        key = {"searcher": self.name, **training_key(self.space, task, self.settings, seed)}
        path = cache_root() / "supernets" / f"spos_{self.space.name}_{task.dataset}_{digest(key)}{SUFFIX}"
        return Checkpoint(path, key, self.settings.checkpoint_every)

    def _first(self, seen: set[int]) -> np.ndarray:
        """The first generation: ``population`` random archs, within the run's cheap bounds (closed-form
        ``params``, a latency table) where it has any: SPOS' constrained evolution."""
        if not self._bounds:
            return sample_distinct(self.space, self.rng, self.population, seen)
        out: list[np.ndarray] = []
        for _ in range(TRIES):
            drawn = sample_distinct(self.space, self.rng, 4 * self.population, set(seen))
            drawn = drawn[within(self._bounds, drawn)]
            for arch, index in zip(drawn, self.space.index(drawn).tolist()):
                if len(out) < self.population and index not in seen:
                    seen.add(index)
                    out.append(arch)
            if len(out) == self.population:
                break
        return np.array(out, dtype=np.int64).reshape(-1, self.space.dim)

    def _children(self, parents: np.ndarray, seen: set[int]) -> np.ndarray:
        """Up to ``population`` archs not scored yet: half mutants of, half crossovers between, random parents."""
        out: list[np.ndarray] = []
        for _ in range(TRIES):
            k = self.population - len(out)
            if k == 0:
                break
            pick = parents[self.rng.integers(0, len(parents), (k, 2))]
            mutants = (k + 1) // 2
            candidates = np.concatenate([self.space.mutate(pick[:mutants, 0], self.rng),
                                         self.space.crossover(pick[mutants:, 0], pick[mutants:, 1], self.rng)])
            candidates = candidates[within(self._bounds, candidates)]
            for arch, index in zip(candidates, self.space.index(candidates).tolist()):
                if index not in seen:
                    seen.add(index)
                    out.append(arch)
        return np.array(out, dtype=np.int64).reshape(-1, self.space.dim)
