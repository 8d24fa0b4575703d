"""What a searcher sees of the run's objective: free knowledge, and what the runner has charged.

The runner hands ``searcher.reset`` a ``Charged`` view, never the objective: a
searcher holding the objective could call ``evaluate`` (or ``measure`` a target
from a table) and learn the answer without spending budget. Through the view a
searcher reads the objective's description (targets, directions, constraints,
labels), measures a metric of any arch when that metric is free and not a target
(closed-form sizes, a latency table: what ``core.searcher.cheap_bounds`` filters
on), and measures any other metric only of archs the runner has evaluated, and
so charged (the decoupled search reads its second proxy of evaluated archs).
Anything else raises ``Uncharged``: a searcher proposes archs through ``ask``
and learns their values from ``tell``. Python cannot sandbox a plug-in that digs
into private attributes; the view closes every public route.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nas_lab.core.objective import Objective


class Uncharged(RuntimeError):
    """A searcher asked the objective for what only a charged evaluation may tell (a plug-in's bug, not bad input)."""


class Charged:
    """``objective`` as a searcher may use it; ``evaluated(index)`` says whether the runner has evaluated an arch."""

    def __init__(self, objective: Objective, evaluated: Callable[[int], bool], targets: tuple[str, ...] | None = None):
        self._objective = objective
        self._evaluated = evaluated
        self._targets = tuple(objective.targets) if targets is None else targets  # the run's, through every measurer
        for attr in ("space", "name", "family", "targets", "directions", "cost_unit", "reference", "cheap",
                     "constraints"):
            setattr(self, attr, getattr(objective, attr))

    def free(self, metric: str) -> bool:
        """Whether any arch's ``metric`` may be read uncharged: it costs nothing and is not one of the run's targets."""
        return metric not in self._targets and self._objective.measurer(metric).free(metric)

    def measurer(self, metric: str) -> Charged:
        return Charged(self._objective.measurer(metric), self._evaluated, self._targets)

    def can_measure(self, metric: str) -> bool:
        return self._objective.can_measure(metric)

    def measure(self, metric: str, archs: np.ndarray) -> np.ndarray:
        """``metric`` of ``archs``: free, or of archs the runner has evaluated; ``Uncharged`` otherwise."""
        archs = np.asarray(archs, dtype=np.int64).reshape(-1, self.space.dim)
        if not self.free(metric) and not all(map(self._evaluated, self.space.index(archs).tolist())):
            self._refuse(f"measure {metric!r} of architectures the run has not evaluated")
        return self._objective.measure(metric, archs)

    def extent(self, metric: str):
        if not self.free(metric):
            self._refuse(f"read the extent of {metric!r}")
        return self._objective.extent(metric)

    def evaluate(self, archs: np.ndarray, rng: np.random.Generator):
        self._refuse("evaluate architectures")

    def exhaustive(self):
        self._refuse("tabulate the whole space")

    def table_values(self, metric: str):
        self._refuse(f"read every architecture's {metric!r}")

    def report(self, archs: np.ndarray):
        self._refuse("read the report of architectures")

    def label(self, metric: str) -> str:
        return self._objective.label(metric)

    def unit(self, metric: str) -> str:
        return self._objective.unit(metric)

    def describe(self) -> str:
        return self._objective.describe()

    def _refuse(self, what: str):
        raise Uncharged(f"a searcher may not {what} through objective {self.name!r}: searchers propose archs with "
                        "ask and learn their values from tell, which the runner charges to the budget")
