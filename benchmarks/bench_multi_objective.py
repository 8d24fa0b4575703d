"""Score the multi-objective searchers on real NAS-Bench-201 data against the exact true fronts, and time them.

Default: the comparison of issue 24. Two problems, CIFAR-10 test accuracy (max)
against Pixel 3 latency (min) and CIFAR-100 test accuracy (max) against
parameters (min), the whole table read from ``--table`` (default:
../shared/data next to the repository; without it the benchmark says why and
stops), at budgets 100 and 300 distinct archs, ``--seeds`` seeds from
``--seed-base`` (10,000: seeds the project's tests and other benchmarks never
use). Methods: ``mobo``, ``nsga2`` and ``random`` through nas_lab's runner;
pymoo's NSGA-II through its own ``minimize`` loop; Optuna's NSGA-II and TPE
(multi-objective) through Optuna's own ask/tell loop, one ``suggest_categorical``
per decision, until ``budget`` distinct archs or 2,000 trials. Each run is scored
as a run reports its front: hypervolume as a share of the true front's (targets
normalised by the true front's ideal and nadir, reference point the nadir), IGD,
share of the true front's archs found; and its CPU time (``time.process_time``).
Every run is appended to ``--out`` (JSON lines) as it ends, and what is there is
not run again, so the benchmark runs in chunks. Prints Markdown tables (``tables``
builds them), ``mobo`` against Optuna's TPE per cell (mean differences, paired
two-sided Wilcoxon p, CPU-time ratio) and whether the issue's targets are met:
better mean hypervolume than TPE in all four cells (p < 0.05 in at least three),
no worse IGD, at most 0.2x TPE's CPU time.

``--nsga2``: the earlier checks of ``nsga2``:

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
   at budgets 300 and 1000 over ``--seeds`` seeds (from 0).

BLAS runs on one thread (as in a study worker) unless the environment says otherwise.

    python benchmarks/bench_multi_objective.py [--table PATH] [--out FILE] [--seeds 30] [--methods a,b] \\
        [--budgets 100,300] [--docs]
    python benchmarks/bench_multi_objective.py --nsga2 [--table PATH] [--repeats 9] [--seeds 30]
"""

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # one core per run, as in a study worker
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from nas_lab.core.config import RunConfig, build  # noqa: E402
from nas_lab.core.fronts import minimisation, summarise, true_front  # noqa: E402
from nas_lab.core.runner import run  # noqa: E402
from nas_lab.searchers.nsga2 import NSGA2  # noqa: E402
from nas_lab.searchers.optuna_sampler import OptunaSearch  # noqa: E402
from nas_lab.searchers.random import RandomSearch  # noqa: E402

from results_page import add_docs_flag, recorded  # noqa: E402

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "shared" / "data"
OBJECTIVE = "test.cifar10,latency.pixel3"


def pymoo_minimize(space, F_all: np.ndarray, budget: int, seed: int) -> list[int]:
    """pymoo's own loop, nas_lab's NSGA-II settings, stopped at ``budget`` distinct archs; returns the arch indices
    in the order first evaluated (the last generation may pass the budget)."""
    from pymoo.core.problem import Problem
    from pymoo.core.termination import Termination
    from pymoo.optimize import minimize

    seen: dict[int, None] = {}  # insertion-ordered

    class Table(Problem):
        def __init__(self):
            super().__init__(n_var=space.dim, n_obj=F_all.shape[1], xl=np.zeros(space.dim),
                             xu=(space.sizes - 1).astype(float), vtype=int)

        def _evaluate(self, X, out, *args, **kwargs):
            idx = space.index(np.rint(X).astype(np.int64))
            seen.update(dict.fromkeys(idx.tolist()))
            out["F"] = F_all[idx]

    class Distinct(Termination):
        def _update(self, algorithm):
            return min(1.0, len(seen) / budget)

    minimize(Table(), NSGA2().pymoo_algorithm(space, seed), Distinct(), seed=seed, copy_termination=False)
    return list(seen)


def optuna_direct(space, values: np.ndarray, directions, sampler, *, trials: int | None = None,
                  distinct: int | None = None) -> tuple[int, list[int]]:
    """An Optuna sampler driven as a user would: suggest_categorical per decision, the table's values told for
    every trial; ``trials`` trials, or until ``distinct`` distinct archs, whichever comes first when both are
    given. Returns the number of trials and the distinct arch indices in the order first suggested."""
    import optuna

    study = optuna.create_study(sampler=sampler,
                                directions=["maximize" if d == "max" else "minimize" for d in directions])
    seen: dict[int, None] = {}  # insertion-ordered
    n = 0
    while (trials is None or n < trials) and (distinct is None or len(seen) < distinct):
        trial = study.ask()
        arch = [trial.suggest_categorical(name, list(range(int(k)))) for name, k in zip(space.names, space.sizes)]
        i = int(space.index(np.array([arch]))[0])
        seen[i] = None
        v = values[i].tolist()
        study.tell(trial, v if len(v) > 1 else v[0])
        n += 1
    return n, list(seen)


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


def nsga2_checks(args) -> bool:
    """The nsga2 checks: its cost against pymoo's and Optuna's loops, the optuna adapter's overhead, and its
    hypervolume against random search at 300 and 1,000 evaluations. True when every target is met."""
    import optuna

    quiet_optuna()
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
            n, _ = optuna_direct(space, vals, obj.directions, cls(seed=report["sampler_seed"]), distinct=budget)
            direct.append((time.process_time() - c, time.perf_counter() - w))
            assert n == report["trials"], "the adapter did not replay the sampler"
        a, d = np.array(adapter), np.array(direct)
        overhead = float(np.median(a[:, 0] / d[:, 0])) - 1
        ok &= overhead <= 0.2
        print(f"  {label}, {budget} distinct archs: adapter {np.median(a[:, 0]):.3f} s, "
              f"direct {np.median(d[:, 0]):.3f} s, "
              f"overhead {overhead:+.1%} (median of per-seed ratios; target <= +20%) {verdict(overhead <= 0.2)}; "
              f"wall {float(np.median(a[:, 1] / d[:, 1])) - 1:+.1%}")

    print(f"mean hypervolume as a share of the true front's ({truth.hypervolume:.5f}), {args.seeds} seeds, "
          "± standard error")
    for budget in (300, 1000):
        for name, make in (("nsga2", NSGA2), ("random", RandomSearch)):
            hv = np.array([run(space, objective, make(), budget=budget, seed=s).front["hypervolume"]
                           for s in range(args.seeds)]) / truth.hypervolume
            print(f"  budget {budget:>4} {name:<7} {hv.mean():.2%} ± {hv.std(ddof=1) / np.sqrt(len(hv)):.2%}")
    return ok


# -- the multi-objective comparison (issue 24) -------------------------------------------------------------------

#: the two NB201 problems: name -> (objective, how the table prints it)
PROBLEMS = {
    "cifar10-latency": ("test.cifar10,latency.pixel3", "CIFAR-10 test vs Pixel 3 latency"),
    "cifar100-params": ("test.cifar100,params", "CIFAR-100 test vs params"),
}
BUDGETS = (100, 300)
#: first seed: seeds the project's tests and other benchmarks never used (they use 0..1,000)
SEED_BASE = 10_000
#: most trials of a direct Optuna or pymoo run: Optuna's TPE keeps suggesting evaluated archs, and some runs never
#: reach 300 distinct ones
TRIAL_CAP = 2_000
CONTENDER = "mobo"
REFERENCE = "optuna-tpe"
METHODS = (CONTENDER, "nsga2", "random", "pymoo-nsga2", "optuna-nsga2", REFERENCE)
TITLES = {CONTENDER: "nas_lab mobo", "nsga2": "nas_lab nsga2", "random": "nas_lab random",
          "pymoo-nsga2": "pymoo NSGA-II", "optuna-nsga2": "Optuna NSGA-II", REFERENCE: "Optuna TPE"}


def quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)


def searched(method: str, space, objective, values: np.ndarray, budget: int, seed: int) -> tuple[dict | list, int]:
    """One search; returns the run's front (nas_lab searchers, through the runner) or the distinct arch indices in
    the order first evaluated (loops driven directly), and the number of trials (asks of single archs)."""
    import optuna

    if method in (CONTENDER, "nsga2", "random"):
        from nas_lab.core.registry import load as registered

        result = run(space, objective, registered("searcher", method)(), budget=budget, seed=seed)
        return result.front, len(result.history["index"])
    if method == "pymoo-nsga2":
        order = pymoo_minimize(space, minimisation(values, objective.directions), budget, seed)
        return order, len(order)
    sampler = {"optuna-nsga2": optuna.samplers.NSGAIISampler, REFERENCE: optuna.samplers.TPESampler}[method](seed=seed)
    trials, order = optuna_direct(space, values, objective.directions, sampler, trials=TRIAL_CAP, distinct=budget)
    return order, trials


def measure(method: str, problem: str, space, objective, budget: int, seed: int) -> dict:
    """One run scored against the exact true front: hypervolume share, IGD, share of the front's archs found,
    CPU and wall seconds of the search (a direct loop's scoring is not timed; the runner's is part of its run)."""
    values, feasible = objective.exhaustive()
    cpu, wall = time.process_time(), time.perf_counter()
    found, trials = searched(method, space, objective, values, budget, seed)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if not isinstance(found, dict):  # a direct loop: score its first `budget` distinct archs as a run would
        idx = np.asarray(found[:budget], dtype=np.int64)
        found = summarise({"index": idx, "value": values[idx], "feasible": feasible[idx]}, objective)
        distinct = len(idx)
    else:
        distinct = min(trials, budget)
    return {"method": method, "problem": problem, "budget": budget, "seed": seed,
            "hv": found["hypervolume"] / found["true_hypervolume"], "igd": found["igd"],
            "recovered": found["recovered"], "distinct": distinct, "trials": trials, "cpu": cpu, "wall": wall}


def load(path: Path) -> dict[tuple, dict]:
    """Records already in ``path`` (JSON lines), by (method, problem, budget, seed); a run recorded twice counts by its
    newest record."""
    out = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                out[(r["method"], r["problem"], r["budget"], r["seed"])] = r
    return out


def paired(records: dict, a: str, b: str, problem: str, budget: int, seeds) -> tuple[list[dict], list[dict]]:
    """The records of methods ``a`` and ``b`` on the seeds both have, in seed order."""
    both = [s for s in seeds if (a, problem, budget, s) in records and (b, problem, budget, s) in records]
    return [records[a, problem, budget, s] for s in both], [records[b, problem, budget, s] for s in both]


def wilcoxon_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided paired Wilcoxon signed-rank p of ``x - y`` (1 when every pair is tied)."""
    from scipy.stats import wilcoxon

    return float(wilcoxon(x, y).pvalue) if np.any(x != y) else 1.0


def tables(records: dict, methods, budgets, seeds) -> str:
    """The comparison as Markdown: per problem and budget, each method's mean hypervolume share, IGD and share of
    the true front found (± standard error over seeds), and the contender against Optuna's TPE: CPU-time ratio
    (mean over mean) and paired two-sided Wilcoxon p on hypervolume and IGD."""
    def cell(rs: list[dict], key: str, fmt: str) -> str:
        if not rs:
            return "–"
        v = np.array([r[key] for r in rs], dtype=float)
        se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
        return f"{fmt.format(v.mean())} ± {fmt.format(se)}"

    out = []
    for key, label, fmt in (("hv", "mean hypervolume, share of the true front's", "{:.2%}"),
                            ("igd",
                             "mean IGD (targets normalised by the true front's ideal and nadir; lower is better)",
                             "{:.4f}"),
                            ("recovered", "mean share of the true front's archs found", "{:.1%}"),
                            ("cpu", "mean CPU seconds per run", "{:.3f}")):
        out += [f"**{label}** (± standard error over seeds)", "",
                "| problem, budget | seeds | " + " | ".join(TITLES[m] for m in methods) + " |",
                "| --- | ---: | " + " | ".join("---:" for _ in methods) + " |"]
        for problem, (_, title) in PROBLEMS.items():
            for budget in budgets:
                rows = {m: [records[m, problem, budget, s] for s in seeds if (m, problem, budget, s) in records]
                        for m in methods}
                n = "/".join(sorted({str(len(rs)) for rs in rows.values()}))
                cells = " | ".join(cell(rows[m], key, fmt) for m in methods)
                out.append(f"| {title}, {budget} | {n} | {cells} |")
        out.append("")
    if CONTENDER in methods and REFERENCE in methods:
        out += [f"**{TITLES[CONTENDER]} against {TITLES[REFERENCE]}**, paired by seed", "",
                "| problem, budget | pairs | hypervolume difference | p (hypervolume) | IGD difference | p (IGD) "
                "| CPU-time ratio |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for problem, (_, title) in PROBLEMS.items():
            for budget in budgets:
                a, b = paired(records, CONTENDER, REFERENCE, problem, budget, seeds)
                if not a:
                    continue
                hv = np.array([r["hv"] for r in a]), np.array([r["hv"] for r in b])
                igd = np.array([r["igd"] for r in a]), np.array([r["igd"] for r in b])
                ratio = np.mean([r["cpu"] for r in a]) / np.mean([r["cpu"] for r in b])
                out.append(f"| {title}, {budget} | {len(a)} | {hv[0].mean() - hv[1].mean():+.2%} | "
                           f"{wilcoxon_p(*hv):.2g} | {igd[0].mean() - igd[1].mean():+.4f} | {wilcoxon_p(*igd):.2g} | "
                           f"{ratio:.3f} |")
        out.append("")
    return "\n".join(out)


def verdicts(records: dict, budgets, seeds) -> list[str]:
    """The issue's targets, each with whether the measured figures meet it."""
    cells = [(p, b, *paired(records, CONTENDER, REFERENCE, p, b, seeds)) for p in PROBLEMS for b in budgets]
    cells = [(p, b, a, r) for p, b, a, r in cells if a]
    if not cells:
        return []
    better = [np.mean([x["hv"] for x in a]) > np.mean([x["hv"] for x in r]) for _, _, a, r in cells]
    significant = [ok and wilcoxon_p(np.array([x["hv"] for x in a]), np.array([x["hv"] for x in r])) < 0.05
                   for ok, (_, _, a, r) in zip(better, cells)]
    igd = [np.mean([x["igd"] for x in a]) <= np.mean([x["igd"] for x in r]) for _, _, a, r in cells]
    ratios = [np.mean([x["cpu"] for x in a]) / np.mean([x["cpu"] for x in r]) for _, _, a, r in cells]
    need = min(3, len(cells))
    return [
        f"better mean hypervolume than Optuna TPE in every cell: {sum(better)} of {len(cells)}, {verdict(all(better))}",
        f"p < 0.05 (and better) in at least {need}: {sum(significant)}, {verdict(sum(significant) >= need)}",
        f"mean IGD no worse than Optuna TPE's in every cell: {sum(igd)} of {len(cells)}, {verdict(all(igd))}",
        f"CPU time <= 0.2x Optuna TPE's: largest ratio {max(ratios):.3f}, {verdict(max(ratios) <= 0.2)}",
    ]


def compare(args) -> None:
    """Run what ``--out`` lacks of methods x problems x budgets x seeds (appending each run as it ends), then print
    the tables and the verdicts."""
    quiet_optuna()
    seeds = range(args.seed_base, args.seed_base + args.seeds)
    records = load(args.out)
    problems = {name: build(RunConfig(space="nb201", objective=spec).apply([f"table={args.table}"]))[:2]
                for name, (spec, _) in PROBLEMS.items()}
    for _, objective in problems.values():
        true_front(objective)  # computed once per objective, untimed, as in a study worker
    todo = [(b, s, p, m) for b in args.budgets for s in seeds for p in problems for m in args.methods
            if (m, p, b, s) not in records or m in args.rerun]
    reused = sum(1 for b in args.budgets for s in seeds for p in problems for m in args.methods
                 if (m, p, b, s) in records and m not in args.rerun)
    space, objective = problems[next(iter(PROBLEMS))]
    for method in dict.fromkeys(m for *_, m in todo):  # warm-up, untimed: imports, caches
        searched(method, space, objective, objective.exhaustive()[0], 20, 0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as fh:
        for budget, seed, problem, method in todo:
            r = measure(method, problem, *problems[problem], budget, seed)
            records[method, problem, budget, seed] = r
            fh.write(json.dumps(r) + "\n")
            fh.flush()
            if args.verbose:
                print(f"{method} {problem} {budget} {seed}: hv {r['hv']:.2%} cpu {r['cpu']:.3f} s", flush=True)
    methods = [m for m in METHODS if any(k[0] == m for k in records)]
    intro = ("mobo against nas_lab's nsga2 and random search, pymoo's NSGA-II, and Optuna's NSGA-II and "
             "multi-objective TPE driven directly, on NAS-Bench-201's exact fronts.")
    with recorded(args, "multi-objective", "Multi-objective search on NAS-Bench-201", intro) as page:
        print(f"NB201 multi-objective, seeds {seeds.start}..{seeds.stop - 1}, scored against the exact true fronts "
              f"(hypervolume normalised by the true front's ideal and nadir, reference = nadir); records in "
              f"{args.out}\n")
        print(tables(records, methods, args.budgets, seeds))
        for line in verdicts(records, args.budgets, seeds):
            print(line)
        if reused:
            page.add(f"{reused} of the {len(records)} runs were read back from `{args.out}` (measured by earlier "
                     "invocations of this command, in the same way, each run's CPU time in the process that ran it); "
                     f"{len(todo)} were run by this invocation.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE, help="NB201 data folder (default: %(default)s)")
    parser.add_argument("--nsga2", action="store_true", help="run the nsga2 cost and adapter checks instead")
    parser.add_argument("--repeats", type=int, default=9,
                        help="--nsga2: timed runs per contender (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=30, help="seeds per mean (default: %(default)s)")
    parser.add_argument("--seed-base", type=int, default=SEED_BASE, help="first seed (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("bench_multi_objective.jsonl"),
                        help="JSON-lines records, one per run; what is there is kept and not run again "
                             "(default: %(default)s)")
    parser.add_argument("--methods", type=lambda v: v.split(","), default=list(METHODS),
                        help=f"comma-separated, of {','.join(METHODS)} (default: all)")
    parser.add_argument("--rerun", type=lambda v: v.split(","), default=[],
                        help="comma-separated methods run again where --out has them (a run's newest record counts)")
    parser.add_argument("--budgets", type=lambda v: [int(b) for b in v.split(",")], default=list(BUDGETS),
                        help="comma-separated (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="print each run as it ends")
    add_docs_flag(parser)
    args = parser.parse_args()
    if not (args.table / "nats_bench.csv").is_file():
        print(f"skipped: the NB201 table (nats_bench.csv and HELP latencies) is not at {args.table}; give --table PATH")
        return 0
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {', '.join(unknown)}; valid: {', '.join(METHODS)}")
    if args.nsga2:
        return 0 if nsga2_checks(args) else 1
    compare(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
