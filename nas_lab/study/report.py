"""A study's report: the paper-style table (HyViTas-Bench Table 4) and its plots.

One row per objective x searcher (objectives outermost, as the paper groups
them) with the mean ± standard deviation, over finished repeats, of the metrics
of the architecture each run found; then an "Optimum" row (the table's best
value in each column on its own, so not one architecture) and a "Search space
mean" row (mean ± std over every architecture). The columns are the accuracies
the runs reported (on HyViTas: ID, RedIN-C 1, RedIN-C 5, RedIN-Sketch,
RedStylized-IN), so another benchmark reports the columns it has.

Repeats use the sample standard deviation (ddof=1); the search-space row uses
the population one (ddof=0), since it covers every architecture.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nas_lab.core.errors import UserError
from nas_lab.core.files import reason, write_atomic
from nas_lab.core.objective import default_direction
from nas_lab.core.results import RunResult
from nas_lab.study import pareto
from nas_lab.study.cells import CELL_KEYS, cell_statistics
from nas_lab.study.config import StudyConfig
from nas_lab.study.engine import CONFIG_FILE
from nas_lab.study.plots import write_plots
from nas_lab.study.results import StudyResults, cell_of, first_run, tabulated
from nas_lab.study.store import RUNS_FILE, Store, key_of

#: averages of columns the table already shows; Table 4 leaves them out
COMPOSITES = ("ood", "id+ood")
OPTIMUM, SPACE_MEAN = "Optimum", "Search space mean"
#: what a report says of a table whose objective did not name it (a plug-in's)
UNNAMED_TABLE = {"table": "(unnamed)", "table_description": "a benchmark table", "simulated": False}


@dataclass
class Report:
    """What ``write_report`` produced: the Markdown text, the files written, the numbers behind them."""

    markdown: str
    paths: list[Path]
    frame: pd.DataFrame  # the rows of report.csv


def read_study(directory: str | Path) -> StudyResults:
    """Read a study folder from its config and run records alone (no benchmark table, no objective is built);
    ``UserError`` if it is missing, not a study, or has no finished run."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        hint = "; to run a study config, use `nas-lab study`" if directory.suffix in (".yaml", ".yml") else ""
        raise UserError(f"{directory} is a file, not a study folder; give the folder a study wrote (its out=DIR, "
                        f"e.g. results/studies/hyvitas_table4){hint}")
    if not directory.is_dir():
        raise UserError(f"study folder {directory} does not exist; give the folder a study wrote (its out=DIR)")
    if not (directory / CONFIG_FILE).exists():  # one that is not a file is refused by StudyConfig.load
        raise UserError(f"{directory} is not a study folder: it has no {CONFIG_FILE} (`nas-lab study` writes one)")
    config = StudyConfig.load(directory / CONFIG_FILE, check=False)
    recorded = {key_of(r): r for r in Store(directory).records()}  # a run stored twice counts once
    if not recorded:
        raise UserError(f"study {config.name!r} in {directory} has no finished runs yet "
                        f"({RUNS_FILE} is empty or missing)")
    grid = config.runs()
    records = [recorded[spec.key] for spec in grid if spec.key in recorded]
    if not records:
        raise UserError(f"none of the {len(recorded)} runs in {directory / RUNS_FILE} "
                        f"belong to the grid of its {CONFIG_FILE}")

    metrics: dict[str, dict[str, Any]] = {}
    for r in records:  # the first run naming a metric describes it (all runs of a study share its table)
        for m, info in r.metrics.items():
            metrics.setdefault(m, info)
    targets = [t for o in config.objectives if (run := first_run(records, o)) is not None for t in run.targets]
    if config.report:
        columns = list(config.report)
        _check_columns(records, columns)
        shown = columns
    else:
        reported = dict.fromkeys(m for r in records for m in (r.best_metrics or {}))
        columns = [m for m in reported if m not in COMPOSITES and default_direction(m) == "max"]
        shown = columns + ["ood"] + targets
        if any(tabulated(metrics, m) for m in shown):  # with a benchmark table, report its accuracies
            columns = [m for m in columns if tabulated(metrics, m)]  # (not e.g. a zero-cost proxy's raw score)
    table = None
    if any(tabulated(metrics, m) for m in shown):
        table = next((r.objective_info for r in records if "table" in r.objective_info), UNNAMED_TABLE)
    return StudyResults(directory, config, records, len(grid), len(recorded) - len(records), columns, metrics, table)


def _check_columns(records: list[RunResult], columns: list[str]) -> None:
    """Every run that found an arch recorded every ``report:`` column (a study records them as it runs)."""
    for r in records:
        missing = [m for m in columns if r.best_metrics is not None and m not in r.best_metrics]
        if missing:
            raise UserError(f"report column {missing[0]!r} cannot be given for the {cell_of(r)[2]} runs: their records "
                            f"hold only {', '.join(r.best_metrics)}; a run records the report: columns its study named "
                            "when it ran, so run the study with this report: into a new folder (out=DIR)")


def aggregate(study: StudyResults) -> pd.DataFrame:
    """The report's rows (those of report.csv): ``row``, ``objective``, ``searcher``, ``runs``,
    then ``<metric>_mean`` and ``<metric>_std`` per column; the reference rows last."""
    cols = study.columns
    found = pd.DataFrame([{**dict(zip(CELL_KEYS, cell_of(r))), **(r.best_metrics or {})} for r in study.records])
    frame = cell_statistics(study, found, cols)  # a run that found nothing counts, as NaN
    if study.table is not None:
        reference = [{"row": OPTIMUM}, {"row": SPACE_MEAN}]
        for m in (m for m in cols if study.tabulated(m)):  # a metric the table lacks stays blank
            stats = study.metrics[m]
            best = stats[default_direction(m)]  # e.g. params: the smallest
            reference[0].update({f"{m}_mean": best, f"{m}_std": np.nan})
            reference[1].update({f"{m}_mean": stats["mean"], f"{m}_std": stats["std"]})
        frame = pd.concat([frame, pd.DataFrame(reference)], ignore_index=True)
    return frame


def _cell(mean: float, std: float, pm: str) -> str:
    """``mean ± std``: two decimals, as accuracies in %; whole numbers with thousands separators from 10,000 on
    (parameter counts, raw proxy scores), where decimals are noise."""
    if np.isnan(mean):
        return "—"
    form = "{:,.0f}" if abs(mean) >= 1e4 else "{:.2f}"
    return form.format(mean) if np.isnan(std) else form.format(mean) + pm + form.format(std)


def _cells(study: StudyResults, frame: pd.DataFrame, pm: str) -> list[list[str]]:
    """Formatted rows: label, mean ± std per column, runs (blank for the reference rows)."""
    return [
        [row["row"], *(_cell(row[f"{m}_mean"], row[f"{m}_std"], pm) for m in study.columns),
         "" if pd.isna(row["runs"]) else str(row["runs"])]
        for _, row in frame.iterrows()
    ]


def _notes(study: StudyResults) -> list[str]:
    """What a reader must know before trusting the numbers."""
    notes = []
    if study.partial:
        notes.append(f"partial: {len(study.records)} of {study.expected} runs finished; "
                     "run the same `nas-lab study` command again to finish it")
    if study.outside:
        notes.append(f"{study.outside} recorded run(s) outside the grid of {CONFIG_FILE} are left out")
    empty = sum(not r.front["index"] if r.front is not None else r.best_index is None for r in study.records)
    if empty:
        notes.append(f"{empty} run(s) found no architecture with a finite value: "
                     "they count in `runs`, not in the means")
    if study.table is None:
        notes.append("no benchmark table for this space: no Optimum and Search space mean rows"
                     if not study.config.report
                     else "no benchmark table holds the reported columns: no Optimum and Search space mean rows")
    return notes


def _caption(study: StudyResults) -> str:
    what = "Metrics" if study.config.report else "Metrics (accuracies in %)"
    text = f"{what} of the architecture each run found: mean ± standard deviation over the finished repeats (`runs`)."
    if study.table is not None:
        text += (f" {OPTIMUM}: the table's best value in each column, each column on its own."
                 f" {SPACE_MEAN}: mean ± standard deviation over all {study.cardinality:,} architectures.")
    return text


def _table(study: StudyResults, frame: pd.DataFrame, pm: str) -> tuple[list[str], list[list[str]], str]:
    """Header, formatted rows and caption: Table-4 style, or front quality for several targets."""
    if pareto.is_multi_objective(study):
        return pareto.headers(), pareto.table_rows(frame, pm), pareto.caption(study)
    return ["Method", *(study.label(m) for m in study.columns), "runs"], _cells(study, frame, pm), _caption(study)


def _markdown(study: StudyResults, frame: pd.DataFrame, plots: list[Path]) -> str:
    header, rows, caption = _table(study, frame, " ± ")
    lines = [f"# Study {study.config.name}", "", study.source() + "."]
    for note in _notes(study):
        lines += ["", f"**{note}.**" if note.startswith("partial") else f"{note}."]
    lines += ["", "| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    lines += ["", caption]
    if plots:
        lines += ["", "Plots: " + ", ".join(p.name for p in plots)]
    return "\n".join(lines) + "\n"


_TEX_ESCAPES = str.maketrans({c: "\\" + c for c in "&%$#_{}"}
                             | {"~": r"\textasciitilde{}", "^": r"\^{}", "\\": r"\textbackslash{}"})


def _latex(study: StudyResults, frame: pd.DataFrame) -> str:
    """A booktabs tabular; a rule between objectives and before the reference rows, as in Table 4."""
    header, rows, _ = _table(study, frame, r" $\pm$ ")
    lines = [f"% Study {study.config.name}: {study.source()}"] + [f"% {note}" for note in _notes(study)]
    lines += [r"% needs \usepackage{booktabs}", r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\toprule",
              " & ".join(h.translate(_TEX_ESCAPES) for h in header) + r" \\", r"\midrule"]
    previous = None
    for (_, row), cells in zip(frame.iterrows(), rows):
        group = (row["objective"], row["budget"]) if isinstance(row["objective"], str) else "reference"
        if previous is not None and group != previous:
            lines.append(r"\midrule")
        previous = group
        lines.append(" & ".join([cells[0].translate(_TEX_ESCAPES), *cells[1:]]).replace("—", "--") + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_report(study_dir: str | Path) -> Report:
    """Write report.md, report.csv, report.tex and the plots into the study folder, each atomically: a full disk
    leaves each file's previous version (and the run records untouched)."""
    study = read_study(study_dir)
    multi = pareto.is_multi_objective(study)
    frame = pareto.aggregate(study) if multi else aggregate(study)
    md, csv, tex = (study.directory / f"report.{ext}" for ext in ("md", "csv", "tex"))
    try:
        plots = write_plots(study)
        markdown = _markdown(study, frame, plots)
        for path, text in ((md, markdown), (csv, frame.to_csv(index=False)), (tex, _latex(study, frame))):
            write_atomic(path, text)
    except OSError as err:
        raise UserError(f"cannot write the report of {study.directory}: {reason(err)}; the runs are kept, so free "
                        f"space (or make it writable) and run `nas-lab report {study.directory}`") from None
    return Report(markdown, [md, csv, tex, *plots], frame)
