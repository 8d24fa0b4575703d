"""BANANAS: Bayesian optimisation with a neural-ensemble predictor (White, Neiswanger & Savani, AAAI 2021).

After ``initial`` random archs, every round trains an ensemble of small MLPs
on what has been evaluated (on the space's one-hot encoding, targets
standardised), builds a pool of ``pool`` unseen candidates by mutating the
``parents`` best archs in 1..``mutations`` decisions, and evaluates the
``top_k`` candidates with the highest *independent Thompson sampling* value: per
candidate, one draw from a Gaussian with the ensemble's mean and standard
deviation. HyViTas-Bench runs it with 10 initial archs, a pool of 512 and
k = 10 per round over 100 evaluations.

The ensemble is trained from scratch (``steps`` full-batch Adam steps) only in
the first round. Later rounds start from the previous weights and Adam moments
and take ``warm_steps`` steps on the archs told since plus a ``replay`` sample
of earlier ones, so a round costs the same at any budget and a run grows
linearly with it (refitting from scratch on everything grows with its square).
Each round also re-initialises ``renew`` member(s), round robin: members of
different ages keep the ensemble's spread fresh. Without renewal the same
members carry their errors from round to round and, on NB201 CIFAR-10 at 100
archs over 300 seeds, the mean best fell from 94.311 to 94.288; with one member
renewed per round and 30 warm steps it is 94.321 at under half the cost
(``benchmarks/bench_vs_optuna.py``). ``warm_steps=0`` refits from scratch
every round, as before.

Infeasible or failed archs (fitness -inf) enter the training set with the worst
finite fitness seen so far, so the predictor learns to steer away from them.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np

from nas_lab.core.errors import UserError
from nas_lab.core.objective import Evaluation
from nas_lab.core.parallel import limit_threads
from nas_lab.core.searcher import Searcher, sample_distinct
from nas_lab.core.settings import Setting
from nas_lab.searchers.predictors import MLPEnsemble

#: a predictor ensemble larger than this (weights in all) is refused: it is a typo, not a search setting
MAX_PREDICTOR_WEIGHTS = 10_000_000


class Bananas(Searcher):
    """BANANAS: MLP-ensemble predictor, mutation pool, independent Thompson sampling."""

    name = "bananas"
    title = "BANANAS"
    needs = ("sample", "mutate", "encode")

    def __init__(
        self,
        initial: Annotated[int, Setting(ge=1, le="space.cardinality", help="random archs before the first fit")] = 10,
        pool: Annotated[int, Setting(ge=1, le=10**12,
                                     help="mutated candidates the ensemble scores per round (at most the "
                                          "space)")] = 512,
        top_k: Annotated[int, Setting(ge=1, le="pool", help="best-scored candidates proposed per round")] = 10,
        parents: Annotated[int, Setting(ge=1, le=10_000, help="best archs whose mutations fill the pool")] = 10,
        mutations: Annotated[int, Setting(ge=1, le="space.dim", help="decisions changed per candidate")] = 2,
        ensemble: Annotated[int, Setting(ge=2, le=100,
                                         help="networks in the predictor (their spread is the uncertainty)")] = 5,
        hidden: Annotated[int, Setting(ge=1, le=4096, help="units per hidden layer")] = 32,
        layers: Annotated[int, Setting(ge=1, le=32, help="hidden layers per network")] = 2,
        steps: Annotated[int, Setting(ge=1, le=100_000, help="full-batch Adam steps of a fit from scratch")] = 100,
        learning_rate: Annotated[float, Setting(gt=0, le=10, help="Adam's step size")] = 0.01,
        weight_decay: Annotated[float, Setting(ge=0, le=10, help="L2 weight decay")] = 1e-4,
        warm_steps: Annotated[int, Setting(ge=0, le=100_000,
                                           help="steps of a warm refit (0 refits from scratch every round)")] = 30,
        replay: Annotated[int, Setting(ge=0, le=1_000_000,
                                       help="earlier archs replayed beside the new ones in a warm refit")] = 100,
        renew: Annotated[int, Setting(ge=0, le="ensemble", help="members re-initialised per round (round robin)")] = 1,
    ):
        self.initial = initial
        self.pool = pool
        self.top_k = top_k
        self.parents = parents
        self.mutations = mutations
        self.ensemble = ensemble
        self.hidden = hidden
        self.layers = layers
        self.steps = steps
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.warm_steps = warm_steps
        self.replay = replay
        self.renew = renew

    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        features = space.encode(space.arch([0])).shape[1]
        weights = self.ensemble * (features * self.hidden + (self.layers - 1) * self.hidden ** 2 + 2 * self.hidden + 1)
        if weights > MAX_PREDICTOR_WEIGHTS:
            raise UserError(f"searcher.ensemble={self.ensemble:,}, searcher.layers={self.layers:,} and "
                            f"searcher.hidden={self.hidden:,} make a predictor of {weights:,} weights; at most "
                            f"{MAX_PREDICTOR_WEIGHTS:,} are allowed "
                            "(the default 5 networks of 2 x 32 units make about 10,000)")
        self._proposed: set[int] = set()
        self._archs: list[np.ndarray] = []
        self._fitness: list[np.ndarray] = []
        self._model = MLPEnsemble(self.ensemble, (self.hidden,) * self.layers, self.steps, self.learning_rate,
                                  self.weight_decay)
        self._renewed = 0  # members re-initialised so far (round robin)
        self._trained = 0  # archs the ensemble has been trained on so far (the first rows of the told ones)

    def ask(self, n: int) -> np.ndarray:
        with limit_threads(1):  # small matrices: more threads only slow a round down
            return self._ask(n)

    def _ask(self, n: int) -> np.ndarray:
        told = sum(len(a) for a in self._archs)
        if told < self.initial:
            return sample_distinct(self.space, self.rng, min(n, self.initial - told), self._proposed)
        archs = np.concatenate(self._archs)
        fitness = np.concatenate(self._fitness)
        finite = np.isfinite(fitness)
        if not finite.any():  # nothing to learn from yet
            return sample_distinct(self.space, self.rng, min(n, self.top_k), self._proposed)
        fitness = np.where(finite, fitness, fitness[finite].min())
        candidates = self._candidates(archs[np.argsort(-fitness, kind="stable")[: self.parents]])
        self._train(archs, fitness)
        pred = self._model.predict(self.space.encode(candidates))
        acquisition = pred.mean(axis=0) + pred.std(axis=0) * self.rng.standard_normal(len(candidates))
        best = candidates[np.argsort(-acquisition, kind="stable")[: min(n, self.top_k)]]
        self._proposed.update(self.space.index(best).tolist())
        return best

    def _train(self, archs: np.ndarray, fitness: np.ndarray) -> None:
        """First round (or ``warm_steps=0``): ``steps`` steps from scratch on everything. Later rounds: ``warm_steps``
        steps from the previous weights on the archs told since, plus ``replay`` earlier ones drawn at random."""
        if not self._model.fitted or self.warm_steps == 0:
            self._model.fit(self.space.encode(archs), fitness, self.rng)
        else:
            old = self._trained
            for _ in range(self.renew):
                self._model.renew(self._renewed % self.ensemble, self.rng)
                self._renewed += 1
            rows = np.concatenate([self.rng.choice(old, min(self.replay, old), replace=False),
                                   np.arange(old, len(archs))])
            self._model.partial_fit(self.space.encode(archs[rows]), fitness[rows], self.warm_steps,
                                    float(fitness.mean()), float(fitness.std()))
        self._trained = len(archs)

    def _candidates(self, parents: np.ndarray) -> np.ndarray:
        """Up to ``pool`` distinct unseen archs: mutants of ``parents``, topped up at random if too few."""
        size = min(self.pool, self.space.cardinality)  # no pool holds more than the space: memory stays bounded
        copies = -(-2 * size // (len(parents) * self.mutations))  # oversample 2x: duplicates and seen archs drop out
        base = np.repeat(parents, copies, axis=0)
        mutants = np.concatenate([self.space.mutate(base, self.rng, k) for k in range(1, self.mutations + 1)])
        mutants = mutants[self.rng.permutation(len(mutants))]
        idx = self.space.index(mutants)
        _, first = np.unique(idx, return_index=True)
        first.sort()
        seen = np.array(list(self._proposed), dtype=idx.dtype)  # object dtype (exact ints) on spaces past int64
        pool = mutants[first[~np.isin(idx[first], seen)]][:size]
        if len(pool) < size:
            exclude = self._proposed | set(self.space.index(pool).tolist())
            pool = np.concatenate([pool, sample_distinct(self.space, self.rng, size - len(pool), exclude)])
        return pool

    def tell(self, archs: np.ndarray, evaluation: Evaluation) -> None:
        self._archs.append(np.array(archs, dtype=np.int64))
        self._fitness.append(evaluation.fitness[:, 0].copy())
