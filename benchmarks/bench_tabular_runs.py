"""Time single 100-evaluation runs on the tabular hot path (hyvitas-sim, objective id).

Targets (issue 2, 2-core machine): <= 5 ms per REA run, <= 2 ms per random run.
Prints the median, 10th and 90th percentile of many runs, each on its own seed,
after the table is built and the objective constructed once (as a study does).

    python benchmarks/bench_tabular_runs.py [--runs 300]
"""

import argparse
import sys
import time

import numpy as np

from nas_lab.core.config import RunConfig, build
from nas_lab.core.runner import run
from nas_lab.searchers.random import RandomSearch
from nas_lab.searchers.rea import RegularizedEvolution

TARGETS_MS = {"rea": 5.0, "random": 2.0}


def time_runs(space, objective, make_searcher, runs: int) -> np.ndarray:
    times = np.empty(runs)
    for seed in range(runs):
        searcher = make_searcher()
        t = time.perf_counter()
        run(space, objective, searcher, budget=100, seed=seed)
        times[seed] = time.perf_counter() - t
    return times * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300, help="runs per searcher (default: %(default)s)")
    args = parser.parse_args()

    t = time.perf_counter()
    space, objective, _ = build(RunConfig(objective="id"))
    setup_ms = (time.perf_counter() - t) * 1e3
    print(f"setup (table hyvitas-sim built + objective): {setup_ms:.0f} ms, once per process")
    print(f"{'searcher':<8} {'median ms':>10} {'p10 ms':>8} {'p90 ms':>8} {'target ms':>10}  verdict")
    ok = True
    for name, make in (("rea", RegularizedEvolution), ("random", RandomSearch)):
        time_runs(space, objective, make, 20)  # warm-up
        ms = time_runs(space, objective, make, args.runs)
        med = float(np.median(ms))
        verdict = "meets target" if med <= TARGETS_MS[name] else "MISSES target"
        ok &= med <= TARGETS_MS[name]
        print(f"{name:<8} {med:>10.3f} {np.percentile(ms, 10):>8.3f} {np.percentile(ms, 90):>8.3f} {TARGETS_MS[name]:>10.1f}  {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
