"""Time 500-repeat studies end to end (local executor, all cores), as a researcher runs them.

Targets (issue 3, 2-core machine): 500 repeats at budget 100 of random search,
REA or REINFORCE in <= 30 s each; of BANANAS in <= 5 min; the multi-shot part of
experiments/hyvitas_table4.yaml (4 searchers x 2 objectives x 500) in
<= 10 min (its 5-repeat DARTS/SPOS rows train supernets: see bench_one_shot.py). Each figure includes process \
start-up, table building in every
worker and writing the store; the full study also includes the report and plots.

    python benchmarks/bench_study.py                 # per-searcher timings
    python benchmarks/bench_study.py --full          # and the Table-4 study's multi-shot part
    python benchmarks/bench_study.py --whole         # and the Table-4 study as configured, DARTS/SPOS rows included
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from nas_lab.study.config import StudyConfig
from nas_lab.study.engine import run_study
from nas_lab.study.report import write_report

from results_page import add_docs_flag, recorded

TABLE4 = Path(__file__).resolve().parents[1] / "experiments" / "hyvitas_table4.yaml"
TARGET_S = {"random": 30, "rea": 30, "reinforce": 30, "bananas": 300}
FULL_TARGET_S = 600


def timed_study(overrides: dict, workers: int | None) -> tuple[float, int, str]:
    """Seconds to run hyvitas_table4 with ``overrides`` into a fresh folder and write its report; runs made; the
    report's table as ``nas-lab report`` writes it (``report.md``)."""
    study = StudyConfig.load(TABLE4, overrides)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        outcome = run_study(study, tmp, workers=workers)
        write_report(tmp)
        seconds = time.perf_counter() - t
        return seconds, outcome.ran, (Path(tmp) / "report.md").read_text()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=500)
    parser.add_argument("--workers", type=int, default=None, help="default: number of cores")
    parser.add_argument("--searchers", default="random,rea,reinforce,bananas")
    parser.add_argument("--full", action="store_true", help="also run hyvitas_table4's multi-shot part with its report")
    parser.add_argument("--whole", action="store_true", help="also run hyvitas_table4 as configured (no target)")
    add_docs_flag(parser)
    args = parser.parse_args()
    with recorded(args, "studies", "500-repeat studies end to end",
                  "hyvitas_table4 studies timed with the local executor, store and report included.") as page:
        ok = True
        print(f"{'searcher':<10} {'repeats':>7} {'seconds':>8} {'target s':>9}  verdict")
        for name in args.searchers.split(","):
            study = StudyConfig.load(TABLE4, {"searchers": name, "objectives": "id", "repeats": str(args.repeats)})
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                run_study(study, tmp, workers=args.workers)
                seconds = time.perf_counter() - t
            target = TARGET_S[name] * args.repeats / 500
            ok &= seconds <= target
            print(f"{name:<10} {args.repeats:>7} {seconds:>8.1f} {target:>9.0f}  "
                  f"{'meets target' if seconds <= target else 'MISSES target'}")
        if args.full:
            # the multi-shot part the 10-minute target is about; the 5-repeat DARTS/SPOS rows train supernets
            seconds, ran, report = timed_study({"repeats": str(args.repeats),
                                                "searchers": "random,rea,reinforce,bananas"}, args.workers)
            page.add("#" + report)  # the report's title, one level down
            target = FULL_TARGET_S * args.repeats / 500
            ok &= seconds <= target
            print(f"full hyvitas_table4 multi-shot part: {ran} runs + report in {seconds:.1f} s (target {target:.0f} "
                  f"s): "
                  f"{'meets target' if seconds <= target else 'MISSES target'}")
        if args.whole:
            seconds, ran, report = timed_study({"repeats": str(args.repeats)}, args.workers)
            page.add("#" + report)
            print(f"whole hyvitas_table4 (DARTS and SPOS rows included): {ran} runs + report in {seconds:.1f} s")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
