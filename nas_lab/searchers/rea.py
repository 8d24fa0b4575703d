"""Regularized evolution with aging (Real et al., AAAI 2019).

A fixed-size population is filled with random archs; then, per child, a
tournament of ``tournament`` members drawn at random from the population picks
the fittest as parent, the child is the parent with ``mutations`` decision(s)
changed, and the child replaces the *oldest* member (aging), not the worst.
HyViTas-Bench runs it with population 50, tournament 10 and 100 evaluations.

Children come in batches: one ask draws a batch of tournaments on the current
population at once (vectorised), and the told children replace the oldest
members in order. The batch is as large as it takes to expect ``NEW_PER_ASK``
(one) *new* arch in it, by the recent share of new archs among the children
(counts decayed by ``DECAY`` per ask), and at most ``batch``. While most
children are new (small budgets) that is one child per ask, as in sequential
REA; once the population has converged most children repeat archs evaluated
before, which the runner answers free, and a batch holds dozens of them, so
large budgets do not pay the runner's per-ask overhead per child (NB201, 50/10,
budget 1,000: ~20,000 children in ~900 asks, against ~18,000 asks of one
child). Repeats still join the population and age it, as in sequential REA;
``batch=1`` is sequential REA exactly.

Batched and sequential REA reach the same mean best; batches sized to expect
two new archs per ask instead of one halved the asks again but lost accuracy
(both measured over 6,000 seeds: the docs' changelog has the figures).
"""

from __future__ import annotations

from typing import Annotated

import numpy as np

from nas_lab.core.objective import CUT, EVALUATED, Evaluation
from nas_lab.core.searcher import Searcher, sample_distinct
from nas_lab.core.settings import Setting

#: weight kept by the counts of children and of new archs at each ask (their ratio sets the batch size)
DECAY = 0.9
#: new archs a batch is sized to expect
NEW_PER_ASK = 1


class RegularizedEvolution(Searcher):
    """Regularized evolution (REA): tournament selection, mutation, oldest member removed."""

    name = "rea"
    title = "REA"
    needs = ("sample", "mutate")

    def __init__(
        self,
        population: Annotated[int, Setting(ge=1, le="space.cardinality", help="members kept alive")] = 50,
        tournament: Annotated[int, Setting(ge=1, le="population", help="members drawn to pick each parent")] = 10,
        mutations: Annotated[int, Setting(ge=1, le="space.dim", help="decisions changed per child")] = 1,
        batch: Annotated[int, Setting(ge=1, le=100_000, help="most children asked at once (1: sequential REA)")] = 64,
    ):
        self.population = population
        self.tournament = tournament
        self.mutations = mutations
        self.batch = batch

    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        # grown as members arrive: memory follows the archs told, not the population asked for
        self._archs = np.empty((min(self.population, 1024), space.dim), dtype=np.int64)
        self._fitness = np.empty(len(self._archs))
        self._size = 0  # members so far, until the population is full
        self._oldest = 0  # ring-buffer slot of the oldest member once full
        self._proposed: set[int] = set()
        self._children = self._new = 0.0  # decaying counts of children told and of those newly evaluated

    def ask(self, n: int) -> np.ndarray:
        if self._size < self.population:
            return sample_distinct(self.space, self.rng, min(n, self.population - self._size), self._proposed)
        # a batch of tournaments on the current population, each of `tournament` members drawn with replacement
        size = self._batch_size()
        members = self.rng.integers(0, self.population, (size, self.tournament))
        winners = members[np.arange(size), np.argmax(self._fitness[members], axis=1)]
        return self.space.mutate(self._archs[winners], self.rng, self.mutations)

    def _batch_size(self) -> int:
        """Children to expect ``NEW_PER_ASK`` new archs among them, by the recent share of new ones (1 for the
        first ask of children), at most ``batch``."""
        if self._children == 0:
            return 1
        if self._new * self.batch <= NEW_PER_ASK * self._children:
            return self.batch
        return int(np.ceil(NEW_PER_ASK * self._children / self._new))

    def tell(self, archs: np.ndarray, evaluation: Evaluation) -> None:
        if self._size >= self.population:  # children: how many were new archs rather than repeats answered free
            self._children = DECAY * self._children + len(archs)
            self._new = DECAY * self._new + float(np.sum(evaluation.source == EVALUATED))
        keep = evaluation.source != CUT  # archs cut by the budget were never evaluated: they join no population
        archs, fitness = np.asarray(archs)[keep], evaluation.fitness[keep, 0]
        if self._size < self.population:  # filling: members take the next free slots, in order
            take = min(len(archs), self.population - self._size)
            if self._size + take > len(self._archs):
                grown = min(max(2 * len(self._archs), self._size + take), self.population)
                self._archs = np.resize(self._archs, (grown, self.space.dim))
                self._fitness = np.resize(self._fitness, grown)
            self._archs[self._size : self._size + take] = archs[:take]
            self._fitness[self._size : self._size + take] = fitness[:take]
            self._size += take
            archs, fitness = archs[take:], fitness[take:]
        # full: each arch in order replaces the oldest member (aging); of more than `population`, the last ones stay
        archs, fitness = archs[-self.population :], fitness[-self.population :]
        slots = (self._oldest + np.arange(len(archs))) % self.population
        self._archs[slots] = archs
        self._fitness[slots] = fitness
        self._oldest = (self._oldest + len(archs)) % self.population
