"""Tabular objective: an evaluation is a vectorised lookup in a benchmark table.

This is the hot path of 500-repeat studies: everything a lookup needs (the
target's mean over training seeds, its per-seed values, the simulated cost) is
precomputed at construction, so ``evaluate`` is a few numpy indexing calls.
It imports no torch.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

import numpy as np

from nas_lab.core import registry
from nas_lab.core.errors import UserError, shorten
from nas_lab.core.objective import DIRECTIONS, Evaluation, Objective, default_direction
from nas_lab.core.settings import Setting
from nas_lab.core.space import Space
from nas_lab.objectives.tabular import metrics
from nas_lab.objectives.tabular.table import Table


def _exists(name: str) -> bool:
    """Whether a path exists; False for names the OS refuses outright (too long, a NUL byte)."""
    try:
        return Path(name).exists()
    except (OSError, ValueError):
        return False


def open_table(space: Space, table: str | None) -> Table:
    """The table named ``table`` (a built-in name or a file path), or the space's default."""
    name = table or space.default_table
    if name is None:
        raise UserError(f"space {space.name!r} has no built-in table; give one with table=PATH")
    if name in registry.names("table"):
        loaded = registry.load("table", name)(space)
    elif _exists(name):
        path = Path(name).resolve()
        loaded = _load_file(str(path), path.stat().st_mtime_ns, space)
    else:
        raise UserError(
            f"table {shorten(repr(name))} is neither a built-in table ({', '.join(registry.names('table'))}) "
            "nor an existing file"
        )
    if loaded.space != space.name:
        raise UserError(f"table {loaded.name!r} is for space {loaded.space!r}, not {space.name!r}")
    return loaded


@lru_cache(maxsize=8)
def _load_file(path: str, mtime_ns: int, space: Space) -> Table:
    """``Table.load`` once per process per file version: a study builds objectives once per chunk."""
    return Table.load(path, space)


class TabularObjective(Objective):
    """Look up a metric in a benchmark table (``hyvitas-sim`` by default on HyViTas).

    ``seeds="mean"`` scores an arch by the mean over training seeds; ``"random"``
    draws one training seed per query, as NATS-Bench does. Reports always use the
    mean. ``direction="auto"`` maximises accuracies and minimises latency, size
    and cost metrics.
    """

    family = "tabular"
    cheap = True
    needs = ("index",)

    def __init__(
        self,
        space: Space,
        metric: str = "id",
        table: Annotated[str | None, Setting(help="benchmark table: a built-in name or a file (default: the "
                                                   "space's own)")] = None,
        seeds: Annotated[str, Setting(choices=("mean", "random"),
                                      help="score by the mean over training seeds, or one seed drawn per "
                                           "query")] = "mean",
        direction: Annotated[str, Setting(choices=("auto", *DIRECTIONS),
                                          help="max or min the metric (auto: min for latency, size, cost)")] = "auto",
    ):
        self.space = space
        self.table = open_table(space, table)
        self.metric = metric
        self.seeds = seeds
        self.name = metric
        self.targets = (metric,)
        self.directions = (default_direction(metric) if direction == "auto" else direction,)
        per_seed = metrics.resolve(self.table, metric)
        if per_seed.ndim == 1:
            per_seed = per_seed[:, None]
        self._per_seed = per_seed
        self._mean = per_seed.mean(axis=1)  # NaN if any seed diverged: such an arch is never best
        cost = self.table.columns.get("train.hours")
        self._cost = np.zeros(len(self._mean)) if cost is None else np.asarray(cost, dtype=float)
        self.cost_unit = "GPU-hours" if cost is not None else "evaluations"
        self._means: dict[str, np.ndarray] = {}  # metric -> every arch's mean over seeds

    def evaluate(self, archs: np.ndarray, rng: np.random.Generator) -> Evaluation:
        idx = self.space.index(archs)
        if self.seeds == "mean" or self._per_seed.shape[1] == 1:
            values = self._mean[idx]
        else:
            values = self._per_seed[idx, rng.integers(0, self._per_seed.shape[1], len(idx))]
        return Evaluation(
            values=values[:, None],
            directions=self.directions,
            cost=self._cost[idx],
            feasible=np.ones(len(idx), dtype=bool),
        )

    def free(self, metric: str) -> bool:
        """The table's measured latencies and sizes cost nothing; its accuracies stand for trainings
        (``metrics.free``)."""
        return metrics.free(metric)

    def measure(self, metric: str, archs: np.ndarray) -> np.ndarray:
        """Mean over training seeds of any table metric (raw or derived) for these archs."""
        if metric not in self._means:
            arr = metrics.resolve(self.table, metric)
            self._means[metric] = arr.mean(axis=1) if arr.ndim == 2 else arr
        return self._means[metric][self.space.index(archs)]

    def table_values(self, metric: str) -> np.ndarray | None:
        """Every arch's mean over training seeds of a metric the table holds (raw or derived)."""
        if metric not in self._means and not metrics.known(self.table, metric):
            return None
        self.measure(metric, np.empty((0, self.space.dim), dtype=np.int64))
        return self._means[metric]

    def extent(self, metric: str) -> tuple[float, float] | None:
        """The table's smallest and largest value of ``metric`` over the space (mean over training seeds): exact."""
        every = self.table_values(metric)
        if every is None or np.isnan(every).all():
            return super().extent(metric)
        return float(np.nanmin(every)), float(np.nanmax(every))

    def exhaustive(self) -> tuple[np.ndarray, np.ndarray]:
        """Every arch's target (mean over seeds): the table covers the whole space."""
        return self._mean[:, None], np.ones(len(self._mean), dtype=bool)

    def report(self, archs: np.ndarray) -> dict[str, np.ndarray]:
        wanted = dict.fromkeys(metrics.REPORTED + self.targets)
        return {m: self.measure(m, archs) for m in wanted if m in self._means or metrics.known(self.table, m)}

    def values(self) -> np.ndarray:
        """The target (mean over seeds) of every arch, in index order: optimum and space mean come from here."""
        return self._mean

    def label(self, metric: str) -> str:
        return metrics.label(metric)

    def info(self) -> dict:
        return {
            **super().info(),
            "table": self.table.name,
            "table_description": self.table.description,
            "simulated": self.table.simulated,
            "seeds": self.seeds,
        }

    def describe(self) -> str:
        seeds = self._per_seed.shape[1]
        how = ("" if seeds == 1 else
               f", {'mean over' if self.seeds == 'mean' else 'one random draw of'} {seeds} training seeds")
        return f"{self.directions[0]}imise {self.metric}{how}"


def reference_table(space: Space, table: str | None) -> TabularObjective | None:
    """An objective over the benchmark table whose metrics the other families' reports show (zero-cost,
    supernet), or None.

    A table the user names must open; the space's default may be absent (NB201
    without its data files), and then reports carry the objective's own metrics alone.
    """
    try:
        opened = open_table(space, table)
    except UserError:
        if table is not None:
            raise
        return None
    shown = next((m for m in metrics.REPORTED if metrics.known(opened, m)), None)
    return None if shown is None else TabularObjective(space, shown, table=table)
