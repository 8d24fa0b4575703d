"""Time and score the multi-objective searchers on real NAS-Bench-201 data, all in one process.

Problem: CIFAR-10 test accuracy (max) against Pixel 3 latency (min), the whole
table read from ``--table`` (default: ../shared/data next to the repository;
without it the benchmark says why and stops). Prints:

1. one 1,000-evaluation ``nsga2`` run against pymoo's own ``minimize`` with the
   same settings, stopped at 1,000 distinct archs (target: ratio <= 1.5), and
   against Optuna's ``NSGAIISampler`` at 1,000 trials (target: <= 0.5);
   medians of ``--repeats`` runs on different seeds, in CPU seconds of this
   process (what the code costs, steady when other jobs share the cores; the
   wall-clock figures are printed beside them);
2. the ``optuna`` adapter's overhead over the same sampler driven directly
   with the same seed (the adapter replays it exactly, so both do the same
   trials), measured back to back per seed, median of the per-seed ratios:
   TPE at 100 distinct archs on CIFAR-10 accuracy, and NSGA-II at 300
   distinct archs on the two targets (target: <= 20 %);
3. mean hypervolume as a fraction of the true front's, nsga2 and random search,
   at budgets 300 and 1000 over ``--seeds`` seeds.

BLAS runs on one thread (as in a study worker) unless the environment says otherwise.

    python benchmarks/bench_multi_objective.py [--table PATH] [--repeats 9] [--seeds 30]
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # one core per run, as in a study worker
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from nas_lab.core.config import RunConfig, build  # noqa: E402
from nas_lab.core.fronts import minimisation, true_front  # noqa: E402
from nas_lab.core.runner import run  # noqa: E402
from nas_lab.searchers.nsga2 import NSGA2  # noqa: E402
from nas_lab.searchers.optuna_sampler import OptunaSearch  # noqa: E402
from nas_lab.searchers.random import RandomSearch  # noqa: E402

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "shared" / "data"
OBJECTIVE = "test.cifar10,latency.pixel3"


def pymoo_minimize(space, F_all: np.ndarray, budget: int, seed: int) -> int:
    """pymoo's own loop, nas_lab's NSGA-II settings, stopped at ``budget`` distinct archs; returns generations."""
    from pymoo.core.problem import Problem
    from pymoo.core.termination import Termination
    from pymoo.optimize import minimize

    seen: set[int] = set()

    class Table(Problem):
        def __init__(self):
            super().__init__(n_var=space.dim, n_obj=F_all.shape[1], xl=np.zeros(space.dim),
                             xu=(space.sizes - 1).astype(float), vtype=int)

        def _evaluate(self, X, out, *args, **kwargs):
            idx = space.index(np.rint(X).astype(np.int64))
            seen.update(idx.tolist())
            out["F"] = F_all[idx]

    class Distinct(Termination):
        def _update(self, algorithm):
            return min(1.0, len(seen) / budget)

    result = minimize(Table(), NSGA2().pymoo_algorithm(space, seed), Distinct(), seed=seed, copy_termination=False)
    return result.algorithm.n_gen


def optuna_direct(space, values: np.ndarray, directions, sampler, *, trials: int | None = None,
                  distinct: int | None = None) -> int:
    """An Optuna sampler driven as a user would: suggest_categorical per decision, the table's values told for
    every trial; ``trials`` trials, or until ``distinct`` distinct archs. Returns the number of trials."""
    import optuna

    study = optuna.create_study(sampler=sampler, directions=["maximize" if d == "max" else "minimize" for d in directions])
    seen: set[int] = set()
    n = 0
    while (trials is not None and n < trials) or (distinct is not None and len(seen) < distinct):
        trial = study.ask()
        arch = [trial.suggest_categorical(name, list(range(int(k)))) for name, k in zip(space.names, space.sizes)]
        i = int(space.index(np.array([arch]))[0])
        seen.add(i)
        v = values[i].tolist()
        study.tell(trial, v if len(v) > 1 else v[0])
        n += 1
    return n


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median CPU seconds and median wall seconds of ``fn(seed)`` over seeds 0..repeats-1."""
    cpu, wall = [], []
    for seed in range(repeats):
        c, w = time.process_time(), time.perf_counter()
        fn(seed)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return float(np.median(cpu)), float(np.median(wall))


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE, help="NB201 data folder (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=9, help="timed runs per contender (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=30, help="seeds per hypervolume mean (default: %(default)s)")
    args = parser.parse_args()
    if not (args.table / "nats_bench.csv").is_file():
        print(f"skipped: the NB201 table (nats_bench.csv and HELP latencies) is not at {args.table}; give --table PATH")
        return 0

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    space, objective, _ = build(RunConfig(space="nb201", objective=OBJECTIVE).apply([f"table={args.table}"]))
    _, single, _ = build(RunConfig(space="nb201", objective="test.cifar10").apply([f"table={args.table}"]))
    values, _ = objective.exhaustive()
    single_values = single.exhaustive()[0]
    F_all = minimisation(values, objective.directions)
    truth = true_front(objective)  # computed once per objective, as in a study worker
    run(space, objective, NSGA2(), budget=100, seed=99)  # warm-up: imports, caches
    ok = True

    print(f"NB201, maximise CIFAR-10 test accuracy, minimise Pixel 3 latency; medians of {args.repeats} runs, "
          "CPU seconds of this process (steady on a shared machine; wall-clock ratios beside them)")
    ours = timed(lambda s: run(space, objective, NSGA2(), budget=1000, seed=s), args.repeats)
    theirs = timed(lambda s: pymoo_minimize(space, F_all, 1000, s), args.repeats)
    optuna_time = timed(lambda s: optuna_direct(space, values, objective.directions,
                                                optuna.samplers.NSGAIISampler(seed=s), trials=1000), args.repeats)
    for name, other, target in (("pymoo minimize, 1,000 distinct archs", theirs, 1.5),
                                ("Optuna NSGAIISampler, 1,000 trials", optuna_time, 0.5)):
        ratio = ours[0] / other[0]
        ok &= ratio <= target
        print(f"  nsga2 1,000 evaluations {ours[0]:.3f} s vs {name} {other[0]:.3f} s: ratio {ratio:.2f} "
              f"(target <= {target}) {verdict(ratio <= target)}; wall {ours[1]:.3f} s / {other[1]:.3f} s = "
              f"{ours[1] / other[1]:.2f}")

    print("optuna adapter against the same sampler driven directly, same seed (same trials)")
    for label, obj, vals, sampler_name, budget in (("TPE, CIFAR-10 accuracy", single, single_values, "tpe", 100),
                                                   ("NSGA-II, two targets", objective, values, "nsga2", 300)):
        cls = {"tpe": optuna.samplers.TPESampler, "nsga2": optuna.samplers.NSGAIISampler}[sampler_name]
        adapter, direct = [], []  # (cpu, wall) per seed, the two measured back to back so load drifts cancel
        for seed in range(args.repeats):
            c, w = time.process_time(), time.perf_counter()
            report = run(space, obj, OptunaSearch(sampler=sampler_name), budget=budget, seed=seed).searcher_report
            adapter.append((time.process_time() - c, time.perf_counter() - w))
            c, w = time.process_time(), time.perf_counter()
            n = optuna_direct(space, vals, obj.directions, cls(seed=report["sampler_seed"]), distinct=budget)
            direct.append((time.process_time() - c, time.perf_counter() - w))
            assert n == report["trials"], "the adapter did not replay the sampler"
        a, d = np.array(adapter), np.array(direct)
        overhead = float(np.median(a[:, 0] / d[:, 0])) - 1
        ok &= overhead <= 0.2
        print(f"  {label}, {budget} distinct archs: adapter {np.median(a[:, 0]):.3f} s, direct {np.median(d[:, 0]):.3f} s, "
              f"overhead {overhead:+.1%} (median of per-seed ratios; target <= +20%) {verdict(overhead <= 0.2)}; "
              f"wall {float(np.median(a[:, 1] / d[:, 1])) - 1:+.1%}")

    print(f"mean hypervolume as a share of the true front's ({truth.hypervolume:.5f}), {args.seeds} seeds, ± standard error")
    for budget in (300, 1000):
        for name, make in (("nsga2", NSGA2), ("random", RandomSearch)):
            hv = np.array([run(space, objective, make(), budget=budget, seed=s).front["hypervolume"]
                           for s in range(args.seeds)]) / truth.hypervolume
            print(f"  budget {budget:>4} {name:<7} {hv.mean():.2%} ± {hv.std(ddof=1) / np.sqrt(len(hv)):.2%}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
