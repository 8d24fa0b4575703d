"""An example third-party searcher: steepest-ascent hill climbing with random restarts.

It lives in its own package and reaches nas_lab only through the
``nas_lab.searchers`` entry point declared in ``pyproject.toml``; after
``pip install ./examples/nas_lab_hillclimb`` it runs as ``nas-lab run searcher=hillclimb``.
"""

from typing import Annotated

import numpy as np

from nas_lab.core.searcher import Searcher, sample_distinct
from nas_lab.core.settings import Setting


class HillClimb(Searcher):
    """Evaluate every neighbour of the current arch, move to the best if it improves, else restart."""

    name = "hillclimb"
    needs = ("sample", "neighbors")

    def __init__(self, restarts: Annotated[bool, Setting(help="restart from a random arch at a local optimum")] = True):
        self.restarts = restarts

    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        self.current, self.current_fitness = None, -np.inf
        self.proposed = set()

    def ask(self, n):
        if self.current is None:
            return sample_distinct(self.space, self.rng, 1, self.proposed)
        return self.space.neighbors(self.current)

    def tell(self, archs, evaluation):
        fitness = evaluation.fitness[:, 0]
        best = int(np.argmax(fitness))
        if fitness[best] > self.current_fitness:
            self.current, self.current_fitness = archs[best], fitness[best]
        elif self.restarts:  # local optimum: start again somewhere new
            self.current, self.current_fitness = None, -np.inf
