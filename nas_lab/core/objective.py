"""Objectives map batches of archs to an Evaluation.

An objective says which metric(s) it optimises and in which direction, what an
evaluation costs (simulated GPU-hours for a tabular benchmark), which archs are
feasible, and which space capabilities it needs. Searchers only ever see
``Evaluation.fitness``: larger is better, infeasible or failed (NaN) is -inf, so
no searcher has to know about directions, constraints or diverged trainings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from nas_lab.core.settings import Declared

if TYPE_CHECKING:
    from nas_lab.core.constraint import Constraint

DIRECTIONS = ("max", "min")

#: how the runner answered each arch it tells back (``Evaluation.source``)
EVALUATED, CACHED, CUT = 0, 1, 2

#: metrics where smaller is better (latency, size, cost), unless the user says otherwise
_MINIMISED = re.compile(r"^(latency\..+|params|flops|macs|train\..+|cost)$")


def default_direction(metric: str) -> str:
    """``min`` for latency, size and cost metrics, ``max`` for everything else (accuracies, proxies)."""
    return "min" if _MINIMISED.match(metric.removeprefix("table.")) else "max"


#: units of metrics by name (accuracies in %, latencies in ms), unless the objective says otherwise
_UNITS = ((re.compile(r"^(id|ood|test|valid)(\..+)?$|^id\+ood$"), "%"), (re.compile(r"^latency\..+$"), "ms"),
          (re.compile(r"^params$"), "parameters"), (re.compile(r"^flops$"), "FLOPs"), (re.compile(r"^macs$"), "MACs"),
          (re.compile(r"^train\.hours$"), "GPU-hours"))


def default_unit(metric: str) -> str:
    """The unit of a metric's values by its name; "" for a unitless score (a zero-cost proxy)."""
    name = metric.removeprefix("table.").removeprefix("supernet.")
    return next((unit for pattern, unit in _UNITS if pattern.match(name)), "")


@dataclass
class Evaluation:
    """Result of evaluating a batch of ``n`` archs.

    ``values`` holds the optimised metric(s), ``(n, k)`` in their natural units;
    ``metrics`` any further named ``(n,)`` arrays the objective computed on the
    way; ``cost`` the simulated cost per arch; ``feasible`` the constraint mask and
    ``violation`` how far each arch is outside its constraints (0 when within them;
    what pymoo calls CV and Optuna's ``constraints_func`` returns). ``source`` says
    how the runner answered each arch it tells back to a searcher: ``EVALUATED``
    now, ``CACHED`` (evaluated earlier in the run, or twice in one batch: charged
    once), or ``CUT`` (the budget ran out: values NaN, never evaluated).
    """

    values: np.ndarray
    directions: tuple[str, ...]
    cost: np.ndarray
    feasible: np.ndarray
    metrics: dict[str, np.ndarray] = field(default_factory=dict)
    violation: np.ndarray | None = None
    source: np.ndarray | None = None

    def __post_init__(self):
        if self.violation is None:
            self.violation = np.zeros(len(self.values))
        if self.source is None:
            self.source = np.full(len(self.values), EVALUATED, dtype=np.int8)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def fitness(self) -> np.ndarray:
        """``(n, k)`` scores to maximise: sign-flipped for ``min``, -inf if infeasible or NaN."""
        sign = np.array([1.0 if d == "max" else -1.0 for d in self.directions])
        out = self.values * sign
        out[~self.feasible | np.isnan(out).any(axis=1)] = -np.inf
        return out


class Objective(Declared):
    """Base class: subclasses set the attributes below and implement ``evaluate``.

    Objectives are built by the registry as ``cls(space, metric, **params)`` and
    keep that space as ``self.space``. Which family owns a metric is said here
    once: ``family`` and ``claims``. Which bounds decide feasibility is said here
    once too: ``constraints``, each measured by ``measurer(metric)``, which says
    whether it measures the metric ``free``; searchers read bounds through these
    (``core.searcher.cheap_bounds``), never by inspecting the objective's class.
    """

    owner = "objective"
    name: str = ""
    #: the family that measures this objective's own metrics: ``tabular``, ``zc``, ``supernet``, ``latency`` (the
    #: registered name), ``space`` for closed-form sizes; an objective composed of others has its primary's
    family: str = ""
    #: bounds on metrics that decide which archs are feasible; none unless the objective is ``Constrained``
    constraints: tuple[Constraint, ...] = ()
    #: those of ``constraints`` whose reachability no ``extent`` could tell before the run (a run that finds no
    #: feasible arch says so)
    unchecked: tuple[Constraint, ...] = ()
    #: optimised metric names and their directions ("max" or "min")
    targets: tuple[str, ...] = ()
    directions: tuple[str, ...] = ()
    #: what ``Evaluation.cost`` is measured in
    cost_unit: str = "GPU-hours"
    #: True when an evaluation is a lookup; expensive objectives are batched differently
    cheap: bool = True
    #: space capabilities the objective needs (see ``Space.capabilities``)
    needs: tuple[str, ...] = ()
    #: hypervolume reference point for several targets, in the metrics' own units (see ``core.fronts``)
    reference: tuple[float, ...] | None = None

    @classmethod
    def claims(cls, metric: str) -> bool:
        """Whether ``<family>.<metric>`` names one of this family's metrics. By default every metric written after a
        family's name is its own (an unknown one is refused by the family, listing the valid ones); a family whose
        name is also the first word of benchmark-table columns says no to those (``latency.pixel3`` is a table's)."""
        return True

    def evaluate(self, archs: np.ndarray, rng: np.random.Generator) -> Evaluation:
        raise NotImplementedError

    def measurer(self, metric: str) -> Objective:
        """The objective that measures ``metric`` for this one: itself, unless it is composed of others (then the one
        of them that does, never a composite)."""
        return self

    def free(self, metric: str) -> bool:
        """Whether this objective measures ``metric`` at no cost a run would charge: a closed form, a look-up table of
        measured latencies. Never an accuracy or a proxy, however cheap the lookup is here (a benchmark table
        simulates trainings that cost hours). False by default."""
        return False

    def measure(self, metric: str, archs: np.ndarray) -> np.ndarray:
        """``(n,)`` values of any metric this objective can compute, e.g. for a constraint."""
        from nas_lab.core.errors import UserError, shorten

        raise UserError(f"objective {self.name!r} cannot measure {shorten(repr(metric))}")

    def can_measure(self, metric: str) -> bool:
        """Whether ``measure(metric, ...)`` works, found out without computing anything expensive."""
        from nas_lab.core.errors import UserError

        try:
            self.measure(metric, np.empty((0, self.space.dim), dtype=np.int64))
        except UserError:
            return False
        return True

    def extent(self, metric: str) -> tuple[float, float] | None:
        """``(smallest, largest)`` value of ``metric`` over the space, or bounds on them (an unknown end infinite),
        where cheaply known; ``None`` where only evaluating could tell (a proxy, a supernet's accuracy). Bounds no
        value within it can meet are refused before a run (``Constrained``). By default: what the space knows of
        its closed-form sizes (``Space.lowest``, ``Space.highest``)."""
        low, high = self.space.lowest(metric), self.space.highest(metric)
        if low is None and high is None:
            return None
        return (-np.inf if low is None else float(low)), (np.inf if high is None else float(high))

    def exhaustive(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(values (N, k), feasible (N,))`` of every arch in index order, for objectives cheap enough to
        tabulate the whole space (the true front and its hypervolume come from here); ``None`` otherwise."""
        return None

    def report(self, archs: np.ndarray) -> dict[str, np.ndarray]:
        """Every metric worth reporting for these archs (the values papers print)."""
        return {}

    def label(self, metric: str) -> str:
        """Human-readable name of a metric, for summaries and tables."""
        return metric

    def unit(self, metric: str) -> str:
        """Unit of a metric's values ("%", "ms"; "" for a unitless score), for records, summaries and plots."""
        return default_unit(metric)

    def table_values(self, metric: str) -> np.ndarray | None:
        """Every arch's value of ``metric`` in index order where a benchmark table holds it (a lookup, nothing
        evaluated); None otherwise. A run records their extremes, mean and spread, so a report's reference rows
        ("Optimum", "Search space mean") and its plots need no table."""
        return None

    def info(self) -> dict:
        """What a run record keeps about the objective (data source, options)."""
        return {"targets": list(self.targets), "directions": list(self.directions), "family": self.family}

    def describe(self) -> str:
        """One line saying what is optimised, on what data."""
        return ", ".join(f"{d} {t}" for t, d in zip(self.targets, self.directions))
