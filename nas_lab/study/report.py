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

import numpy as np
import pandas as pd

from nas_lab.core.config import build
from nas_lab.core.errors import UserError
from nas_lab.core.objective import Objective, default_direction
from nas_lab.core.space import Space
from nas_lab.objectives.tabular import metrics
from nas_lab.objectives.tabular.objective import TabularObjective, open_table
from nas_lab.study.config import StudyConfig
from nas_lab.study.engine import CONFIG_FILE
from nas_lab.study import pareto
from nas_lab.study.cells import CELL_KEYS, cell_statistics
from nas_lab.study.plots import write_plots
from nas_lab.study.results import StudyResults
from nas_lab.study.store import RUNS_FILE, Store

#: averages of columns the table already shows; Table 4 leaves them out
COMPOSITES = ("ood", "id+ood")
OPTIMUM, SPACE_MEAN = "Optimum", "Search space mean"


@dataclass
class Report:
    """What ``write_report`` produced: the Markdown text, the files written, the numbers behind them."""

    markdown: str
    paths: list[Path]
    frame: pd.DataFrame  # the rows of report.csv


def load_study(directory: str | Path) -> StudyResults:
    """Read a study folder; ``UserError`` if it is missing, not a study, or has no finished run."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        hint = "; to run a study config, use `nas-lab study`" if directory.suffix in (".yaml", ".yml") else ""
        raise UserError(f"{directory} is a file, not a study folder; give the folder a study wrote (its out=DIR, "
                        f"e.g. results/studies/hyvitas_table4){hint}")
    if not directory.is_dir():
        raise UserError(f"study folder {directory} does not exist; give the folder a study wrote (its out=DIR)")
    if not (directory / CONFIG_FILE).is_file():
        raise UserError(f"{directory} is not a study folder: it has no {CONFIG_FILE} (`nas-lab study` writes one)")
    config = StudyConfig.load(directory / CONFIG_FILE)
    recorded = {r["key"]: r for r in Store(directory).records()}  # a run stored twice counts once
    if not recorded:
        raise UserError(f"study {config.name!r} in {directory} has no finished runs yet ({RUNS_FILE} is empty or missing)")
    grid = config.runs()
    records = [recorded[spec.key] for spec in grid if spec.key in recorded]
    if not records:
        raise UserError(f"none of the {len(recorded)} runs in {directory / RUNS_FILE} belong to the grid of its {CONFIG_FILE}")

    built = {}
    for spec in config.runs(repeats=1):
        if spec.objective not in built:
            built[spec.objective] = build(spec.run_config())
    space = next(iter(built.values()))[0]
    objectives = {name: objective for name, (_, objective, _) in built.items()}

    targets = [t for o in objectives.values() for t in o.targets]  # a multi-objective study's table is its targets'
    if config.report:
        columns = list(config.report)
        records = _fill_columns(config, records, columns)
        reference, values = _table_values(space, config.table, columns)
    else:
        reported = dict.fromkeys(m for r in records for m in (r["best"] or {}))
        columns = [m for m in reported if m not in COMPOSITES and default_direction(m) == "max"]
        reference, values = _table_values(space, config.table, columns + ["ood"] + targets)
        if values:  # with a benchmark table, report its accuracies (not e.g. a zero-cost proxy's raw score)
            columns = [m for m in columns if m in values]
    return StudyResults(directory, config, records, len(grid), len(recorded) - len(records), space, objectives,
                        columns, reference, values)


def _fill_columns(config: StudyConfig, records: list[dict], columns: list[str]) -> list[dict]:
    """Records whose found arch lacks a ``report:`` column get it from the run's own objective (a zero-cost
    proxy through its cache, say), so every row reports the same columns."""
    specs = {(spec.searcher, spec.objective): spec for spec in config.runs(repeats=1)}
    built: dict[tuple[str, str], tuple[Space, Objective]] = {}
    out = []
    for record in records:
        best = record["best"]
        missing = [m for m in columns if best is not None and m not in best]
        if missing:
            cell = (record["searcher"], record["objective"])
            if cell not in built:  # the row's own space and objective parameters
                space, objective, _ = build(specs[cell].run_config())
                built[cell] = space, objective
            space, objective = built[cell]  # it can measure every column (``StudyConfig.validate``)
            arch = space.from_values(record["best_arch"])[None]
            best = {**best, **{m: float(objective.measure(m, arch)[0]) for m in missing}}
        out.append({**record, "best": best})
    return out


def _table_values(space: Space, table_name: str | None, names: list[str]) -> tuple[TabularObjective | None, dict[str, np.ndarray]]:
    """The benchmark table (as an objective over it) and every arch's value of each of ``names`` it has."""
    if table_name is None and space.default_table is None:
        return None, {}
    table = open_table(space, table_name)
    objectives = {m: TabularObjective(space, m, table=table_name) for m in names if metrics.known(table, m)}
    if not objectives:
        return None, {}
    return next(iter(objectives.values())), {m: o.values() for m, o in objectives.items()}


def aggregate(study: StudyResults) -> pd.DataFrame:
    """The report's rows (those of report.csv): ``row``, ``objective``, ``searcher``, ``runs``,
    then ``<metric>_mean`` and ``<metric>_std`` per column; the reference rows last."""
    cols = study.columns
    found = pd.DataFrame([{**{k: r[k] for k in CELL_KEYS}, **(r["best"] or {})} for r in study.records])
    frame = cell_statistics(study, found, cols)  # a run that found nothing counts, as NaN
    if study.values:
        reference = [{"row": OPTIMUM}, {"row": SPACE_MEAN}]
        for m in (m for m in cols if m in study.values):  # a metric the table lacks stays blank
            v = study.values[m]
            best = np.nanmax(v) if default_direction(m) == "max" else np.nanmin(v)  # e.g. params: the smallest
            reference[0].update({f"{m}_mean": best, f"{m}_std": np.nan})
            reference[1].update({f"{m}_mean": np.nanmean(v), f"{m}_std": np.nanstd(v)})
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
    empty = sum(not r["front_index"] if "front_index" in r else r["best"] is None for r in study.records)
    if empty:
        notes.append(f"{empty} run(s) found no architecture with a finite value: they count in `runs`, not in the means")
    if study.reference is None:
        notes.append("no benchmark table for this space: no Optimum and Search space mean rows" if not study.config.report
                     else "no benchmark table holds the reported columns: no Optimum and Search space mean rows")
    return notes


def _caption(study: StudyResults) -> str:
    what = "Metrics" if study.config.report else "Metrics (accuracies in %)"
    text = f"{what} of the architecture each run found: mean ± standard deviation over the finished repeats (`runs`)."
    if study.reference is not None:
        text += (f" {OPTIMUM}: the table's best value in each column, each column on its own."
                 f" {SPACE_MEAN}: mean ± standard deviation over all {study.space.cardinality:,} architectures.")
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


_TEX_ESCAPES = str.maketrans({c: "\\" + c for c in "&%$#_{}"} | {"~": r"\textasciitilde{}", "^": r"\^{}", "\\": r"\textbackslash{}"})


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
    """Write report.md, report.csv, report.tex and the plots into the study folder."""
    study = load_study(study_dir)
    multi = pareto.is_multi_objective(study)
    frame = pareto.aggregate(study) if multi else aggregate(study)
    plots = pareto.write_plots(study) if multi else write_plots(study)
    markdown = _markdown(study, frame, plots)
    md, csv, tex = (study.directory / f"report.{ext}" for ext in ("md", "csv", "tex"))
    md.write_text(markdown, encoding="utf-8")
    frame.to_csv(csv, index=False)
    tex.write_text(_latex(study, frame), encoding="utf-8")
    return Report(markdown, [md, csv, tex, *plots], frame)
