"""The report of a multi-objective study: front quality per searcher and setting (its figures are drawn by
``plots``).

Rows are searcher x setting (objective x budget) with mean ± std over repeats of
the hypervolume of each run's front, and on a tabulated space its share of the
true front's hypervolume, IGD and the share of the true front's archs found; a
"True front" row per objective gives the reference. Runs measured against their
own worst values (no table, no ``objective.reference``) are re-measured here
against one reference point shared by every run of the objective: the worst value
of each target over all their fronts. Everything comes from the run records: each
run computed its front's quality, and the true front's, when it ran.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from nas_lab.core.config import objective_metrics
from nas_lab.core.fronts import Scale, minimisation
from nas_lab.study.cells import CELL_KEYS, cell_statistics
from nas_lab.study.results import StudyResults, cell_of, first_run
from nas_lab.study.store import key_of

TRUE_FRONT = "True front"
#: columns of the table: (frame column, header, format)
COLUMNS = (("hypervolume", "Hypervolume", "{:.4f}"), ("hv_share", "HV / true HV (%)", "{:.2f}"),
           ("igd", "IGD", "{:.4f}"), ("recovered", "True front found (%)", "{:.1f}"),
           ("front_size", "Front size", "{:.1f}"))


def is_multi_objective(study: StudyResults) -> bool:
    return any(len(objective_metrics(o)) > 1 for o in study.config.objectives)


def _shared_hypervolumes(study: StudyResults) -> dict[str, float]:
    """Hypervolume per run key, re-measured against one reference per objective when runs used their own."""
    out = {key_of(r): r.front["hypervolume"] for r in study.records}
    for objective in study.config.objectives:
        runs = [r for r in study.records if cell_of(r)[0] == objective and r.front["scale"]["source"] == "run"]
        if not runs:
            continue
        directions = runs[0].directions
        fronts = [minimisation(np.array(r.front["values"], dtype=float).reshape(-1, len(directions)), directions)
                  for r in runs]
        everything = np.concatenate(fronts)
        k = len(directions)
        scale = Scale(np.zeros(k), np.ones(k), everything.max(axis=0), "study")
        for r, F in zip(runs, fronts):
            out[key_of(r)] = scale.hypervolume(F)
    return out


def true_front(study: StudyResults, objective: str) -> dict[str, Any] | None:
    """The front of a study objective's first run, which holds the true front's quality and values where the
    space is tabulated (every run of the objective computed the same); None otherwise."""
    run = first_run(study.records, objective)
    return run.front if run is not None and "true_front" in run.front else None


def aggregate(study: StudyResults) -> pd.DataFrame:
    """One row per searcher x setting (``row``, ``objective``, ``budget``, ``searcher``, ``runs``, then
    ``<column>_mean`` / ``<column>_std``), and a ``True front`` row per objective where the space is tabulated."""
    hv = _shared_hypervolumes(study)
    rows = []
    for r in study.records:
        f = r.front
        true_hv = f.get("true_hypervolume")
        rows.append({
            **dict(zip(CELL_KEYS, cell_of(r))),
            "hypervolume": hv[key_of(r)],
            "hv_share": 100 * f["hypervolume"] / true_hv if true_hv else np.nan,
            "igd": np.nan if f.get("igd") is None else f["igd"],
            "recovered": 100 * f["recovered"] if "recovered" in f else np.nan,
            "front_size": len(f["index"]),
        })
    frame = cell_statistics(study, pd.DataFrame(rows), [c for c, _, _ in COLUMNS])
    truth = []
    for objective in study.config.objectives:
        front = true_front(study, objective)
        if front is not None:
            truth.append({"row": f"{TRUE_FRONT} ({study.objective_title(objective)})",
                          "hypervolume_mean": front["true_hypervolume"], "hv_share_mean": 100.0, "igd_mean": 0.0,
                          "recovered_mean": 100.0, "front_size_mean": float(front["true_size"])})
    if truth:
        frame = pd.concat([frame, pd.DataFrame(truth)], ignore_index=True)
    return frame


def table_rows(frame: pd.DataFrame, pm: str) -> list[list[str]]:
    """Formatted cells: label, mean ± std per column, runs (blank for the true-front rows)."""
    out = []
    for _, row in frame.iterrows():
        cells = [row["row"]]
        for c, _, fmt in COLUMNS:
            mean, std = row[f"{c}_mean"], row.get(f"{c}_std", np.nan)
            cells.append("—" if pd.isna(mean) else fmt.format(mean) + ("" if pd.isna(std) else pm + fmt.format(std)))
        cells.append("" if pd.isna(row["runs"]) else str(row["runs"]))
        out.append(cells)
    return out


def headers() -> list[str]:
    return ["Method", *(h for _, h, _ in COLUMNS), "runs"]


def caption(study: StudyResults) -> str:
    sources = {r.front["scale"]["source"] for r in study.records}
    text = ("Quality of the Pareto front each run found (feasible non-dominated archs): mean ± standard deviation over "
            "the finished repeats (`runs`).")
    if "true front" in sources:
        text += (" Hypervolume with every target normalised by the true front's ideal and nadir points and the nadir "
                 "as reference point (EvoXBench's convention); IGD in the same normalised units; "
                 f"{TRUE_FRONT}: every feasible non-dominated arch of the tabulated space.")
    if "objective.reference" in sources:
        text += " Hypervolume in the metrics' own units against objective.reference."
    if "run" in sources:
        text += (" Hypervolume in the metrics' own units against one reference point shared by all runs of an "
                 "objective: the worst value of each target over all their fronts.")
    return text
