"""The figure of one run, from its record alone (``nas-lab plot RUN.json``).

One target: every evaluated arch's value in evaluation order (dots; infeasible ones as crosses) under the
incumbent curve (the best feasible value so far, which is what the run reports), with the benchmark table's optimum
where the record holds it. Several targets: every evaluated arch on each pair of targets (grey; infeasible as
crosses), the run's front over them (a staircase for two targets, points on projections for three or more) and the
true front where the space is tabulated, plus the front's hypervolume against evaluations. Axes follow
``metric_axes`` (units, which way is better, log scales, far degenerate archs drawn at the edge).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from nas_lab.core.results import RunResult
from nas_lab.study.metric_axes import (
    Metric,
    View,
    choose_view,
    choose_views,
    new_figure,
    note_outside,
    scatter_in_view,
    show_metric,
)
from nas_lab.study.plots import draw_front, figure_legend

PANEL = 4.6  # inches
EVALUATED = {"label": "each evaluated architecture"}
INFEASIBLE = {"s": 18, "marker": "x", "color": "C3", "label": "infeasible (outside constraints)"}
#: how a record's hypervolume was measured (its front's ``scale.source``), for the axis label
HYPERVOLUME_SCALES = {"true front": "targets normalised by the true front", "run": "against the run's worst values",
                      "objective.reference": "against objective.reference"}


def _title(run: RunResult) -> str:
    table = run.objective_info.get("table")
    data = f", table {table}" + (" (SIMULATED)" if run.objective_info.get("simulated") else "") if table else ""
    return (f"Run: {run.searcher_title} on {run.space}{data}, seed {run.seed}\n"
            f"{run.evaluations} of {run.budget} architectures evaluated")


def _metrics(run: RunResult) -> list[Metric]:
    return [Metric.of(run.metrics, t, d) for t, d in zip(run.targets, run.directions)]


def run_figure(run: RunResult) -> Figure:
    """The figure of ``run`` (module docstring); a run that evaluated nothing still gets its titled, empty axes."""
    return _incumbent_figure(run) if len(run.targets) == 1 else _front_figure(run)


def incumbent_curve(values: np.ndarray, feasible: np.ndarray, direction: str) -> np.ndarray:
    """After each evaluation, the best feasible finite value so far (NaN before the first)."""
    sign = 1.0 if direction == "max" else -1.0
    ok = feasible & np.isfinite(values)
    best = np.fmax.accumulate(np.where(ok, sign * values, np.nan)) if len(values) else np.zeros(0)
    return sign * best


def _incumbent_figure(run: RunResult) -> Figure:
    metric = _metrics(run)[0]
    values = run.history["value"][:, 0].astype(float)
    feasible = run.history["feasible"].astype(bool)
    x = np.arange(1, len(values) + 1)
    best = incumbent_curve(values, feasible, metric.direction)
    fig = new_figure(PANEL * 1.6, PANEL + 1.2)
    ax = fig.subplots()
    fig.suptitle(_title(run), fontsize="medium")
    optimum = run.metrics.get(metric.name, {}).get(metric.direction)
    view = choose_view(np.concatenate([values, [] if optimum is None else [optimum]]), metric.unit)
    show_metric(ax, "y", metric, view)
    steps = View(0.5, max(len(values), 1) + 0.5)  # every evaluation is shown
    edge = np.zeros(len(values), dtype=bool)
    for mask, style in ((feasible, {"s": 10, "color": "0.55", **EVALUATED}), (~feasible, INFEASIBLE)):
        if mask.any():
            edge[mask] = scatter_in_view(ax, x[mask], values[mask], steps, view, linewidths=0.8, **style)
    ax.step(x, best, where="post", color="C0", linewidth=1.8, label="incumbent: best feasible so far")
    if optimum is not None:
        ax.axhline(optimum, color="0.2", linestyle="--", linewidth=1,
                   label=f"table optimum ({metric.format(optimum)})")
    ax.set_xlabel("architectures evaluated")
    ax.set_xlim(steps.low, steps.high)
    ax.grid(alpha=0.3, linewidth=0.6)
    note_outside(ax, x, values, Metric("evaluation", "evaluation", named=True), metric, edge)
    figure_legend(fig, [ax], columns=2)
    return fig


def _front_figure(run: RunResult) -> Figure:
    metrics = _metrics(run)
    k = len(metrics)
    values = run.history["value"].astype(float).reshape(-1, k)
    feasible = run.history["feasible"].astype(bool)
    front = np.array(run.front["values"], dtype=float).reshape(-1, k)
    truth = run.front.get("true_front")
    best = None if truth is None else np.array(truth, dtype=float).reshape(-1, k)
    every = np.concatenate([values, front] + ([] if best is None else [best]))
    views = choose_views(every, [m.unit for m in metrics])
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    columns = min(len(pairs) + 1, 2)
    rows = -(-(len(pairs) + 1) // columns)
    fig = new_figure(PANEL * columns + 0.4, PANEL * rows + 1.4)
    grid = fig.subplots(rows, columns, squeeze=False).ravel()
    how = "staircase: what the front dominates" if k == 2 else "points: projections of a front of 3+ targets"
    fig.suptitle(f"{_title(run)}\n({how})", fontsize="medium")
    for ax, (a, b) in zip(grid, pairs):
        edge = np.zeros(len(values), dtype=bool)
        for mask, style in ((feasible, {"s": 8, "color": "0.65", **EVALUATED}), (~feasible, INFEASIBLE)):
            if mask.any():
                edge[mask] = scatter_in_view(ax, values[mask, a], values[mask, b], views[a], views[b], **style)
        drawn = [values[:, [a, b]], edge]
        out = draw_front(ax, front, a, b, run.directions, views, k == 2, s=26, color="C0", linewidth=1.4,
                         label=f"front found ({len(front)} architectures)")
        drawn = [np.vstack([drawn[0], front[:, [a, b]]]), np.concatenate([drawn[1], out])]
        if best is not None:
            out = draw_front(ax, best, a, b, run.directions, views, k == 2, s=16, marker="x", color="black",
                             linewidth=0.9, label=f"true front ({run.front['true_size']} architectures)")
            drawn = [np.vstack([drawn[0], best[:, [a, b]]]), np.concatenate([drawn[1], out])]
        show_metric(ax, "x", metrics[a], views[a])
        show_metric(ax, "y", metrics[b], views[b])
        ax.grid(alpha=0.3, linewidth=0.6)
        note_outside(ax, drawn[0][:, 0], drawn[0][:, 1], metrics[a], metrics[b], drawn[1], "point")
    ax = grid[len(pairs)]
    curve = np.array(run.front["curve"], dtype=float).reshape(-1, 2)
    ax.step(curve[:, 0], curve[:, 1], where="post", color="C0", linewidth=1.6, label="hypervolume of the front so far")
    if "true_hypervolume" in run.front:
        ax.axhline(run.front["true_hypervolume"], color="0.2", linestyle="--", linewidth=1,
                   label="hypervolume of the true front")
    ax.set_xlabel("architectures evaluated")
    ax.set_title(f"hypervolume: {HYPERVOLUME_SCALES.get(run.front['scale']['source'], run.front['scale']['source'])}",
                 fontsize="medium")
    ax.set_ylabel("hypervolume of the front so far (higher is better)")
    ax.grid(alpha=0.3, linewidth=0.6)
    for spare in grid[len(pairs) + 1:]:
        spare.remove()
    figure_legend(fig, grid[:len(pairs) + 1], columns=3)
    return fig
