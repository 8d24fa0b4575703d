"""Random search: the baseline every NAS method must beat (Li & Talwalkar, 2019)."""

from __future__ import annotations

import numpy as np

from nas_lab.core.objective import Evaluation
from nas_lab.core.searcher import Searcher, sample_distinct


class RandomSearch(Searcher):
    """Uniform random search over distinct architectures (HyViTas-Bench: 100 unique archs)."""

    name = "random"
    title = "Random search"
    needs = ("sample",)
    multi_objective = True  # it learns nothing, so it serves any number of targets: a run reports the front it found

    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        self._proposed: set[int] = set()

    def ask(self, n: int) -> np.ndarray:
        return sample_distinct(self.space, self.rng, n, self._proposed)

    def tell(self, archs: np.ndarray, evaluation: Evaluation) -> None:
        """Random search learns nothing from results."""
