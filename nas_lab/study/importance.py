"""Which decisions of a space matter for a target: fANOVA importance computed from the archs a study evaluated.

Method (our choice; the issue names fANOVA through Optuna as one fair option). Every distinct arch that any run of
one study objective evaluated, with a feasible, finite value, becomes one completed trial of an in-memory Optuna
study whose parameters are the space's decisions, each a categorical distribution over its option indices.
``optuna.importance.FanovaImportanceEvaluator`` fits a random forest to the values and splits its variance among
the decisions (Hutter, Hoos and Leyton-Brown, ICML 2014); each decision's share is normalised so that the shares
sum to 1. An arch evaluated by several runs counts once (a benchmark table gives it one value).

What it tells: which decisions explain the spread of the target among the archs the searchers visited. Random
search visits the space uniformly, so its archs give the space-wide answer; model-based searchers crowd around
good archs, which shifts importance to the decisions that still vary there. The figure says how many archs, from
which searchers, it used. Values are not comparable across studies: they are shares of one study's variance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from nas_lab.core.config import objective_metrics
from nas_lab.core.errors import UserError
from nas_lab.core.space import Space
from nas_lab.study.metric_axes import Metric, new_figure
from nas_lab.study.results import StudyResults, cell_of

#: fewest distinct archs importance is computed from (a forest on fewer says little)
MIN_ARCHS = 10


@dataclass
class Importance:
    """Each decision's share of the explained variance of ``metric`` (largest first), and what it came from."""

    shares: dict[str, float]
    metric: Metric
    archs: int
    source: str  # e.g. "study nb201_small (nb201), objective CIFAR-10 test"
    searchers: list[str]  # titles of the searchers whose runs gave the archs
    tags: dict[str, str]  # decision name -> topology or size


def decision_importance(space: Space, archs: np.ndarray, values: np.ndarray, seed: int, trees: int) -> dict[str, float]:
    """fANOVA share of each decision of ``space`` in the variance of ``values`` over ``archs`` (rows of option
    indices; rows with a non-finite value are dropped, repeated archs count once), largest first; ``trees`` and
    ``seed`` make fANOVA's random forest (``nas-lab plot`` declares their defaults)."""
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    archs = np.asarray(archs, dtype=np.int64).reshape(len(values), -1)
    values = np.asarray(values, dtype=float)
    keep = np.isfinite(values)
    archs, first = np.unique(archs[keep], axis=0, return_index=True)
    values = values[keep][first]
    if len(values) < MIN_ARCHS:
        raise UserError(f"importance needs at least {MIN_ARCHS} distinct evaluated architectures with a finite value; "
                        f"the runs give {len(values)}, so run the study with a larger budget or more repeats")
    names = [d.name for d in space.decisions]
    distributions = {d.name: CategoricalDistribution(tuple(range(len(d.options)))) for d in space.decisions}
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" lines; restored below
    try:
        study = optuna.create_study()
        study.add_trials([optuna.trial.create_trial(params={n: int(v) for n, v in zip(names, arch)},
                                                    distributions=distributions, value=float(value))
                          for arch, value in zip(archs, values)])
        shares = get_param_importances(study, evaluator=FanovaImportanceEvaluator(n_trees=trees, seed=seed))
    finally:
        optuna.logging.set_verbosity(verbosity)
    return {n: float(shares.get(n, 0.0)) for n in sorted(names, key=lambda n: -shares.get(n, 0.0))}


def study_importance(study: StudyResults, objective: str | None, metric: str | None, seed: int,
                     trees: int) -> Importance:
    """Importance of each decision for ``metric`` (default: the objective's first target) over the archs every run
    of ``objective`` (default: the study's first) evaluated; the space is rebuilt from the study's config to name
    the decisions of the recorded arch indices."""
    from nas_lab.core import registry

    objectives = study.config.objectives
    objective = objectives[0] if objective is None else objective
    if objective not in objectives:
        raise UserError(f"study {study.config.name!r} has no objective {objective!r}; valid: {', '.join(objectives)}")
    runs = [r for r in study.records if cell_of(r)[0] == objective]
    if not runs:
        raise UserError(f"study {study.config.name!r} has no finished run of objective {objective!r} yet")
    targets = list(objective_metrics(objective))
    recorded = sorted(set.intersection(*(set(r.history) for r in runs)) - {"index", "value", "feasible", "violation",
                                                                          "cost", "time", "step"})
    metric = targets[0] if metric is None else metric
    if metric not in targets and metric not in recorded:
        raise UserError(f"metric {metric!r} was not recorded by the runs of {objective!r}; valid: "
                        f"{', '.join(targets + recorded)}")
    space = registry.create("space", study.config.space, study.config.space_params)
    archs, values = [], []
    for r in runs:
        column = r.history["value"][:, targets.index(metric)] if metric in targets else r.history[metric]
        ok = r.history["feasible"].astype(bool)
        archs.append(space.arch(r.history["index"][ok]).reshape(int(ok.sum()), space.dim))
        values.append(np.asarray(column, dtype=float)[ok])
    archs, values = np.concatenate(archs), np.concatenate(values)
    shares = decision_importance(space, archs, values, seed, trees)
    distinct = len(np.unique(archs[np.isfinite(values)], axis=0))
    searchers = dict.fromkeys(study.searcher_title(cell_of(r)[2]) for r in runs)
    source = f"study {study.config.name} ({study.config.space}), objective {study.objective_title(objective)}"
    direction = runs[0].directions[targets.index(metric)] if metric in targets else None
    return Importance(shares, Metric.of(study.metrics, metric, direction), distinct, source, list(searchers),
                      {d.name: d.tag for d in space.decisions})


def importance_figure(result: Importance) -> Figure:
    """Horizontal bars, most important decision on top, coloured by the decision's tag (topology or size)."""
    names = list(result.shares)[::-1]
    shares = np.array([result.shares[n] for n in names])
    fig = new_figure(7.0, 1.6 + 0.32 * len(names))
    ax = fig.subplots()
    tags = sorted(set(result.tags.values()))
    for k, tag in enumerate(tags):
        rows = [i for i, n in enumerate(names) if result.tags[n] == tag]
        ax.barh(rows, shares[rows], color=f"C{k}", label=f"{tag} decision")
    ax.set_yticks(range(len(names)), names)
    for i, share in enumerate(shares):
        ax.text(share, i, f" {share:.1%}", va="center", fontsize="small")
    ax.set_xlim(0, max(shares.max(initial=0) * 1.18, 0.05))
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_xlabel(f"share of the variance of {result.metric.label} the decision explains (fANOVA)")
    ax.grid(axis="x", alpha=0.3, linewidth=0.6)
    fig.suptitle(f"Decision importance for {result.metric.label}\n{result.source}\n{result.archs:,} distinct "
                 f"architectures evaluated by {', '.join(result.searchers)}", fontsize="medium")
    if len(tags) > 1:
        ax.legend(loc="lower right", fontsize="small")
    return fig
