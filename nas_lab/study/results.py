"""A study folder read back (``report.load_study``): what the report, its table cells, plots and Pareto
sections are computed from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas_lab.core import registry
from nas_lab.core.objective import Objective
from nas_lab.core.space import Space
from nas_lab.objectives.tabular.objective import TabularObjective
from nas_lab.study.config import StudyConfig


@dataclass
class StudyResults:
    """A study folder read back: its config, its runs in the grid, and the benchmark table's values."""

    directory: Path
    config: StudyConfig
    records: list[dict[str, Any]]
    expected: int
    outside: int  # recorded runs that are not in the grid of study.yaml (e.g. repeats cut since)
    space: Space
    objectives: dict[str, Objective]  # one built objective per study objective: labels, directions
    columns: list[str]  # reported metrics shown, in report order
    reference: TabularObjective | None  # over the benchmark table; None when there is none
    values: dict[str, np.ndarray]  # every arch's metrics (mean over training seeds), from the table

    @property
    def partial(self) -> bool:
        return len(self.records) < self.expected

    def label(self, metric: str) -> str:
        """Human name of a metric: the table's objective knows its columns; the study's first objective the rest."""
        known = self.reference if self.reference is not None and metric in self.values else None
        return (known or next(iter(self.objectives.values()))).label(metric)

    @staticmethod
    def searcher_title(searcher: str) -> str:
        """A study label as printed: a registered name shows its searcher's ``title`` (REA,
        BANANAS, Random search); any other label is kept as the study wrote it."""
        if searcher in registry.names("searcher"):
            return registry.load("searcher", searcher).title or searcher
        return searcher

    def objective_title(self, objective: str) -> str:
        """What a study objective optimises, in words (``ID+OoD``)."""
        obj = self.objectives[objective]
        return ", ".join(obj.label(t) for t in obj.targets)

    def row_label(self, searcher: str, objective: str, budget: int) -> str:
        """``REA (ID top-1)``: the searcher and what it searched for (and its budget, when the study has several)."""
        suffix = f", {budget} evals" if len(self.config.budgets) > 1 else ""
        return f"{self.searcher_title(searcher)} ({self.objective_title(objective)}{suffix})"

    def source(self) -> str:
        """Space, table (flagged when simulated), budget and repeats, in one line."""
        if self.reference is None:
            table = "no benchmark table"
        elif self.reference.table.simulated:
            table = f"table {self.reference.table.name} (SIMULATED: not real training results)"
        else:
            table = f"table {self.reference.table.name} ({self.reference.table.description})"
        cfg = self.config
        budgets = " or ".join(map(str, cfg.budgets))
        limits = f", subject to {' and '.join(cfg.constraints)}" if cfg.constraints else ""
        return f"space {cfg.space}, {table}, budget {budgets} evaluations{limits}, {cfg.repeats} repeats, seed {cfg.seed}"
