"""The report of a multi-objective study: front quality per searcher and setting, and its plots.

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

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nas_lab.core.config import objective_metrics
from nas_lab.core.fronts import Scale, minimisation
from nas_lab.study.cells import CELL_KEYS, cell_statistics
from nas_lab.study.plots import save_figures
from nas_lab.study.results import StudyResults, cell_of, first_run
from nas_lab.study.store import key_of

TRUE_FRONT = "True front"
#: columns of the table: (frame column, header, format)
COLUMNS = (("hypervolume", "Hypervolume", "{:.4f}"), ("hv_share", "HV / true HV (%)", "{:.2f}"),
           ("igd", "IGD", "{:.4f}"), ("recovered", "True front found (%)", "{:.1f}"), ("front_size", "Front size", "{:.1f}"))
PANEL = 4.2  # inches


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


def _true_front(study: StudyResults, objective: str) -> dict[str, Any] | None:
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
        front = _true_front(study, objective)
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


def _pairs(k: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(k) for j in range(i + 1, k)]


def fronts_figure(study: StudyResults, objective: str, budget: int) -> Figure:
    """Every repeat's front per searcher (one column each; one row per pair of targets), with the true front
    where the space is tabulated."""
    run = first_run(study.records, objective)
    targets, directions = run.targets, run.directions
    k = len(targets)
    searchers = list(study.config.searchers)
    pairs = _pairs(k)
    fig = Figure(figsize=(PANEL * len(searchers) + 0.4, PANEL * len(pairs) + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.subplots(len(pairs), len(searchers), squeeze=False)
    fig.suptitle(f"Fronts found: study {study.config.name} ({study.config.space})\n"
                 f"{study.objective_title(objective)}, budget {budget}", fontsize="medium")
    truth = _true_front(study, objective)
    for col, searcher in enumerate(searchers):
        runs = [r for r in study.records if cell_of(r) == (objective, budget, searcher)]
        for row, (a, b) in enumerate(pairs):
            ax = grid[row, col]
            for i, r in enumerate(runs):
                points = np.array(r.front["values"], dtype=float).reshape(-1, k)
                order = np.argsort(points[:, a])
                ax.plot(points[order, a], points[order, b], marker=".", markersize=3, linewidth=0.6, alpha=0.35,
                        color=f"C{col}", label=f"fronts of {len(runs)} repeats" if i == 0 else None)
            if truth is not None:
                best = np.array(truth["true_front"], dtype=float).reshape(-1, k)
                order = np.argsort(best[:, a])
                ax.plot(best[order, a], best[order, b], color="black", linewidth=1.2, marker="x", markersize=4,
                        label=f"true front ({truth['true_size']} architectures)")
            ax.set_title(study.searcher_title(searcher), fontsize="medium")
            ax.set_xlabel(f"{study.label(targets[a])} ({directions[a]})")
            ax.set_ylabel(f"{study.label(targets[b])} ({directions[b]})")
            ax.grid(alpha=0.3, linewidth=0.6)
            ax.legend(fontsize="x-small", loc="best")
    return fig


def hypervolume_figure(study: StudyResults) -> Figure:
    """Hypervolume of the front so far against evaluations: mean ± standard error over repeats, per setting."""
    settings = study.config.settings()
    fig = Figure(figsize=(PANEL * len(settings) + 0.4, PANEL + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(settings), squeeze=False)[0]
    fig.suptitle(f"Hypervolume against evaluations: study {study.config.name} ({study.config.space})")
    for ax, (objective, budget) in zip(axes, settings):
        for col, searcher in enumerate(study.config.searchers):
            curves = [np.array(r.front["curve"], dtype=float) for r in study.records
                      if cell_of(r) == (objective, budget, searcher)]
            if not curves:
                continue
            x = np.unique(np.concatenate([c[:, 0] for c in curves]))
            y = np.array([np.interp(x, c[:, 0], c[:, 1]) for c in curves])
            mean = y.mean(axis=0)
            se = y.std(axis=0, ddof=1) / np.sqrt(len(y)) if len(y) > 1 else np.zeros_like(mean)
            ax.plot(x, mean, color=f"C{col}", linewidth=1.6, label=study.searcher_title(searcher))
            ax.fill_between(x, mean - se, mean + se, color=f"C{col}", alpha=0.2, linewidth=0)
        truth = _true_front(study, objective)
        if truth is not None:
            ax.axhline(truth["true_hypervolume"], color="0.2", linestyle="--", linewidth=1, label="true front")
        ax.set_title(f"{study.objective_title(objective)}, budget {budget}", fontsize="medium")
        ax.set_xlabel("architectures evaluated")
        ax.set_ylabel("hypervolume of the front so far")
        ax.grid(alpha=0.3, linewidth=0.6)
        ax.legend(fontsize="small", title="band: ± standard error", title_fontsize="x-small")
    return fig


def write_plots(study: StudyResults) -> list[Path]:
    """``hypervolume.png/.pdf`` and one ``fronts_<n>.png/.pdf`` per setting; the paths written."""
    figures: dict[str, Any] = {"hypervolume": hypervolume_figure(study)}
    for n, (objective, budget) in enumerate(study.config.settings(), start=1):
        figures[f"fronts_{n}"] = fronts_figure(study, objective, budget)
    return save_figures(figures, study.directory)
