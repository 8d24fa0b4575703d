"""Statistics per grid cell (searcher x objective x budget) over a study's finished runs: a report's rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from nas_lab.core.results import RunResult
    from nas_lab.study.report import StudyResults

#: what identifies a cell of the grid, in a report's rows
CELL_KEYS = ["objective", "budget", "searcher"]


def cell_of(result: RunResult) -> tuple[str, int, str]:
    """The grid cell of a study's run, as in ``CELL_KEYS``: its objective (as the study names it), budget and
    searcher label, read from its record's config."""
    return result.config["objective"], result.config["budget"], result.config["study"]["label"]


def first_run(records: list[RunResult], objective: str) -> RunResult | None:
    """The first run of a study objective: its record says the targets, directions and labels (None if none ran)."""
    return next((r for r in records if cell_of(r)[0] == objective), None)


def cell_statistics(study: StudyResults, found: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """One row per grid cell (in config order): ``row`` label, the cell's keys, ``runs``, and ``<column>_mean``
    / ``<column>_std`` over its finished runs of each column of ``found`` (one line per run)."""
    groups = found.reindex(columns=[*CELL_KEYS, *columns]).groupby(CELL_KEYS, sort=False)
    grid = dict.fromkeys((spec.objective, spec.budget, spec.searcher) for spec in study.config.runs(repeats=1))
    cells = pd.MultiIndex.from_tuples(list(grid), names=CELL_KEYS)
    mean, std = groups[columns].mean().reindex(cells), groups[columns].std(ddof=1).reindex(cells)
    frame = pd.DataFrame({
        "row": [study.row_label(s, o, b) for o, b, s in cells],
        "objective": cells.get_level_values("objective"),
        "budget": pd.array(cells.get_level_values("budget"), dtype="Int64"),
        "searcher": cells.get_level_values("searcher"),
        "runs": pd.array(groups.size().reindex(cells, fill_value=0).to_numpy(), dtype="Int64"),
    })
    for c in columns:
        frame[f"{c}_mean"], frame[f"{c}_std"] = mean[c].to_numpy(), std[c].to_numpy()
    return frame
