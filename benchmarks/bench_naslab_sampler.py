"""NasLabSampler (nas_lab's searchers inside Optuna) against nas_lab's own runs and Optuna's TPE on the NB201 table.

NAS-Bench-201 is written as an Optuna user would: six categorical parameters (the cell's edges, the five
operations as choices) and the table's test accuracy as the objective. Per dataset and per row, over seeds
0..N-1 run round robin (seed by seed, so that load on a shared machine falls on all rows alike), it prints the
mean best accuracy at ``--trials`` trials ± its standard error and the wall milliseconds per run:

- ``nas_lab gp``: ``nas-lab run space=nb201 searcher=gp`` (the runner, NB201's own arch numbering);
- ``nas_lab gp, categorical space``: the same searcher and runner over ``CategoricalSpace`` made from the six
  parameters (mixed-radix numbering), the space ``NasLabSampler`` builds;
- ``NasLabSampler gp``: ``optuna.create_study(sampler=NasLabSampler("gp", seed=s))``;
- ``Optuna TPE``: ``TPESampler(seed=s)`` on the same objective.

The second row separates what the integration changes (the first trial drawn at random, Optuna's trial loop)
from what the space's numbering changes (the order in which gp's candidate pool is subsampled). Without the NB201
table (``--table``, default ``../shared/data`` beside the repository) it prints why and exits 0.

    python benchmarks/bench_naslab_sampler.py [--table DIR] [--seeds 30] [--trials 100]
        [--datasets test.cifar10,test.cifar100,test.imagenet16]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import optuna
from threadpoolctl import threadpool_limits

from nas_lab.core.config import RunConfig, build
from nas_lab.core.objective import Evaluation, Objective
from nas_lab.core.runner import run
from nas_lab.core.space import CategoricalSpace
from nas_lab.integrations.optuna import NasLabSampler
from nas_lab.searchers.gp import GPSearch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


class Relabelled(Objective):
    """A tabular objective read through another space with the same decisions (arch -> the table's arch)."""

    def __init__(self, space, table_space, table):
        self.space, self._table_space, self._table = space, table_space, table
        self.name, self.targets, self.directions = table.name, table.targets, table.directions

    def evaluate(self, archs, rng):
        values = self._table.values()[self._table_space.index(archs)]
        return Evaluation(values=values[:, None], directions=self.directions, cost=np.zeros(len(archs)),
                          feasible=np.ones(len(archs), dtype=bool))


def compare(table_dir: Path, metric: str, seeds: int, trials: int) -> None:
    space, objective, _ = build(RunConfig(space="nb201", objective=metric).apply([f"table={table_dir}"]))
    categorical = CategoricalSpace("nb201-categorical", {d.name: d.options for d in space.decisions})
    relabelled = Relabelled(categorical, space, objective)
    values = objective.values()

    def accuracy(trial):
        cell = {d.name: trial.suggest_categorical(d.name, list(d.options)) for d in space.decisions}
        return float(values[space.index(space.from_values(cell))])

    def study(sampler):
        s = optuna.create_study(direction="maximize", sampler=sampler)
        s.optimize(accuracy, n_trials=trials)
        return s.best_value

    rows = {
        "nas_lab gp": lambda seed: run(space, objective, GPSearch(), budget=trials, seed=seed).best_metrics[metric],
        "nas_lab gp, categorical space": lambda seed: float(
            run(categorical, relabelled, GPSearch(), budget=trials, seed=seed).history["value"].max()),
        "NasLabSampler gp": lambda seed: study(NasLabSampler("gp", seed=seed)),
        "Optuna TPE": lambda seed: study(optuna.samplers.TPESampler(seed=seed)),
    }
    best = {label: [] for label in rows}
    wall = dict.fromkeys(rows, 0.0)
    for seed in range(seeds):
        for label, one in rows.items():
            t0 = time.perf_counter()
            best[label].append(one(seed))
            wall[label] += time.perf_counter() - t0
    print(f"\n{metric}: mean best at {trials} trials over {seeds} seeds (optimum {np.nanmax(values):.3f})")
    for label, found in best.items():
        found = np.array(found)
        print(f"  {label:<31} {found.mean():8.3f} ± {found.std(ddof=1) / np.sqrt(seeds):.3f}   "
              f"{1000 * wall[label] / seeds:7.0f} ms/run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=SHARED)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--datasets", default="test.cifar10,test.cifar100,test.imagenet16")
    args = parser.parse_args()
    if not (args.table / "nats_bench.csv").is_file():
        print(f"the NB201 table is not at {args.table} (give --table DIR); nothing measured")
        return
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with threadpool_limits(1):
        for metric in args.datasets.split(","):
            compare(args.table, metric, args.seeds, args.trials)


if __name__ == "__main__":
    main()
