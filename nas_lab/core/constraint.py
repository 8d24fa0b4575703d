"""Constraints: bounds on metrics that wrap any objective (``latency.pixel3<=5``, ``params<=1e6``).

Composition, not flags: ``Constrained`` asks the wrapped objective to
``measure`` each constrained metric and clears ``Evaluation.feasible`` where a
bound is broken. Infeasible archs still cost their evaluation (the runner
charges them) and are never reported best (``Evaluation.fitness`` is -inf).
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

import numpy as np

from nas_lab.core.errors import UserError
from nas_lab.core.objective import Evaluation, Objective

_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
_PATTERN = re.compile(r"^\s*([^<>=\s]+)\s*(<=|>=|<|>)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Constraint:
    """``metric op bound``; NaN values never satisfy it."""

    metric: str
    op: str
    bound: float

    @classmethod
    def parse(cls, text: str) -> "Constraint":
        match = _PATTERN.match(text)
        bound = None
        if match:
            try:
                bound = float(match.group(3))
            except ValueError:
                pass
        if bound is None:
            raise UserError(f"constraint {text!r} is not METRIC<=NUMBER (or >=, <, >); e.g. constraint=latency.pixel3<=5")
        return cls(match.group(1), match.group(2), bound)

    def holds(self, values: np.ndarray) -> np.ndarray:
        return _OPS[self.op](values, self.bound)  # NaN compares False: a missing value is infeasible

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"


class Constrained(Objective):
    """Any objective, with archs breaking a bound marked infeasible."""

    def __init__(self, inner: Objective, constraints: list[Constraint]):
        self.inner = inner
        self.constraints = list(constraints)
        for c in self.constraints:
            inner.measure(c.metric, np.empty((0, inner.space.dim), dtype=np.int64))  # unknown metric: fail now
        for attr in ("space", "name", "targets", "directions", "cost_unit", "cheap", "needs"):
            setattr(self, attr, getattr(inner, attr))

    def evaluate(self, archs: np.ndarray, rng: np.random.Generator) -> Evaluation:
        ev = self.inner.evaluate(archs, rng)
        feasible = ev.feasible.copy()
        metrics = dict(ev.metrics)
        for c in self.constraints:
            values = self.inner.measure(c.metric, archs)
            feasible &= c.holds(values)
            metrics[c.metric] = values
        return Evaluation(values=ev.values, directions=ev.directions, cost=ev.cost, feasible=feasible, metrics=metrics)

    def measure(self, metric: str, archs: np.ndarray) -> np.ndarray:
        return self.inner.measure(metric, archs)

    def report(self, archs: np.ndarray) -> dict[str, np.ndarray]:
        return {**self.inner.report(archs), **{c.metric: self.inner.measure(c.metric, archs) for c in self.constraints}}

    def label(self, metric: str) -> str:
        return self.inner.label(metric)

    def info(self) -> dict:
        return {**self.inner.info(), "constraints": [str(c) for c in self.constraints]}

    def describe(self) -> str:
        return f"{self.inner.describe()}, subject to {' and '.join(map(str, self.constraints))}"
