"""Several metrics in one objective (``objective=test.cifar10,latency.pixel3,params``).

``Joint`` optimises the first objective's target together with further metrics,
each measured by the objective that knows it: the first objective itself (a
table holds latency and size beside accuracy), another family's objective
(``supernet.id,zc.synflow``), or the space's closed-form sizes (``SpaceMetrics``:
``params``, ``flops`` and ``macs`` under every objective family, where the space has them). The first objective's
evaluation supplies the cost and feasibility; the further metrics cost nothing.
"""

from __future__ import annotations

import numpy as np

from nas_lab.core.errors import UserError, shorten
from nas_lab.core.objective import Evaluation, Objective
from nas_lab.core.space import CLOSED_FORM, Space

#: spaces at most this large have the exact extent of their closed-form sizes, by enumeration
ENUMERATE_EXTENT = 100_000


class SpaceMetrics(Objective):
    """The cost metrics a space knows in closed form (``params``, ``flops``, ``macs``), with no model built."""

    cheap = True
    family = "space"

    def __init__(self, space: Space):
        self.space = space
        self.name = "space"
        self.cost_unit = "evaluations"

    def can_measure(self, metric: str) -> bool:
        return metric in CLOSED_FORM and metric in self.space.capabilities()

    def free(self, metric: str) -> bool:
        """Closed-form sizes cost nothing: no model is built."""
        return self.can_measure(metric)

    def extent(self, metric: str) -> tuple[float, float] | None:
        """Exact over a space small enough to enumerate (NB201, HyViTas), else what the space knows."""
        if not self.can_measure(metric):
            return None
        if self.space.cardinality > ENUMERATE_EXTENT:
            return super().extent(metric)
        every = self.space.all_archs()
        values = self.measure(metric, every[self.space.is_valid(every)])
        return float(values.min()), float(values.max())

    def measure(self, metric: str, archs: np.ndarray) -> np.ndarray:
        if not self.can_measure(metric):
            known = [m for m in CLOSED_FORM if self.can_measure(m)]
            raise UserError(f"space {self.space.name!r} has no closed-form {shorten(repr(metric))}; "
                            f"it has {', '.join(known) or 'none'}")
        return np.asarray(getattr(self.space, metric)(archs), dtype=float) if len(archs) else np.empty(0)


class Joint(Objective):
    """The first objective's target plus further metrics, optimised together (a multi-objective problem)."""

    def __init__(self, primary: Objective, extras: list[tuple[str, Objective]], directions: tuple[str, ...],
                 reference: tuple[float, ...] | None = None):
        self.primary = primary
        self.extras = list(extras)
        self.space = primary.space
        self.targets = tuple(primary.targets) + tuple(m for m, _ in self.extras)
        self.directions = tuple(directions)
        self.reference = reference
        self.name = ",".join(self.targets)
        self.family = primary.family
        self.cost_unit = primary.cost_unit
        self.cheap = primary.cheap and all(o.cheap for _, o in self.extras)

    @property
    def needs(self) -> tuple[str, ...]:
        """What every objective of it needs, read when asked (a zero-cost proxy's needs load the proxy)."""
        return tuple(dict.fromkeys(self.primary.needs + tuple(n for _, o in self.extras for n in o.needs)))

    def _extra_columns(self, archs: np.ndarray) -> list[np.ndarray]:
        return [np.asarray(o.measure(m, archs), dtype=float) for m, o in self.extras]

    def evaluate(self, archs: np.ndarray, rng: np.random.Generator) -> Evaluation:
        ev = self.primary.evaluate(archs, rng)
        values = np.column_stack([ev.values, *self._extra_columns(archs)])
        return Evaluation(values=values, directions=self.directions, cost=ev.cost, feasible=ev.feasible,
                          metrics=ev.metrics, violation=ev.violation)

    def measurer(self, metric: str) -> Objective:
        for m, o in self.extras:
            if m == metric:
                return o.measurer(metric)
        return self.primary.measurer(metric)

    def measure(self, metric: str, archs: np.ndarray) -> np.ndarray:
        return self.measurer(metric).measure(metric, archs)

    def can_measure(self, metric: str) -> bool:
        return self.measurer(metric).can_measure(metric)

    def extent(self, metric: str):
        return self.measurer(metric).extent(metric)

    def exhaustive(self):
        every = self.primary.exhaustive() if self.cheap else None
        if every is None:
            return None
        values, feasible = every
        return np.column_stack([values, *self._extra_columns(self.space.all_archs())]), feasible

    def report(self, archs: np.ndarray) -> dict[str, np.ndarray]:
        return {**self.primary.report(archs), **dict(zip((m for m, _ in self.extras), self._extra_columns(archs)))}

    def label(self, metric: str) -> str:
        return self.primary.label(metric)

    def unit(self, metric: str) -> str:
        return self.measurer(metric).unit(metric)

    def table_values(self, metric: str) -> np.ndarray | None:
        return self.measurer(metric).table_values(metric)

    def info(self) -> dict:
        out = {**self.primary.info(), "targets": list(self.targets), "directions": list(self.directions)}
        if self.reference is not None:
            out["reference"] = list(self.reference)
        return out

    def describe(self) -> str:
        first = self.primary.describe()
        rest = ", ".join(f"{d}imise {m}" for m, d in zip(self.targets[1:], self.directions[1:]))
        return f"{first}; {rest}"
