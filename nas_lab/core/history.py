"""The history of one run: every distinct arch evaluated, in order, with what the objective said.

The runner appends each batch it evaluates and reads rows back as an
``Evaluation`` when it answers a searcher from the run's own cache. Buffers are
preallocated to the budget, so appending is a few slice assignments (the
tabular hot path), and arch indices map to rows through one dict.
"""

from __future__ import annotations

import numpy as np

from nas_lab.core.objective import CACHED, CUT, EVALUATED, Evaluation

#: what every history records per evaluated arch (``History.arrays`` adds the metrics objectives computed on the way)
COLUMNS = ("index", "value", "feasible", "violation", "cost", "time", "step")


class History:
    """Evaluations of up to ``budget`` distinct archs with ``k`` optimised values each; ``exact_index`` keeps
    arch indices as Python ints (spaces too large for int64)."""

    def __init__(self, budget: int, k: int, exact_index: bool = False):
        self.n = 0
        self.index = np.empty(budget, dtype=object if exact_index else np.int64)
        self.value = np.empty((budget, k))
        self.feasible = np.empty(budget, dtype=bool)
        self.violation = np.empty(budget)
        self.cost = np.empty(budget)
        self.time = np.empty(budget)
        self.step = np.empty(budget, dtype=np.int64)
        self.metrics: dict[str, np.ndarray] = {}
        self._budget = budget
        self._row: dict[int, int] = {}  # arch index -> row

    def __len__(self) -> int:
        return self.n

    def __contains__(self, index: int) -> bool:
        return index in self._row

    def append(self, indices: list[int], ev: Evaluation, time: float, step: int) -> None:
        """Record the evaluation of the (new, distinct) archs ``indices``."""
        rows = slice(self.n, self.n + len(indices))
        self.index[rows] = indices
        self.value[rows] = ev.values
        self.feasible[rows] = ev.feasible
        self.violation[rows] = ev.violation
        self.cost[rows] = ev.cost
        self.time[rows] = time
        self.step[rows] = step
        for name, arr in ev.metrics.items():
            self.metrics.setdefault(name, np.full(self._budget, np.nan))[rows] = arr
        for j, i in enumerate(indices):
            self._row[i] = self.n + j
        self.n += len(indices)

    def answer(self, indices: list[int], evaluated: list[int], directions: tuple[str, ...]) -> Evaluation:
        """An ``Evaluation`` of the asked archs ``indices``, in order: rows at the positions in ``evaluated``
        were evaluated this step (cost charged there), other recorded archs are ``CACHED`` (cost 0), and
        archs never evaluated were ``CUT`` by the budget (NaN values, infeasible)."""
        rows = np.array([self._row.get(i, -1) for i in indices], dtype=np.int64)
        cut = rows < 0
        safe = np.where(cut, 0, rows)
        source = np.where(cut, CUT, CACHED).astype(np.int8)
        source[evaluated] = EVALUATED
        fresh = source == EVALUATED
        return Evaluation(
            values=np.where(cut[:, None], np.nan, self.value[safe]),
            directions=directions,
            cost=np.where(fresh, self.cost[safe], 0.0),
            feasible=self.feasible[safe] & ~cut,
            violation=np.where(cut, np.nan, self.violation[safe]),
            metrics={m: np.where(cut, np.nan, a[safe]) for m, a in self.metrics.items()},
            source=source,
        )

    def arrays(self) -> dict[str, np.ndarray]:
        """The recorded rows as ``RunResult.history``: ``index``, ``value``, ``feasible``, ``violation``,
        ``cost``, ``time``, ``step`` and every further metric."""
        n = self.n
        return {
            "index": self.index[:n],
            "value": self.value[:n],
            "feasible": self.feasible[:n],
            "violation": self.violation[:n],
            "cost": self.cost[:n],
            "time": self.time[:n],
            "step": self.step[:n],
            **{m: a[:n] for m, a in self.metrics.items()},
        }
