"""Constraints: bounds on metrics that wrap any objective (``latency.pixel3<=5``, ``params<=1e6``).

Composition, not flags: ``Constrained`` asks the objective that measures each
constrained metric (the wrapped one, or another family's: a latency table may
bound a supernet search, closed-form sizes bound anything) for its values,
clears ``Evaluation.feasible`` where a bound is broken and sets
``Evaluation.violation`` to how far: the sum over broken bounds of
``|value - bound| / |bound|`` (``|value - bound|`` for a bound of 0; infinite
for a missing value), so bounds in different units add up. Infeasible archs still
cost their evaluation (the runner charges them) and are never reported best
(``Evaluation.fitness`` is -inf). Before any run, each metric's bounds are
intersected and checked against the metric's ``Objective.extent`` (a table's
range, closed-form sizes, a latency table's): bounds that exclude each other or
that no arch reaches are refused with the reachable range; bounds whose reach
only evaluating can tell are kept in ``unchecked`` for the run's summary.

A run's bounds have one form, ``Constraint``, and reach searchers one way,
``Objective.constraints`` (empty unless wrapped here) with ``Objective.measurer``
naming who measures each; the ``constraint=`` overrides and a space's
``default_constraints`` (``run_constraints``) both end up there. Two other
things only look like bounds: ``Space.is_valid`` says which index vectors are
archs at all (a searcher never proposes an invalid one, nothing is measured),
and vitas' ``space.budget_macs`` sets the identity probability of its sampler
so that *sampled* archs have those MACs *on average*; archs above it stay
feasible, so a MACs bound is still ``'constraint=macs<=X'``.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

import numpy as np

from nas_lab.core.errors import UserError, shorten
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
    def parse(cls, text: str) -> Constraint:
        match = _PATTERN.match(text)
        bound = None
        if match:
            try:
                bound = float(match.group(3))
            except ValueError:
                pass
        if bound is None or np.isnan(bound):  # an infinite bound is no bound (params<=inf lifts a space's default)
            raise UserError(f"constraint {shorten(repr(text))} is not METRIC<=NUMBER (or >=, <, >); "
                            "e.g. 'constraint=latency.pixel3<=5'")
        return cls(match.group(1), match.group(2), bound)

    def holds(self, values: np.ndarray) -> np.ndarray:
        return _OPS[self.op](values, self.bound)  # NaN compares False: a missing value is infeasible

    def violation(self, values: np.ndarray) -> np.ndarray:
        """How far each value is outside the bound, relative to the bound (0 where it holds)."""
        values = np.asarray(values, dtype=float)
        gap = np.abs(values - self.bound) / (abs(self.bound) or 1.0)
        return np.where(self.holds(values), 0.0, np.where(np.isnan(values), np.inf, gap))

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"


def run_constraints(space, given: list[str]) -> list[Constraint]:
    """A run's constraints: the ``given`` ones, and each of ``space.default_constraints`` whose metric they leave
    unbounded on that side (``params<=2e5`` replaces a default ``params<=100000``, ``params>=1e4`` keeps it)."""
    parsed = [Constraint.parse(c) for c in given]
    bounded = {(c.metric, c.op in ("<=", "<")) for c in parsed}
    defaults = [Constraint.parse(c) for c in space.default_constraints]
    return [c for c in defaults if (c.metric, c.op in ("<=", "<")) not in bounded] + parsed


def check_reachable(bounds: list[Constraint], span: tuple[float, float] | None, space_name: str) -> None:
    """``UserError`` if no value meets every one of ``bounds`` (all on one metric) within ``span``, the metric's
    ``Objective.extent`` (``None``: unknown, so only the bounds' own intersection is judged)."""
    metric = bounds[0].metric
    low, high = span if span is not None else (-np.inf, np.inf)
    where = {(False, False): f"{metric} runs from {low:.4g} to {high:.4g}",
             (False, True): f"the smallest has {metric} {low:g}",
             (True, False): f"the largest has at most {metric} {high:g}",
             (True, True): ""}[(low == -np.inf, high == np.inf)]
    advice = {(False, False): "choose a bound within that range", (False, True): "give a bound above it",
              (True, False): "give a bound below it"}
    for c in bounds:
        if not c.holds(np.array([low, high])).any():
            raise UserError(f"constraint {c} leaves no architecture of space {space_name!r}: {where}; "
                            f"{advice[(low == -np.inf, high == np.inf)]}")
    lower = max((c for c in bounds if c.op in (">=", ">")), key=lambda c: (c.bound, c.op == ">"), default=None)
    upper = min((c for c in bounds if c.op in ("<=", "<")), key=lambda c: (c.bound, c.op != "<"), default=None)
    if lower and upper and not (lower.bound < upper.bound or (lower.holds(upper.bound) and upper.holds(lower.bound))):
        raise UserError(f"constraints {lower} and {upper} exclude each other, so no architecture of space "
                        f"{space_name!r} meets both; " + (f"{where}" if where else f"give bounds on {metric} that "
                                                                                     "overlap"))


class Constrained(Objective):
    """Any objective, with archs breaking a bound marked infeasible and their violation sized.

    ``measurers`` maps a constrained metric to the objective that measures it
    (default: the wrapped objective).
    """

    def __init__(self, inner: Objective, constraints: list[Constraint], measurers: dict[str, Objective] | None = None):
        self.inner = inner
        self.constraints = tuple(constraints)
        self.measurers = {c.metric: (measurers or {}).get(c.metric, inner) for c in self.constraints}
        for c in self.constraints:
            if not self.measurers[c.metric].can_measure(c.metric):  # unknown metric: fail now, with the reason
                self.measurers[c.metric].measure(c.metric, np.empty((0, inner.space.dim), dtype=np.int64))
                raise UserError(f"objective {inner.name!r} cannot measure {shorten(repr(c.metric))} for a constraint")
        unchecked = []
        for metric in dict.fromkeys(c.metric for c in self.constraints):  # each metric's bounds together
            span = self.measurers[metric].extent(metric)
            check_reachable([c for c in self.constraints if c.metric == metric], span, inner.space.name)
            unchecked += [c for c in self.constraints if c.metric == metric and span is None]
        self.unchecked = tuple(unchecked)
        for attr in ("space", "name", "family", "targets", "directions", "cost_unit", "reference"):
            setattr(self, attr, getattr(inner, attr))
        self.cheap = inner.cheap and all(m.cheap for m in self.measurers.values())

    @property
    def needs(self) -> tuple[str, ...]:
        """The wrapped objective's, read when asked (a zero-cost proxy's needs load the proxy, and torch)."""
        return self.inner.needs

    def _measure_all(self, archs: np.ndarray) -> dict[str, np.ndarray]:
        return {c.metric: self.measurers[c.metric].measure(c.metric, archs) for c in self.constraints}

    def _bound(self, measured: dict[str, np.ndarray], feasible: np.ndarray, violation: np.ndarray):
        feasible, violation = feasible.copy(), violation.copy()
        for c in self.constraints:
            feasible &= c.holds(measured[c.metric])
            violation += c.violation(measured[c.metric])
        return feasible, violation

    def evaluate(self, archs: np.ndarray, rng: np.random.Generator) -> Evaluation:
        ev = self.inner.evaluate(archs, rng)
        measured = self._measure_all(archs)
        feasible, violation = self._bound(measured, ev.feasible, ev.violation)
        return Evaluation(values=ev.values, directions=ev.directions, cost=ev.cost, feasible=feasible,
                          metrics={**ev.metrics, **measured}, violation=violation)

    def measurer(self, metric: str) -> Objective:
        return self.measurers.get(metric, self.inner).measurer(metric)

    def measure(self, metric: str, archs: np.ndarray) -> np.ndarray:
        return self.measurer(metric).measure(metric, archs)

    def can_measure(self, metric: str) -> bool:
        return metric in self.measurers or self.inner.can_measure(metric)

    def extent(self, metric: str):
        return self.measurer(metric).extent(metric)

    def exhaustive(self):
        every = self.inner.exhaustive() if self.cheap else None
        if every is None:
            return None
        values, feasible = every
        feasible, _ = self._bound(self._measure_all(self.space.all_archs()), feasible, np.zeros(len(values)))
        return values, feasible

    def report(self, archs: np.ndarray) -> dict[str, np.ndarray]:
        return {**self.inner.report(archs), **self._measure_all(archs)}

    def label(self, metric: str) -> str:
        return self.inner.label(metric)

    def unit(self, metric: str) -> str:
        return self.measurer(metric).unit(metric)

    def table_values(self, metric: str) -> np.ndarray | None:
        return self.measurer(metric).table_values(metric)

    def info(self) -> dict:
        return {**self.inner.info(), "constraints": [str(c) for c in self.constraints]}

    def describe(self) -> str:
        return f"{self.inner.describe()}, subject to {' and '.join(map(str, self.constraints))}"
