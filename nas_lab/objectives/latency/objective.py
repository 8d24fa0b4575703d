"""Latency objective (family ``latency``): ``latency.lut``, an arch's latency predicted by a look-up table.

``objective=latency`` minimises it; ``objective=supernet.id,latency.lut`` searches
accuracy against it; ``'constraint=latency.lut<=12'`` bounds any objective by it.
The prediction is the sum of the arch's block entries, corrected by the table's
line ``scale x sum + offset`` (``table.py``), vectorised numpy on a table measured on this machine by
``nas-lab lut build``: no torch here. The table must exist for the settings
asked (``threads``, ``resolution``; ``lut=PATH`` to name a file) when the
objective is built, so a run without one stops before it starts, saying which
command builds it. Other ``latency.<device>`` metrics are benchmark-table columns
and stay with the tabular family (``claims``).
"""

from __future__ import annotations

from typing import Annotated

import numpy as np

from nas_lab.core.errors import UserError, shorten
from nas_lab.core.objective import Evaluation, Objective
from nas_lab.core.settings import Setting
from nas_lab.core.space import ENUMERATE_COMBINATIONS, Space
from nas_lab.objectives.latency.table import CLOCKS, locate

#: the family's metrics (``latency.lut``)
METRICS = ("lut",)
#: archs sampled for the per-slot bounds of ``extent`` on spaces too large to enumerate
EXTENT_SAMPLE = 5_000


class LatencyObjective(Objective):
    """Latency (ms) predicted by a look-up table measured on this machine (``nas-lab lut build``).

    ``threads``, ``resolution`` (input side; default the space's) and ``clock``
    (cpu or wall, see ``table.py``) pick the table built with them; ``lut`` names
    a table file instead of the default one.
    """

    family = "latency"
    cheap = True
    directions = ("min",)
    cost_unit = "evaluations"

    def __init__(
        self,
        space: Space,
        metric: str = "lut",
        threads: Annotated[int, Setting(ge=1, le=1024, help="torch threads the table was measured with")] = 1,
        resolution: Annotated[int | None, Setting(ge=1, le=4096, help="input side in px the table was measured "
                                                                        "at (default: the space's)")] = None,
        clock: Annotated[str, Setting(choices=CLOCKS, help="cpu (one thread's CPU time) or wall (wall time, any "
                                                           "threads)")] = "cpu",
        lut: Annotated[str | None, Setting(help="table file (default: the one built for these settings)")] = None,
    ):
        if metric not in METRICS:
            raise UserError(f"unknown latency metric {shorten(repr(metric))}; valid: latency.lut (a device's measured "
                            "latency.<device> comes from a benchmark table)")
        self.space = space
        self.table = locate(space, threads, resolution, lut, clock)
        self.name = f"latency.{metric}"
        self.targets = (self.name,)

    @classmethod
    def claims(cls, metric: str) -> bool:
        """Only ``latency.lut``: any other ``latency.<device>`` is a benchmark table's device column."""
        return metric in METRICS

    def free(self, metric: str) -> bool:
        """A look-up table's prediction costs nothing."""
        return self.can_measure(metric)

    def evaluate(self, archs: np.ndarray, rng: np.random.Generator) -> Evaluation:
        values = self.table.predict(self.space, archs)
        return Evaluation(values=values[:, None], directions=self.directions, cost=np.ones(len(archs)),
                          feasible=np.ones(len(archs), dtype=bool), metrics={self.name: values})

    def can_measure(self, metric: str) -> bool:
        return metric in (self.name, "lut")

    def measure(self, metric: str, archs: np.ndarray) -> np.ndarray:
        if not self.can_measure(metric):
            raise UserError(f"objective {self.name!r} measures only {self.name}, not {shorten(repr(metric))}")
        return self.table.predict(self.space, archs) if len(archs) else np.empty(0)

    def extent(self, metric: str) -> tuple[float, float] | None:
        """Fastest and slowest predicted latency over the space: exact when it can be enumerated, else bounds
        (per slot, the fastest and slowest of the blocks seen there in a large sample, summed)."""
        if not self.can_measure(metric):
            return None
        if self.space.combinations <= ENUMERATE_COMBINATIONS:
            every = self.table.predict(self.space, self.space.all_archs())
            return float(every.min()), float(every.max())
        archs = self.space.sample(np.random.default_rng(0), EXTENT_SAMPLE)
        times = self.table.slot_times(self.space, archs)
        correct = self.table.correction(self.space)
        return float(correct(times.min(axis=0).sum())), float(correct(times.max(axis=0).sum()))

    def report(self, archs: np.ndarray) -> dict[str, np.ndarray]:
        return {self.name: self.table.predict(self.space, archs)}

    def label(self, metric: str) -> str:
        return "latency (look-up table)" if metric == self.name else metric

    def info(self) -> dict:
        k = self.table.key
        return {**super().info(), "metric": self.name, "lut": str(self.table.path),
                "device": k.device, "torch": k.torch, "threads": k.threads, "resolution": k.resolution,
                "clock": k.clock,
                "correction": str(self.table.correction(self.space))}

    def describe(self) -> str:
        k = self.table.key
        return (f"minimise latency predicted by a look-up table ({k.device}, torch {k.torch}, {k.threads} thread(s), "
                f"{k.resolution}x{k.resolution}, batch 1, {k.clock} clock)")
