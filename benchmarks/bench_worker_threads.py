"""Study workers and numpy's BLAS threads: a 2-worker NB201 study of BANANAS with the limits on, and off.

Each study worker limits its BLAS and OpenMP pools (threadpoolctl) and torch to its
share of the cores (``core.parallel.limit_threads``). Without that, numpy's OpenBLAS in
every worker starts one thread per core, and BANANAS (numpy least squares in its
predictor) slows by an order of magnitude on a 2-core machine: issue 11 measured a
2-worker study at budget 1000 at 198 s instead of 14.6 s. "off" reproduces the
workers as they were: OMP/MKL variables set after numpy had started its pool.
BANANAS and gp have since held each of their rounds to one thread themselves
(``limit_threads(1)`` around the model fit), so for them "off" now costs little:
the workers' limit is what protects searchers and objectives that do not limit
themselves (supernet training, plug-ins).

    python benchmarks/bench_worker_threads.py [--data ../shared/data] [--budget 1000] [--repeats 4] [--skip-off]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from nas_lab.core import parallel
from nas_lab.study import engine
from nas_lab.study.config import StudyConfig
from nas_lab.study.store import Store

from results_page import add_docs_flag, recorded

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"


def without_blas_limits(threads: int) -> None:
    """What a worker did before: OMP/MKL variables (too late for the loaded OpenBLAS) and torch's threads."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def timed(study: StudyConfig, workers: int, limits: bool) -> tuple[float, float]:
    """Seconds for the whole study, and the mean seconds of one run, with the workers' limits on or off."""
    real = parallel.limit_threads
    parallel.limit_threads = real if limits else without_blas_limits  # forked workers see the module as it is here
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            engine.run_study(study, tmp, workers=workers)
            total = time.perf_counter() - t
            runs = [r.wall_time for r in Store(tmp).records()]
    finally:
        parallel.limit_threads = real
    return total, sum(runs) / len(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("NAS_LAB_DATA", str(DEFAULT_DATA)))
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-off", action="store_true", help="only the limited workers (the unlimited take long)")
    add_docs_flag(parser)
    args = parser.parse_args()
    with recorded(args, "worker-threads", "Study workers and BLAS threads",
                  "A 2-worker NB201 BANANAS study with the workers' thread limits on and off. BANANAS now holds "
                  "each of its rounds to one thread itself, so the two differ little; the workers' limit protects "
                  "what does not limit itself (supernet training, plug-ins)."):
        study = StudyConfig.load(ROOT / "experiments" / "nb201.yaml", {
            "table": args.data, "searchers": "bananas", "objectives": "test.cifar10", "budget": str(args.budget),
            "repeats": str(args.repeats)})
        print(f"BANANAS on NB201, budget {args.budget}, {args.repeats} runs, {args.workers} workers, "
              f"{len(os.sched_getaffinity(0))} cores; {parallel.threads_per_worker(args.workers)} thread(s) per worker")
        print(f"{'worker thread limits':<22} {'study s':>8} {'s per run':>10}")
        results = {}
        for limits in (True, False)[: 1 if args.skip_off else 2]:
            results[limits] = timed(study, args.workers, limits)
            print(f"{'on' if limits else 'off (as before)':<22} {results[limits][0]:>8.1f} {results[limits][1]:>10.1f}")
        if len(results) == 2:
            print(f"speed-up of the study: {results[False][0] / results[True][0]:.1f}x")
        return 0


if __name__ == "__main__":
    sys.exit(main())
