"""Latency look-up tables measured on this machine: how well they predict whole models, and NB201 against HELP.

Prints, per space, what `nas-lab lut build` and `nas-lab lut validate` print (the
table is built or finished first, in the usual cache unless --cache says
otherwise): Spearman rho, MAPE and the share of models within +-10 % of their
measured latency, for the plain sum of block entries and with the correction
(a line through the calibration models); then, on NB201, the Spearman rho between our CPU latencies of a sample of
cells (measured end to end, and predicted by the table) and HELP's measurements
on two Intel CPUs (gold_6226, silver_4114; ../shared/data/help_nasbench201_latency),
beside the rho between the two Intel CPUs themselves.

    python benchmarks/bench_latency_lut.py                          # nb201, hyvitas, autovit; 50 + 200 archs
    python benchmarks/bench_latency_lut.py --spaces nb201 --help-sample 200 --rounds 3
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from nas_lab.core import registry
from nas_lab.objectives.latency import measure
from nas_lab.objectives.latency.table import TableKey
from nas_lab.objectives.tabular.objective import TabularObjective

from results_page import add_docs_flag, recorded

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HELP_DEVICES = ("gold_6226", "silver_4114")


def table_for(space, args):
    key = TableKey.current(space)
    t0 = time.perf_counter()
    table, taken = measure.build(space, key, progress=not args.quiet)
    print(f"{key.space}: table {key.default_path()} ({taken} times taken now, {time.perf_counter() - t0:.0f} s), "
          f"{len(dict.fromkeys(space.latency_blocks(key.resolution)))} blocks, correction {table.correction(space)}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spaces", default="nb201,hyvitas,autovit", help="spaces to build and validate")
    parser.add_argument("--sample", type=int, default=50, help="random models validated per space")
    parser.add_argument("--help-sample", type=int, default=200, help="NB201 cells compared with HELP (0: skip)")
    parser.add_argument("--rounds", type=int, default=None, help="validation rounds (default: the table's)")
    parser.add_argument("--data", default=str(DATA), help="folder with nats_bench.csv and help_nasbench201_latency/")
    parser.add_argument("--cache", default=None, help="folder of nas_lab's caches (sets NAS_LAB_CACHE)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_docs_flag(parser)
    args = parser.parse_args()
    with recorded(args, 'latency-lut', 'Latency look-up tables',
                  "How well a table built here predicts whole models, and NB201 against HELP's CPUs."):
        if args.cache:
            os.environ["NAS_LAB_CACHE"] = args.cache
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start")
        for name in [s for s in args.spaces.split(",") if s]:
            space = registry.create("space", name, {})
            table = table_for(space, args)
            if args.sample:
                result = measure.validate(space, table, args.sample, rounds=args.rounds, progress=not args.quiet)
                print(result.text(table))
        if not args.help_sample:
            return
        space = registry.create("space", "nb201", {})
        table = table_for(space, args)
        v = measure.validate(space, table, args.help_sample, seed=2, rounds=args.rounds, progress=not args.quiet)
        archs = space.arch(np.array([int(i) for i in v.indices]))
        every = space.all_archs()
        lut_all = table.predict(space, every)
        print(f"NB201 against HELP's Intel CPU latencies ({len(archs)} random cells measured end to end here; "
              f"load average {v.load[0]:.2f} -> {v.load[1]:.2f}):")
        help_all = {}
        for device in HELP_DEVICES:
            metric = f"latency.{device}"
            help_all[device] = TabularObjective(space, metric, table=args.data).measure(metric, every)
            theirs = help_all[device][space.index(archs)]
            print(f"  {device:<12} Spearman rho: measured here {spearmanr(v.measured, theirs).statistic:.3f}, "
                  f"table here {spearmanr(v.predicted, theirs).statistic:.3f}; table over all 15,625 cells "
                  f"{spearmanr(lut_all, help_all[device]).statistic:.3f}")
        a, b = HELP_DEVICES
        print(f"  for scale: {a} against {b}, all 15,625 cells: {spearmanr(help_all[a], help_all[b]).statistic:.3f}; "
              f"our table against our measurements of the sample: {spearmanr(v.predicted, v.measured).statistic:.3f}")


if __name__ == "__main__":
    main()
