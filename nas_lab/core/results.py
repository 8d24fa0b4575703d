"""The result of one run: what was searched, what was evaluated, what was found.

A ``RunResult`` is plain data (numpy arrays and dicts): it is written as the run's record (``core.record``),
aggregated by a study, compared for determinism, and seen as pandas frames in a notebook.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas_lab.core import record, registry
from nas_lab.core.errors import UserError
from nas_lab.core.history import COLUMNS
from nas_lab.core.space import Space


@dataclass
class RunResult:
    """One searcher x objective x space x seed, with its full history.

    ``history`` holds one entry per distinct evaluated arch, in evaluation order:
    ``index`` (arch index), ``value`` ``(n, k)`` optimised values, ``feasible``,
    ``cost`` and ``time`` (wall seconds since the run started), plus ``step``
    (which ask/tell round evaluated it) and ``violation``. With one target, ``best`` is
    the best feasible arch (``None`` when no evaluated arch was feasible with a finite
    value); with several, ``best`` is ``None`` and ``front`` holds the feasible
    non-dominated archs with their hypervolume (see ``core.fronts.summarise``).
    A searcher that hands in its own answer (``Searcher.pick``) sets ``best`` either way.
    """

    space: str
    objective: str
    searcher: str
    seed: Any
    budget: int
    targets: tuple[str, ...]
    directions: tuple[str, ...]
    history: dict[str, np.ndarray]
    best_index: int | None
    best_arch: dict[str, Any] | None
    best_metrics: dict[str, float] | None
    front: dict[str, Any] | None = None
    searcher_params: dict[str, Any] = field(default_factory=dict)
    searcher_report: dict[str, Any] = field(default_factory=dict)
    objective_info: dict[str, Any] = field(default_factory=dict)
    cost_unit: str = "GPU-hours"
    wall_time: float = 0.0
    note: str = ""
    #: what was asked (``core.record.config_of``; a study adds its ``study`` fields); empty when not told
    config: dict[str, Any] = field(default_factory=dict)
    cardinality: int = 0
    searcher_title: str = ""
    #: the objective's one line (``Objective.describe``)
    description: str = ""
    #: label, unit and, where a benchmark table holds the metric, its statistics over the space
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: one target: evaluation counts and indices at which the best arch so far changed, with their table metrics
    incumbents: dict[str, Any] | None = None

    @property
    def evaluations(self) -> int:
        return len(self.history["index"])

    @property
    def total_cost(self) -> float:
        return float(self.history["cost"].sum())

    def best_so_far(self, target: int = 0) -> np.ndarray:
        """Anytime curve: best feasible value of ``target`` after each evaluation."""
        sign = 1.0 if self.directions[target] == "max" else -1.0
        return np.maximum.accumulate(self._score(target)) * sign

    def incumbent_rows(self) -> np.ndarray:
        """History rows where the best arch so far changed (one target): each is the first arch to beat every
        earlier feasible, finite value, as the runner picks the best arch."""
        score = self._score(0)
        before = np.maximum.accumulate(np.concatenate([[-np.inf], score[:-1]]))
        return np.flatnonzero(score > before)

    def _score(self, target: int) -> np.ndarray:
        """``target``'s values as a maximisation, -inf where infeasible or NaN."""
        v = self.history["value"][:, target].astype(float)
        sign = 1.0 if self.directions[target] == "max" else -1.0
        return np.where(self.history["feasible"] & ~np.isnan(v), v * sign, -np.inf)

    def label(self, metric: str) -> str:
        """How reports print a metric: its recorded label, else its name."""
        return self.metrics.get(metric, {}).get("label", metric)

    # -- records ---------------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        """The run's record: the one JSON shape of a finished run (``core.record``)."""
        return record.to_record(self)

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> RunResult:
        """The run of a record (``core.record.from_record``)."""
        return record.from_record(data)

    def save(self, path: str | Path) -> Path:
        """Write the record as a JSON file (atomically: a crash never leaves half a file)."""
        return record.write(self, path)

    @classmethod
    def load(cls, path: str | Path) -> RunResult:
        """The run of a record file ``save`` (``nas-lab run``) wrote; ``UserError`` if it is not one."""
        return record.read(path)

    # -- frames ----------------------------------------------------------------
    def history_frame(self, space: Space | None = None):
        """A pandas DataFrame, one row per evaluated arch in evaluation order: ``evaluation`` (1, 2, ...),
        ``step`` (the ask/tell round), ``index``, one column per decision (its option), each target by its label,
        ``feasible``, ``violation``, ``cost``, ``time`` (seconds since the run started) and any metric the
        objective computed on the way (a constraint's). The decisions come from ``space``, by default the run's
        space rebuilt by name from the record; ``UserError`` if that space cannot be rebuilt."""
        import pandas as pd

        h = self.history
        space = self._space(space)
        archs = space.arch(h["index"]).reshape(len(h["index"]), space.dim)
        frame = pd.DataFrame({"evaluation": np.arange(1, self.evaluations + 1), "step": h["step"], "index": h["index"]})
        for j, d in enumerate(space.decisions):
            frame[d.name] = np.array(d.options, dtype=object)[archs[:, j]]
        for j, t in enumerate(self.targets):
            frame[self.label(t)] = h["value"][:, j]
        for c in ("feasible", "violation", "cost", "time"):
            frame[c] = h[c]
        for m in (m for m in h if m not in COLUMNS):
            frame[self.label(m)] = h[m]
        return frame

    def front_frame(self):
        """A pandas DataFrame, one row per arch of the front (several targets; the best arch first by the first
        target) or the best arch (one target; no row if none was found): ``index``, one column per decision,
        then each target by its label."""
        import pandas as pd

        if self.front is not None:
            rows = list(zip(self.front["index"], self.front["archs"], self.front["values"]))
        elif self.best_index is not None:
            row = list(self.history["index"]).index(self.best_index)
            rows = [(self.best_index, self.best_arch, self.history["value"][row])]
        else:
            rows = []
        labels = [self.label(t) for t in self.targets]
        if not rows:
            return pd.DataFrame(columns=["index", *labels])
        return pd.DataFrame([{"index": i, **arch, **dict(zip(labels, values))} for i, arch, values in rows])

    def _space(self, space: Space | None) -> Space:
        """``space``, or the run's space rebuilt from its name and recorded parameters, checked against the run."""
        if space is None:
            params = self.config.get("params", {}).get("space", {}) if self.config.get("space") == self.space else {}
            try:
                space = registry.create("space", self.space, params)
            except UserError as err:
                raise UserError(f"{err}; pass the run's space as space= to see its decisions") from None
        if space.name != self.space or space.cardinality != self.cardinality:
            raise UserError(f"space {space.name!r} ({space.cardinality:,} architectures) is not the space of this run, "
                            f"{self.space!r} ({self.cardinality:,}); pass the run's space as space=")
        return space
