"""Searchers decide what to evaluate next, through ask/tell.

A searcher never loops over the budget, never writes files and never touches
global random state: the runner calls ``reset`` with the space, a view of the
objective (``core.charged.Charged``: what a searcher may know without being
charged) and a dedicated ``np.random.Generator``, then alternates ``ask`` and ``tell``.
Its constructor takes only its own parameters, each with a default, so the
registry can list them and coerce ``searcher.<param>=value`` overrides.
"""

from __future__ import annotations

import numpy as np

from nas_lab.core.constraint import Constraint
from nas_lab.core.joint import SpaceMetrics
from nas_lab.core.objective import Evaluation, Objective
from nas_lab.core.settings import Declared, current
from nas_lab.core.space import Space


class Searcher(Declared):
    """Base class of every searcher."""

    owner = "searcher"
    name: str = ""
    #: how reports print the searcher (papers write "REA", "Random search"); defaults to ``name``
    title: str = ""
    #: space capabilities required (e.g. ``("mutate",)``, ``("encode",)``, ``("supernet",)``)
    needs: tuple[str, ...] = ()
    #: True if the searcher handles objectives with several targets
    multi_objective: bool = False
    #: False for searchers that train networks (a run takes minutes): studies then run each such run on its own
    cheap: bool = True

    def reset(self, space: Space, objective: Objective, rng: np.random.Generator) -> None:
        """Start a fresh run; subclasses extend this to clear their state."""
        self.space = space
        self.objective = objective
        self.rng = rng

    def ask(self, n: int) -> np.ndarray:
        """Up to ``n`` archs ``(m, d)`` to evaluate next (``n`` is the budget left); an empty
        batch means the searcher is done (one-shot searchers propose their derived arch, then stop)."""
        raise NotImplementedError

    def tell(self, archs: np.ndarray, evaluation: Evaluation) -> None:
        """Results for archs the runner evaluated (or answered from its cache)."""
        raise NotImplementedError

    def report(self) -> dict:
        """Facts of the searcher's own worth recording with the run (e.g. a supernet's accuracy)."""
        return {}

    def pick(self) -> int | None:
        """Index of the evaluated arch the searcher hands in as its result, for searchers whose answer is not the
        best value of the objective's first target (a decoupled search ends on its last phase's best); None (the
        default) leaves the choice to the runner."""
        return None

    def params(self) -> dict:
        """The constructor parameters of this instance, for run records."""
        return current(self)


class OneShotSearcher(Searcher):
    """A searcher that derives its arch in one go (SPOS, DARTS): proposes it, then is done.

    Subclasses implement ``_search() -> (d,) arch`` and may fill ``self._report``.
    """

    cheap = False

    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        self._derived: np.ndarray | None = None
        self._report: dict = {}

    def ask(self, n: int) -> np.ndarray:
        if self._derived is not None:
            return np.empty((0, self.space.dim), dtype=np.int64)
        self._derived = self._search()
        return self._derived[None]

    def tell(self, archs: np.ndarray, evaluation: Evaluation) -> None:
        """The run's evaluation of the derived arch changes nothing: the search is over."""

    def report(self) -> dict:
        return self._report

    def _search(self) -> np.ndarray:
        raise NotImplementedError


def sample_distinct(space: Space, rng: np.random.Generator, n: int, exclude: set[int]) -> np.ndarray:
    """Up to ``n`` valid archs, distinct from each other and from the indices in ``exclude``.

    Draws in vectorised rounds; when the request is a large share of what is left
    of a small space, draws from the enumerated remainder instead, so exhausting a
    space stays fast. ``exclude`` is updated with the indices returned.
    """
    left = space.cardinality - len(exclude)
    if space.enumerable and 4 * n >= left:
        every = space.all_archs()
        archs = every[~np.isin(space.index(every), np.fromiter(exclude, np.int64, len(exclude)))]
        archs = archs[space.is_valid(archs)]
        out = archs[rng.permutation(len(archs))[:n]]
    else:
        out = np.empty((0, space.dim), dtype=np.int64)
        while len(out) < n:
            cand = space.sample(rng, 2 * (n - len(out)) + 4)
            idx = space.index(cand)
            _, first = np.unique(idx, return_index=True)
            first.sort()
            fresh = [i for i in first if int(idx[i]) not in exclude][: n - len(out)]
            exclude.update(int(idx[i]) for i in fresh)
            out = np.concatenate([out, cand[fresh]])
        return out
    exclude.update(space.index(out).tolist())
    return out


def cheap_bounds(space: Space, objective: Objective) -> list[tuple[Constraint, Objective]]:
    """The bounds of ``objective.constraints`` a searcher may check for free before proposing an arch, each with the
    objective that measures it: those on a metric that is not one of the objective's targets and that costs nothing
    (``Objective.free``): the space's closed-form sizes (``SpaceMetrics``, preferred where the space has the metric),
    a latency look-up table, a benchmark table's measured latencies. Any other bound (on a target, on an accuracy, on
    a proxy) is what the searcher learns only from evaluations, which the runner charges: it is left to
    ``Evaluation.feasible``."""
    closed = SpaceMetrics(space)
    out = []
    for c in objective.constraints:
        measurer = closed if closed.can_measure(c.metric) else objective.measurer(c.metric)
        if c.metric not in objective.targets and measurer.free(c.metric):
            out.append((c, measurer))
    return out


def within(bounds: list[tuple[Constraint, Objective]], archs: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: which archs meet every bound of ``cheap_bounds``."""
    ok = np.ones(len(archs), dtype=bool)
    for c, measurer in bounds:
        ok &= c.holds(measurer.measure(c.metric, archs))
    return ok
