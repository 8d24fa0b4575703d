"""Time single 100-evaluation runs of every built-in searcher on the tabular hot path.

hyvitas-sim, objective id; the table is built and the objective constructed
once, as in a study worker. Prints the median, 10th and 90th percentile of runs
on different seeds against the per-run targets on this 2-core machine:
REA <= 5 ms and random search <= 2 ms (issue 2); REINFORCE <= 120 ms and
BANANAS <= 1.2 s, which is what 500 repeats on 2 workers in 30 s and 5 min
allow (issue 3; `bench_study.py` measures those studies end to end).

    python benchmarks/bench_single_runs.py [--runs 300] [--runs-bananas 20]
"""

import argparse
import sys
import time

import numpy as np

from nas_lab.core.config import RunConfig, build
from nas_lab.core.runner import run
from nas_lab.searchers.bananas import Bananas
from nas_lab.searchers.random import RandomSearch
from nas_lab.searchers.rea import RegularizedEvolution
from nas_lab.searchers.reinforce import Reinforce

from results_page import add_docs_flag, recorded

SEARCHERS = {"rea": (RegularizedEvolution, 5.0), "random": (RandomSearch, 2.0),
             "reinforce": (Reinforce, 120.0), "bananas": (Bananas, 1200.0)}


def time_runs(space, objective, make_searcher, runs: int) -> np.ndarray:
    """Milliseconds of each of ``runs`` runs, seeds 0..runs-1."""
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
    parser.add_argument("--runs-bananas", type=int, default=20, help="BANANAS runs (default: %(default)s)")
    add_docs_flag(parser)
    args = parser.parse_args()
    with recorded(args, "single-runs", "Single runs on the tabular path",
                  "Time of one 100-evaluation run per built-in searcher on hyvitas-sim (objective id)."):
        t = time.perf_counter()
        space, objective, _ = build(RunConfig(objective="id"))
        print(f"setup (table hyvitas-sim built + objective): {(time.perf_counter() - t) * 1e3:.0f} ms, once per "
              f"process")
        print(f"{'searcher':<10} {'median ms':>10} {'p10 ms':>8} {'p90 ms':>8} {'target ms':>10}  verdict")
        ok = True
        for name, (make, target) in SEARCHERS.items():
            runs = args.runs_bananas if name == "bananas" else args.runs
            time_runs(space, objective, make, 2)  # warm-up
            ms = time_runs(space, objective, make, runs)
            med = float(np.median(ms))
            ok &= med <= target
            print(f"{name:<10} {med:>10.3f} {np.percentile(ms, 10):>8.3f} {np.percentile(ms, 90):>8.3f} "
                  f"{target:>10.1f}  "
                  f"{'meets target' if med <= target else 'MISSES target'}")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
