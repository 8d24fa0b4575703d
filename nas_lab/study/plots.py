"""A study's plots: anytime curves, and ID vs OoD of the found archs (over the whole space when the benchmark
table is at hand; cf. HyViTas-Bench Fig. 5); with several targets, the fronts found and their hypervolume against
evaluations.

Axes follow ``metric_axes``: units and which way is better in every label, log scales where values span decades,
far degenerate points drawn at the edge rather than stretching the view. Fronts of two targets are drawn as
staircases (the boundary of what they dominate); of three or more, as points on each pair's projection (a line
through a projection would join points that are not neighbours on the front).

Each figure is written as PNG (to look at) and PDF (for a paper). Figures are
built as plain ``Figure`` objects on the Agg canvas, never through pyplot, so
writing a report changes no global matplotlib state and needs no display.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from nas_lab.core.files import save_figure
from nas_lab.core.fronts import minimisation
from nas_lab.core.objective import default_direction
from nas_lab.core.results import RunResult
from nas_lab.study import pareto
from nas_lab.study.metric_axes import Metric, View, choose_views, new_figure, note_outside, scatter_in_view, show_metric
from nas_lab.study.results import StudyResults, cell_of, first_run

MARKERS = "os^DvPX*<>"
PANEL_WIDTH, PANEL_HEIGHT = 4.6, 4.2  # inches
FRONT_PANEL = 4.2  # inches, square
#: legend entries that start so are references (drawn last in the legend), not searchers
REFERENCE = ("true front", "hypervolume of the true front", "table optimum")
MIN_WIDTH = 6.0  # inches: a figure of one column still fits its title and legend
LEGEND_ENTRY = 2.8  # inches a legend entry takes at most: fewer columns in a narrow figure
TAIL = 0.01  # share of the space below the start of the ID-vs-OoD axes


def incumbent_curves(runs: Sequence[RunResult], metric: str, budget: int) -> np.ndarray:
    """``(runs, budget)``: after each evaluation, ``metric`` of the run's incumbent (its best arch so far, as its
    record's ``incumbents`` say), NaN before its first; a run that stopped before ``budget`` keeps its last."""
    out = np.full((len(runs), budget), np.nan)
    for i, r in enumerate(runs):
        for start, value in zip(r.incumbents["evaluation"], r.incumbents["metrics"][metric]):
            out[i, start - 1:] = np.nan if value is None else value
    return out


def _mean_and_se(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over runs (axis 0), ignoring NaN; NaN where too few runs."""
    ok = ~np.isnan(curves)
    n = ok.sum(axis=0)
    x = np.where(ok, curves, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = x.sum(axis=0) / n
        var = (np.where(ok, curves - mean, 0.0) ** 2).sum(axis=0) / (n - 1)
        return mean, np.sqrt(var / n)


def _figure(study: StudyResults, what: str, same_y: bool) -> tuple[Figure, list[tuple[Any, str, int]]]:
    """One panel per setting (rows: budgets, columns: objectives), titled with the study and its data.

    Returns the figure and ``(axes, objective, budget)`` per panel; y axes are shared
    only when every panel shows the same metric.
    """
    objectives, budgets = study.config.objectives, study.config.budgets
    fig = new_figure(max(PANEL_WIDTH * len(objectives), MIN_WIDTH) + 0.4, PANEL_HEIGHT * len(budgets) + 1.0)
    grid = fig.subplots(len(budgets), len(objectives), sharex="row", sharey=same_y, squeeze=False)
    table = study.table
    data = f"SIMULATED table {table['table']}" if table["simulated"] else f"table {table['table']}"
    fig.suptitle(f"{what}\nstudy {study.config.name} ({study.config.space}, {data})")
    panels = []
    for i, budget in enumerate(budgets):
        for j, objective in enumerate(objectives):
            ax = grid[i, j]
            suffix = f", budget {budget}" if len(budgets) > 1 else ""
            ax.set_title(f"searched for {study.objective_title(objective)}{suffix}", fontsize="medium")
            ax.grid(alpha=0.3, linewidth=0.6)
            panels.append((ax, objective, budget))
    return fig, panels


def _runs(study: StudyResults, objective: str, budget: int, searcher: str) -> list[RunResult]:
    return [r for r in study.records if cell_of(r) == (objective, budget, searcher)]


def _shown_metric(study: StudyResults, objective: str) -> str:
    """What a panel plots: the objective's own target when the table holds it, else the first column (ID)."""
    run = first_run(study.records, objective)
    target = None if run is None else run.targets[0]
    return target if study.tabulated(target) else study.columns[0]


def figure_legend(fig: Figure, axes, title: str | None = None, columns: int | None = None) -> None:
    """One legend below the panels (never over data), each label once, in ``columns`` (up to 4 by default)."""
    entries = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    entries = dict(sorted(entries.items(), key=lambda item: item[0].startswith(REFERENCE)))  # references last
    columns = columns or min(len(entries), 4, max(1, int(fig.get_figwidth() // LEGEND_ENTRY)))
    fig.legend(list(entries.values()), list(entries), loc="outside lower center", ncols=columns,
               frameon=False, title=title, title_fontsize="small")


def anytime_figure(study: StudyResults) -> Figure:
    """Mean over repeats (band: standard error) of the incumbent's metric per evaluation, per setting."""
    shown = {o: _shown_metric(study, o) for o in study.config.objectives}
    fig, panels = _figure(study, "Anytime performance", same_y=len(set(shown.values())) == 1)
    for ax, objective, budget in panels:
        metric = shown[objective]
        x = np.arange(1, budget + 1)
        for k, searcher in enumerate(study.config.searchers):
            runs = _runs(study, objective, budget, searcher)
            if not runs:
                continue
            mean, se = _mean_and_se(incumbent_curves(runs, metric, budget))
            ax.plot(x, mean, color=f"C{k}", linewidth=1.6, label=study.searcher_title(searcher))
            ax.fill_between(x, mean - se, mean + se, color=f"C{k}", alpha=0.2, linewidth=0)
        optimum = study.metrics[metric]["max"]
        same = len(set(shown.values())) == 1  # one optimum: worth its value in the legend
        ax.axhline(optimum, color="0.2", linestyle="--", linewidth=1,
                   label=f"table optimum ({optimum:.2f}{_unit(study, metric)})" if same
                   else "table optimum of the panel's metric")
        ax.set_xlabel("architectures evaluated")
        ax.set_ylabel(_metric(study, metric).axis_label("of the incumbent"))
        ax.set_xlim(1, budget)
    figure_legend(fig, [ax for ax, _, _ in panels], "mean over finished repeats; band: ± standard error")
    return fig


def id_vs_ood_figure(study: StudyResults) -> Figure:
    """The archs each searcher found (hollow markers show overlaps), over every arch of the space in grey when the
    benchmark table is at hand (the records alone hold only what the runs found).

    With the table, the view starts at the ``TAIL`` quantile of each axis, so a few collapsed
    trainings do not squeeze the rest into a corner; the panel says how many it leaves out.
    """
    metric = study.columns[0]
    found: dict[tuple, list] = {cell_of(r): [] for r in study.records}
    for r in study.records:
        if r.best_metrics and metric in r.best_metrics and "ood" in r.best_metrics:
            found[cell_of(r)].append((r.best_metrics[metric], r.best_metrics["ood"]))
    every = _every_arch(study, [metric, "ood"])
    fig, panels = _figure(study, f"{study.label(metric)} vs {study.label('ood')}", same_y=True)
    axes = [ax for ax, _, _ in panels]
    for ax, objective, budget in panels:
        if every is not None:
            ax.scatter(*every, s=3, color="0.7", alpha=0.5, linewidths=0, rasterized=True,
                       label=f"all {len(every[0]):,} architectures")
        for k, searcher in enumerate(study.config.searchers):
            points = np.array(found.get((objective, budget, searcher), [])).reshape(-1, 2)
            ax.scatter(points[:, 0], points[:, 1], s=30, marker=MARKERS[k % len(MARKERS)], facecolors="none",
                       edgecolors=f"C{k}", linewidths=1.1, alpha=0.8,
                       label=f"found by {study.searcher_title(searcher)}")
        ax.set_xlabel(_metric(study, metric).axis_label())
        ax.set_ylabel(_metric(study, "ood").axis_label())
    if every is not None:
        _tail_view(axes, every, np.array([p for points in found.values() for p in points]).reshape(-1, 2))
    figure_legend(fig, axes)
    return fig


def _every_arch(study: StudyResults, metrics: list[str]) -> list[np.ndarray] | None:
    """Every arch's value of ``metrics`` in the study's benchmark table, if it opens here; None if not."""
    from nas_lab.core import registry
    from nas_lab.core.errors import UserError
    from nas_lab.objectives.tabular.objective import TabularObjective

    try:
        space = registry.create("space", study.config.space, study.config.space_params)
        table = TabularObjective(space, metrics[0], table=study.config.table)
    except UserError:
        return None
    return [table.table_values(m) for m in metrics]


def _tail_view(axes: list, every: list[np.ndarray], found: np.ndarray) -> None:
    """Start the (shared) axes at the ``TAIL`` quantile of every arch's values (or lower, to show every found
    arch), saying how many archs that leaves out."""
    x_all, y_all = every
    low = np.nanquantile(x_all, TAIL), np.nanquantile(y_all, TAIL)
    low = min(low[0], found[:, 0].min(initial=np.inf)), min(low[1], found[:, 1].min(initial=np.inf))
    hidden = int(((x_all < low[0]) | (y_all < low[1])).sum())
    if hidden:
        for ax in axes:
            ax.text(0.98, 0.02, f"{hidden} architectures further down or left not shown", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize="small", color="0.4")
    margin = 0.03 * (np.nanmax(x_all) - low[0]), 0.03 * (np.nanmax(y_all) - low[1])
    axes[0].set_xlim(low[0] - margin[0], np.nanmax(x_all) + margin[0])
    axes[0].set_ylim(low[1] - margin[1], np.nanmax(y_all) + margin[1])


def _unit(study: StudyResults, metric: str) -> str:
    """`` %`` or `` ms`` after a value ("" for a unitless score)."""
    unit = study.unit(metric)
    return f" {unit}" if unit else ""


def _metric(study: StudyResults, metric: str) -> Metric:
    """A study metric as an axis shows it, with the direction a benchmark metric has (accuracies up, latency down)."""
    return Metric.of(study.metrics, metric, default_direction(metric))


def _pairs(k: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(k) for j in range(i + 1, k)]


def draw_front(ax, points: np.ndarray, a: int, b: int, directions, views: list[View], staircase: bool,
               **style) -> np.ndarray:
    """Draw a front's points on targets ``a`` (x) and ``b`` (y), those outside ``views`` at the edge, and with
    ``staircase`` (two targets) the boundary of what it dominates; the mask of points drawn at the edge."""
    points = np.asarray(points, dtype=float).reshape(-1, len(directions))
    if staircase and len(points):
        order = np.argsort(minimisation(points, directions)[:, a], kind="stable")  # best first target first
        ax.step(points[order, a], points[order, b], where="post", color=style.get("color", style.get("edgecolors")),
                linewidth=style.pop("linewidth", 0.8), alpha=style.get("alpha", 1.0))
    style.pop("linewidth", None)
    return scatter_in_view(ax, points[:, a], points[:, b], views[a], views[b], **style)


def _setting_runs(study: StudyResults, objective: str, budget: int) -> dict[str, list[RunResult]]:
    """The runs of each searcher that ran in this setting (a searcher that ran only at other budgets or objectives
    gets no panel)."""
    runs = {s: _runs(study, objective, budget, s) for s in study.config.searchers}
    return {s: r for s, r in runs.items() if r}


def fronts_figure(study: StudyResults, objective: str, budget: int) -> Figure:
    """Every repeat's front per searcher (one column each; one row per pair of targets), with the true front
    where the space is tabulated; each target's view is shared by its row and column."""
    run = first_run(study.records, objective)
    targets, directions = run.targets, run.directions
    k = len(targets)
    metrics = [Metric.of(study.metrics, t, d) for t, d in zip(targets, directions)]
    by_searcher = _setting_runs(study, objective, budget)
    truth = pareto.true_front(study, objective)
    best = None if truth is None else np.array(truth["true_front"], dtype=float).reshape(-1, k)
    found = [np.array(r.front["values"], dtype=float).reshape(-1, k) for runs in by_searcher.values() for r in runs]
    every = np.concatenate(found + ([] if best is None else [best]))
    views = choose_views(every, [m.unit for m in metrics])
    pairs = _pairs(k)
    fig = new_figure(max(FRONT_PANEL * len(by_searcher), MIN_WIDTH) + 0.4, FRONT_PANEL * len(pairs) + 1.4)
    grid = fig.subplots(len(pairs), len(by_searcher), squeeze=False)
    how = "staircase: what each front dominates" if k == 2 else "points: projections of fronts of 3 targets"
    fig.suptitle(f"Fronts found: study {study.config.name} ({study.config.space}), budget {budget}\n"
                 f"{study.objective_title(objective)}\n({how})", fontsize="medium")
    for col, (searcher, runs) in enumerate(by_searcher.items()):
        k_col = list(study.config.searchers).index(searcher)
        for row, (a, b) in enumerate(pairs):
            ax = grid[row, col]
            drawn = [np.zeros((0, 2)), np.zeros(0, dtype=bool)]
            for i, r in enumerate(runs):
                points = np.array(r.front["values"], dtype=float).reshape(-1, k)
                edge = draw_front(ax, points, a, b, directions, views, k == 2, s=14, color=f"C{k_col}",
                                  marker=MARKERS[k_col % len(MARKERS)], alpha=0.5, linewidth=0.6,
                                  label=f"{study.searcher_title(searcher)}: fronts of {len(runs)} repeats" if i == 0
                                  else None)
                drawn = [np.vstack([drawn[0], points[:, [a, b]]]), np.concatenate([drawn[1], edge])]
            if best is not None:
                edge = draw_front(ax, best, a, b, directions, views, k == 2, s=16, marker="x", color="black",
                                  linewidth=1.0, label=f"true front ({truth['true_size']} architectures)")
                drawn = [np.vstack([drawn[0], best[:, [a, b]]]), np.concatenate([drawn[1], edge])]
            ax.set_title(study.searcher_title(searcher), fontsize="medium")
            show_metric(ax, "x", metrics[a], views[a])
            show_metric(ax, "y", metrics[b], views[b])
            note_outside(ax, drawn[0][:, 0], drawn[0][:, 1], metrics[a], metrics[b], drawn[1], "front point")
            ax.grid(alpha=0.3, linewidth=0.6)
            ax.grid(alpha=0.12, linewidth=0.5, which="minor")
    figure_legend(fig, grid.ravel(), columns=1 if len(by_searcher) == 1 else None)
    return fig


def hypervolume_figure(study: StudyResults) -> Figure:
    """Hypervolume of the front so far against evaluations: mean ± standard error over repeats, per setting that
    has runs."""
    settings = [(o, b) for o, b in study.config.settings() if _setting_runs(study, o, b)]
    fig = new_figure(max(PANEL_WIDTH * len(settings), MIN_WIDTH) + 0.4, PANEL_HEIGHT + 1.0)
    axes = fig.subplots(1, len(settings), squeeze=False)[0]
    fig.suptitle(f"Hypervolume against evaluations: study {study.config.name} ({study.config.space})")
    for ax, (objective, budget) in zip(axes, settings):
        for searcher, runs in _setting_runs(study, objective, budget).items():
            col = list(study.config.searchers).index(searcher)
            curves = [np.array(r.front["curve"], dtype=float) for r in runs]
            x = np.unique(np.concatenate([c[:, 0] for c in curves]))
            y = np.array([np.interp(x, c[:, 0], c[:, 1]) for c in curves])
            mean = y.mean(axis=0)
            se = y.std(axis=0, ddof=1) / np.sqrt(len(y)) if len(y) > 1 else np.zeros_like(mean)
            ax.plot(x, mean, color=f"C{col}", linewidth=1.6, label=study.searcher_title(searcher))
            ax.fill_between(x, mean - se, mean + se, color=f"C{col}", alpha=0.2, linewidth=0)
        truth = pareto.true_front(study, objective)
        if truth is not None:
            ax.axhline(truth["true_hypervolume"], color="0.2", linestyle="--", linewidth=1,
                       label="hypervolume of the true front")
            low, high = ax.get_ylim()
            ax.set_ylim(low, max(high, truth["true_hypervolume"] * 1.02))
        ax.set_title(f"{study.objective_title(objective)}, budget {budget}", fontsize="medium")
        ax.set_xlabel("architectures evaluated")
        ax.set_ylabel("hypervolume of the front so far (higher is better)")
        ax.set_xlim(1, budget)
        ax.grid(alpha=0.3, linewidth=0.6)
    figure_legend(fig, axes, "mean over finished repeats; band: ± standard error")
    return fig


def write_plots(study: StudyResults) -> list[Path]:
    """Write the plots the study's data allows; the paths written. Several targets: ``hypervolume`` and one
    ``fronts_<n>`` per setting (objective x budget) that has runs. One target: ``anytime`` and ``id_vs_ood`` (both
    need the benchmark table's statistics, which the records hold)."""
    figures = {}
    if pareto.is_multi_objective(study):
        figures["hypervolume"] = hypervolume_figure(study)
        settings = [(o, b) for o, b in study.config.settings() if _setting_runs(study, o, b)]
        for n, (objective, budget) in enumerate(settings, start=1):
            figures[f"fronts_{n}"] = fronts_figure(study, objective, budget)
    elif study.columns and study.tabulated(study.columns[0]):
        figures["anytime"] = anytime_figure(study)
        if study.tabulated("ood"):
            figures["id_vs_ood"] = id_vs_ood_figure(study)
    return save_figures(figures, study.directory)


def save_figures(figures: dict[str, Figure], directory: Path, dpi: int = 150) -> list[Path]:
    """Write each figure as ``<name>.png`` and ``<name>.pdf`` in ``directory``; the paths written."""
    paths = []
    for name, fig in figures.items():
        for ext in ("png", "pdf"):
            paths.append(directory / f"{name}.{ext}")
            save_figure(fig, paths[-1], dpi=dpi)
    return paths
