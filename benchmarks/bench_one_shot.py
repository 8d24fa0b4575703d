"""Time one SPOS run and one DARTS run at their default settings on the default task, as `nas-lab run` does them.

Targets (One-shot NAS issue, 2-core CPU): each run <= 10 minutes, and the
derived arch's supernet val accuracy (single path, inherited weights, BN
recalibrated) well above chance: at least 5x chance, 50 % on the 10 digit
classes. Prints per run the minutes, that accuracy and the derived arch's
supernet OoD mean (C-1, C-5, sketch), the supernet-training
throughput (images/s; for DARTS the train images of its bilevel steps, each of
which also pushes a val batch), the derived arch and its table ID accuracy.

    python benchmarks/bench_one_shot.py                     # spos and darts, seed 0
    python benchmarks/bench_one_shot.py --searchers darts --seed 3
"""

import argparse
import sys
import time

from nas_lab.core.config import RunConfig, build
from nas_lab.core.runner import run

from results_page import add_docs_flag, recorded

TARGET_MINUTES = 10.0
TIMES_CHANCE = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--searchers", default="spos,darts")
    parser.add_argument("--seed", type=int, default=0)
    add_docs_flag(parser)
    args = parser.parse_args()
    with recorded(args, "one-shot", "One default SPOS and one default DARTS run",
                  "Wall time, supernet accuracies and training speed of the default one-shot runs."):
        ok, settings = True, []
        print(f"{'searcher':<9} {'minutes':>7} {'target':>6} {'supernet val %':>14} {'OoD mean %':>10} {'chance %':>8} "
              f"{'train img/s':>11}  "
              f"{'derived arch (table ID %)':<26} verdict")
        for name in args.searchers.split(","):
            cfg = RunConfig(searcher=name, seed=args.seed)
            space, objective, searcher = build(cfg)
            data = cfg.task().for_space(space).data()
            chance = 100.0 / data.num_classes
            start = time.perf_counter()
            result = run(space, objective, searcher, budget=cfg.budget, seed=cfg.seed)
            minutes = (time.perf_counter() - start) / 60
            report = result.searcher_report
            accuracy = report["supernet val accuracy %"]
            good = minutes <= TARGET_MINUTES and accuracy >= TIMES_CHANCE * chance
            ok &= good
            derived = f"{result.best_index} ({result.best_metrics['id']:.2f})"
            print(f"{name:<9} {minutes:>7.2f} {TARGET_MINUTES:>6.0f} {accuracy:>14.2f} "
                  f"{report['supernet OoD mean %']:>10.2f} "
                  f"{chance:>8.1f} "
                  f"{report['train images/s']:>11.1f}  {derived:<26} {'meets targets' if good else 'MISSES targets'}")
            settings.append(f"{name}: " + " ".join(f"{k}={v}" for k, v in result.searcher_params.items()))
        print(f"on {data.describe()}", *settings, sep="\n")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
