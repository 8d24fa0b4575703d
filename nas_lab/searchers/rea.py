"""Regularized evolution with aging (Real et al., AAAI 2019).

A fixed-size population is filled with random archs; then, one child per step,
a tournament of ``tournament`` members drawn at random from the population picks
the fittest as parent, the child is the parent with ``mutations`` decision(s)
changed, and the child replaces the *oldest* member (aging), not the worst.
HyViTas-Bench runs it with population 50, tournament 10 and 100 evaluations.
"""

from __future__ import annotations

import numpy as np

from nas_lab.core.errors import UserError
from nas_lab.core.objective import Evaluation
from nas_lab.core.searcher import Searcher, sample_distinct


class RegularizedEvolution(Searcher):
    """Regularized evolution (REA): tournament selection, mutation, oldest member removed."""

    name = "rea"
    title = "REA"
    needs = ("sample", "mutate")

    def __init__(self, population: int = 50, tournament: int = 10, mutations: int = 1):
        if population < 1:
            raise UserError(f"searcher.population must be at least 1, got {population}")
        if not 1 <= tournament <= population:
            raise UserError(f"searcher.tournament must lie in 1..population ({population}), got {tournament}")
        if mutations < 1:
            raise UserError(f"searcher.mutations must be at least 1, got {mutations}")
        self.population = population
        self.tournament = tournament
        self.mutations = mutations

    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        if self.mutations > space.dim:
            raise UserError(f"searcher.mutations must lie in 1..{space.dim} for space {space.name!r}, got {self.mutations}")
        if self.population > space.cardinality:
            raise UserError(f"searcher.population must lie in 1..{space.cardinality:,} (the architectures of space "
                            f"{space.name!r}), got {self.population:,}")
        # grown as members arrive: memory follows the archs told, not the population asked for
        self._archs = np.empty((min(self.population, 1024), space.dim), dtype=np.int64)
        self._fitness = np.empty(len(self._archs))
        self._size = 0  # members so far, until the population is full
        self._oldest = 0  # ring-buffer slot of the oldest member once full
        self._proposed: set[int] = set()

    def ask(self, n: int) -> np.ndarray:
        if self._size < self.population:
            return sample_distinct(self.space, self.rng, min(n, self.population - self._size), self._proposed)
        members = self.rng.integers(0, self.population, self.tournament)
        parent = self._archs[members[np.argmax(self._fitness[members])]]
        return self.space.mutate(parent, self.rng, self.mutations)

    def tell(self, archs: np.ndarray, evaluation: Evaluation) -> None:
        fitness = evaluation.fitness[:, 0]
        for arch, fit in zip(archs, fitness):
            if self._size < self.population:
                slot = self._size
                self._size += 1
                if slot == len(self._archs):
                    grown = min(2 * slot, self.population)
                    self._archs = np.resize(self._archs, (grown, self.space.dim))
                    self._fitness = np.resize(self._fitness, grown)
            else:
                slot = self._oldest
                self._oldest = (self._oldest + 1) % self.population
            self._archs[slot] = arch
            self._fitness[slot] = fit
