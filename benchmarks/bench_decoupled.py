"""Time a decoupled search (seed 002) on HyViTas: with its proxies computed on the way, then with them cached.

Runs `nas-lab run space=hyvitas searcher=decoupled objective=zc.logsynflow budget=<its plan>` with a parameter
cap twice with the same seed in one fresh proxy cache: the first run computes every Entropic Score and
LogSynflow value it needs, the second finds them all cached (issue 14's target: <= 10 min on 2 cores). Prints
each run's wall time, and for the first the CPU-seconds spent computing proxies (the compute times the cache
stores with each value) and their share of the wall time.

    python benchmarks/bench_decoupled.py                                     # the default run (900 archs)
    python benchmarks/bench_decoupled.py --resolution 32 --batch-size 2 \\
        --set phases=2 phase_budget=20 subpopulation_budget=12 subpopulation_size=8 handover=2 population=10
    python benchmarks/bench_decoupled.py --ablation ../shared/data   # Table 5 study on NB201, from the proxy cache

``--ablation TABLE`` times instead experiments/decoupled_ablation.yaml end to end (400 runs and the report) into
a fresh folder, reading the machine's proxy cache (fill it first with the `nas-lab precompute` line in that file);
it prints how many of the space's proxy values were cached beforehand, so a time with values still to compute is
not mistaken for the cached one.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from nas_lab.core.config import RunConfig, build
from nas_lab.core.runner import run
from nas_lab.study.config import StudyConfig
from nas_lab.study.engine import run_study
from nas_lab.study.report import write_report

from results_page import add_docs_flag, recorded

PROXIES = ("zc.entropic", "zc.logsynflow")
ABLATION = Path(__file__).resolve().parents[1] / "experiments" / "decoupled_ablation.yaml"


def search(args, cache: Path):
    cfg = RunConfig(space=args.space, searcher="decoupled", objective="zc.logsynflow", seed=args.seed,
                    constraints=[f"params<={args.cap}"])
    cfg.params["objective"] = {"cache": str(cache), **({"batch_size": args.batch_size} if args.batch_size else {}),
                               **({"resolution": args.resolution} if args.resolution else {})}
    cfg.params["searcher"] = dict(item.split("=", 1) for item in args.set)
    space, objective, searcher = build(cfg)
    t = time.perf_counter()
    result = run(space, objective, searcher, budget=searcher.planned, seed=args.seed)
    return result, time.perf_counter() - t, objective


def proxy_seconds(result, objective) -> float:
    """CPU-seconds the cache stores for the proxy values of the run's archs (a fresh cache: all computed by it)."""
    zc = objective.inner  # the zero-cost objective inside the parameter cap
    idx = result.history["index"]
    total = 0.0
    for name in PROXIES:
        _, seconds, found = zc.cache.lookup(zc.key(name.removeprefix("zc.")), idx)
        total += float(seconds[found].sum())
    return total


def ablation(table: str, workers: int | None) -> None:
    """Time the Table 5 study (all its runs and its report) and print what it took."""
    study = StudyConfig.load(ABLATION, {"table": table})
    spec = study.runs(repeats=1)[0]
    space, objective, _ = build(spec.run_config())
    zc = objective.inner
    indices = np.arange(space.cardinality)
    cached = {p: int(zc.cache.lookup(zc.key(p.removeprefix("zc.")), indices)[2].sum()) for p in PROXIES}
    print(f"{os.cpu_count()} cores; {ABLATION.name}: {study.size()} runs; proxy values cached beforehand: "
          + ", ".join(f"{p} {n:,} of {len(indices):,}" for p, n in cached.items()))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        outcome = run_study(study, tmp, workers=workers)
        write_report(tmp)
        wall = time.perf_counter() - t
    print(f"study: {outcome.ran} runs and the report in {wall:.1f} s wall ({wall / 60:.1f} min)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="hyvitas")
    parser.add_argument("--cap", type=float, default=3.5e6, help="parameter cap (seed 002's S0 budget)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resolution", type=int, default=None, help="proxy input side (default: the space's)")
    parser.add_argument("--batch-size", type=int, default=None, help="proxy batch (default: the space's)")
    parser.add_argument("--set", nargs="*", default=[], metavar="PARAM=VALUE", help="decoupled searcher parameters")
    parser.add_argument("--ablation", metavar="TABLE",
                        help="time experiments/decoupled_ablation.yaml instead (NB201 table)")
    parser.add_argument("--workers", type=int, default=None, help="study workers with --ablation (default: every core)")
    add_docs_flag(parser)
    args = parser.parse_args()
    with recorded(args, "decoupled", "Decoupled search timings",
                  "A default decoupled run with its proxies computed, then cached."):
        if args.ablation:
            ablation(args.ablation, args.workers)
            return
        print(f"{os.cpu_count()} cores; decoupled on {args.space}, params<={args.cap:g}, proxy inputs "
              f"{args.resolution or 'default'} px, batch {args.batch_size or 'default'}, searcher "
              f"{' '.join(args.set) or 'defaults'}")
        with tempfile.TemporaryDirectory() as tmp:
            cache = Path(tmp) / "zero_cost.sqlite"
            cold, cold_wall, objective = search(args, cache)
            spent = proxy_seconds(cold, objective)
            warm, warm_wall, _ = search(args, cache)
        assert np.array_equal(cold.history["index"], warm.history["index"]) and cold.best_index == warm.best_index
        print(f"proxies computed: {cold.evaluations} archs in {cold_wall:.1f} s wall; {spent:.1f} CPU-s computing "
              f"proxies ({spent / cold_wall:.0%} of the wall time)")
        print(f"proxies cached:   the same run in {warm_wall:.2f} s wall ({warm_wall / cold.evaluations * 1e3:.1f} "
              f"ms per arch)")
        print(f"final pick: architecture {cold.best_index}, {cold.best_metrics['params'] / 1e6:.2f} M params; "
              f"{cold.searcher_report['final stage']}")


if __name__ == "__main__":
    main()
