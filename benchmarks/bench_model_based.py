"""Time single 100-evaluation runs of REINFORCE and BANANAS (hyvitas-sim, objective id).

Targets (2-core machine): 500 REINFORCE repeats in <= 30 s and 500 BANANAS
repeats in <= 5 min on 2 worker processes, i.e. <= 120 ms and <= 1.2 s per run.
Prints the median, 10th and 90th percentile over runs with different seeds,
after the table is built and the objective constructed once (as a study does),
and the time 500 repeats would take on 2 workers at the median.

    python benchmarks/bench_model_based.py [--runs-reinforce 100] [--runs-bananas 20]
"""

import argparse
import sys
import time

import numpy as np

from nas_lab.core.config import RunConfig, build
from nas_lab.core.runner import run
from nas_lab.searchers.bananas import Bananas
from nas_lab.searchers.reinforce import Reinforce

#: seconds for 500 repeats on 2 workers
TARGETS_S = {"reinforce": 30.0, "bananas": 300.0}
REPEATS, WORKERS = 500, 2


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
    parser.add_argument("--runs-reinforce", type=int, default=100, help="REINFORCE runs (default: %(default)s)")
    parser.add_argument("--runs-bananas", type=int, default=20, help="BANANAS runs (default: %(default)s)")
    args = parser.parse_args()

    space, objective, _ = build(RunConfig(objective="id"))
    print(f"{'searcher':<10} {'median ms':>10} {'p10 ms':>8} {'p90 ms':>8} {'500 on 2 workers':>17} {'target':>8}  verdict")
    ok = True
    for name, make, runs in (("reinforce", Reinforce, args.runs_reinforce), ("bananas", Bananas, args.runs_bananas)):
        time_runs(space, objective, make, 2)  # warm-up
        ms = time_runs(space, objective, make, runs)
        med = float(np.median(ms))
        total = med / 1e3 * REPEATS / WORKERS
        verdict = "meets target" if total <= TARGETS_S[name] else "MISSES target"
        ok &= total <= TARGETS_S[name]
        print(
            f"{name:<10} {med:>10.1f} {np.percentile(ms, 10):>8.1f} {np.percentile(ms, 90):>8.1f} "
            f"{total:>15.1f} s {TARGETS_S[name]:>6.0f} s  {verdict}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
