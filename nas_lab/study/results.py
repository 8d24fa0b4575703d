"""A study folder read back from its records (``report.load_study``): what the report, its table cells, plots
and Pareto sections are computed from, with no objective or table rebuilt."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas_lab.core.results import RunResult
from nas_lab.study.config import StudyConfig


def cell_of(result: RunResult) -> tuple[str, int, str]:
    """The grid cell of a study's run (objective as the study names it, budget, searcher label), from its
    record's config."""
    return result.config["objective"], result.config["budget"], result.config["study"]["label"]


def first_run(records: list[RunResult], objective: str) -> RunResult | None:
    """The first run of a study objective: its record says the targets, directions and labels (None if none ran)."""
    return next((r for r in records if cell_of(r)[0] == objective), None)


def tabulated(metrics: dict[str, dict[str, Any]], metric: str) -> bool:
    """Whether recorded metric facts hold the benchmark table's statistics of ``metric`` over the whole space."""
    return "mean" in metrics.get(metric, {})


@dataclass
class StudyResults:
    """A study folder read back: its config and its runs in the grid, with what their records say about the
    metrics (labels, units, the benchmark table's statistics) and the table itself."""

    directory: Path
    config: StudyConfig
    records: list[RunResult]
    expected: int
    outside: int  # recorded runs that are not in the grid of study.yaml (e.g. repeats cut since)
    columns: list[str]  # reported metrics shown, in report order
    metrics: dict[str, dict[str, Any]]  # label, unit and, where a benchmark table holds it, statistics per metric
    table: dict[str, Any] | None  # the benchmark table the runs name (table, table_description, simulated), if used

    @property
    def partial(self) -> bool:
        return len(self.records) < self.expected

    @property
    def cardinality(self) -> int:
        return self.records[0].cardinality

    def tabulated(self, metric: str) -> bool:
        """Whether the records hold the benchmark table's statistics of ``metric`` over the whole space."""
        return tabulated(self.metrics, metric)

    def label(self, metric: str) -> str:
        """Human name of a metric, as the runs' objectives gave it."""
        return self.metrics.get(metric, {}).get("label", metric)

    def unit(self, metric: str) -> str:
        return self.metrics.get(metric, {}).get("unit", "")

    def searcher_title(self, searcher: str) -> str:
        """A study label as printed: a row that runs the registered searcher of its name shows that searcher's
        ``title`` (REA, BANANAS, Random search); any other label is kept as the study wrote it."""
        return next((r.searcher_title for r in self.records
                     if cell_of(r)[2] == searcher and r.searcher == searcher), searcher)

    def objective_title(self, objective: str) -> str:
        """What a study objective optimises, in words (``ID+OoD``)."""
        run = first_run(self.records, objective)
        return objective if run is None else ", ".join(run.label(t) for t in run.targets)

    def row_label(self, searcher: str, objective: str, budget: int) -> str:
        """``REA (ID top-1)``: the searcher and what it searched for (and its budget, when the study has several)."""
        suffix = f", {budget} evals" if len(self.config.budgets) > 1 else ""
        return f"{self.searcher_title(searcher)} ({self.objective_title(objective)}{suffix})"

    def source(self) -> str:
        """Space, table (flagged when simulated), budget and repeats, in one line."""
        if self.table is None:
            table = "no benchmark table"
        elif self.table["simulated"]:
            table = f"table {self.table['table']} (SIMULATED: not real training results)"
        else:
            table = f"table {self.table['table']} ({self.table['table_description']})"
        cfg = self.config
        budgets = " or ".join(map(str, cfg.budgets))
        limits = f", subject to {' and '.join(cfg.constraints)}" if cfg.constraints else ""
        return (f"space {cfg.space}, {table}, budget {budgets} evaluations{limits}, {cfg.repeats} repeats, "
                f"seed {cfg.seed}")
