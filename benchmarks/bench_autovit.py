"""AutoViT figures: cardinalities and parameter ranges against the paper's, MACs, and subnet forward times on this CPU.

Prints, per variant (XXS, XS, S of Table 1, our reading of the layers; ``space.setting=paper``,
256 x 256 inputs, 1,000 classes):

1. the number of archs (heads and MLP ratio per stage, and per layer), all and those
   each width rule keeps, beside the paper's 10^16 / 10^10;
2. the parameter range: exact (the all-first and all-last archs bound it: params grow
   with every option) and over ``--samples`` uniformly sampled valid archs (5th, 50th,
   95th percentiles), beside Table 1's range; the MACs range likewise;
3. Table 5's found XXS arch under our reading (its T-1 MLP ratio 1 moved to 1.5), beside
   Table 2's 1.8 M / 0.3 G;
4. the forward time of one 256 x 256 image (batch 1, eval mode, no gradients) through
   ``--archs`` sampled subnets and the smallest and largest arch, as standalone models,
   with torch limited to ``--threads`` threads: median of ``--repeats`` runs after a
   warm-up, then the median and 90th percentile over archs.

    python benchmarks/bench_autovit.py
    python benchmarks/bench_autovit.py --archs 10 --threads 2
"""

import argparse

import numpy as np
import torch

from nas_lab.objectives.latency.measure import time_module
from nas_lab.spaces.autovit import VARIANTS, AutoViTSpace

from results_page import add_docs_flag, recorded

TABLE5_XXS = {"stem.width": 16, "mb1.width": 16, "mb1.depth": 1, "mb2.width": 24, "mb2.depth": 2, "mb3.width": 32,
              "mb3.depth": 2, "stages": 4, "pool.width": 1000,
              **{f"t{j}.{k}": v for j, row in enumerate([(48, 4, 3, 1.5), (64, 3, 3, 1.5), (80, 3, 3, 2.0),
                                                         (96, 2, 4, 2.0)], 1)
                 for k, v in zip(("width", "depth", "heads", "mlp_ratio"), row)}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--archs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    add_docs_flag(parser)
    args = parser.parse_args()
    with recorded(args, 'autovit', 'AutoViT space figures',
                  "Cardinalities, parameter ranges and MACs of AutoViT's variants, and forward times here."):
        torch.set_num_threads(args.threads)

        print("archs (paper: 10^16, 10^10 after the width rule)")
        print(f"{'variant':<8} {'per stage: all':>15} {'nondecr.':>9} {'incr.':>9} {'per layer: all':>15} "
              f"{'nondecr.':>9} "
              f"{'incr.':>9}")
        for name in VARIANTS:
            row = []
            for per_layer in (False, True):
                row.append(AutoViTSpace(name, per_layer=per_layer).cardinality)
                row += [AutoViTSpace(name, per_layer=per_layer, width_rule=r).valid_cardinality
                        for r in ("nondecreasing", "increasing")]
            print(f"{name:<8} {row[0]:>15.3g} {row[1]:>9.3g} {row[2]:>9.3g} {row[3]:>15.3g} {row[4]:>9.3g} "
                  f"{row[5]:>9.3g}")

        print(f"\nparams (M) and MACs (G) at 256 x 256, 1,000 classes; {args.samples} sampled valid archs")
        print(f"{'variant':<8} {'exact range':>13} {'Table 1':>9} {'p5':>6} {'p50':>6} {'p95':>6} {'MACs range':>12} "
              f"{'p50':>6}")
        for name in VARIANTS:
            space = AutoViTSpace(name)
            bounds = np.vstack([np.zeros(space.dim, np.int64), space.sizes - 1])
            low, high = space.params(bounds) / 1e6
            mlow, mhigh = space.macs(bounds) / 1e9
            archs = space.sample(np.random.default_rng(0), args.samples)
            p, m = space.params(archs) / 1e6, space.macs(archs) / 1e9
            paper = "{:.1f}-{:.1f}".format(*space.spec.params_m)
            print(f"{name:<8} {low:>6.2f}-{high:<6.2f} {paper:>9} {np.percentile(p, 5):>6.2f} {np.median(p):>6.2f} "
                  f"{np.percentile(p, 95):>6.2f} {mlow:>5.2f}-{mhigh:<6.2f} {np.median(m):>6.2f}")

        xxs = AutoViTSpace("xxs")
        arch = xxs.from_values(TABLE5_XXS)
        print(f"\nTable 5's XXS arch (T-1 ratio 1 -> 1.5): {xxs.params(arch)[0] / 1e6:.2f} M params, "
              f"{xxs.macs(arch)[0] / 1e9:.3f} G MACs (Table 2: 1.8 M, 0.3 G)")

        shape = (3, 256, 256)
        print(f"\nforward of one 256 x 256 image, batch 1, {args.threads} thread(s), median of {args.repeats} runs; "
              f"{args.archs} sampled archs + the smallest and largest")
        print(f"{'variant':<8} {'smallest ms':>11} {'largest ms':>10} {'median ms':>9} {'p90 ms':>7} "
              f"{'G MACs median':>13}")
        torch.manual_seed(0)
        for name in VARIANTS:
            space = AutoViTSpace(name)
            archs = space.sample(np.random.default_rng(1), args.archs)
            bounds = [np.zeros(space.dim, np.int64), space.sizes - 1]
            low, high = (time_module(space.build(a), shape, 1, args.repeats, clock="wall") for a in bounds)
            times = np.array([time_module(space.build(a), shape, 1, args.repeats, clock="wall") for a in archs])
            print(f"{name:<8} {low:>11.1f} {high:>10.1f} {np.median(times):>9.1f} {np.percentile(times, 90):>7.1f} "
                  f"{np.median(space.macs(archs)) / 1e9:>13.3f}")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
