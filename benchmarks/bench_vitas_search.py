"""The default ViTAS search on this CPU: wall time and the accuracy it finds (issue 12: at most 10 minutes).

Runs, from an empty supernet cache, what

    nas-lab run space=vitas space.setting=cpu space.budget_macs=1e6 searcher=nsga2 \
        objective=supernet.id constraint=macs<=1e6 budget=100

runs: the CPU-setting super-transformer trained on the default dataset (digits)
by budget-aware uniform single-path sampling with the space's recipe (AdamW,
warm-up, cosine), then NSGA-II (population 50) over archs scored by their val
accuracy with inherited weights, at most 1 M MACs. Prints the training and search
seconds, the best val accuracy found within the budget and its MACs, the mean and
best of the first generation (budget-aware random archs) for comparison, and
chance (1 / classes).

    python benchmarks/bench_vitas_search.py
    python benchmarks/bench_vitas_search.py --budget 50 --epochs 20 --threads 2
"""

import argparse
import tempfile
import time

import numpy as np
import torch

from nas_lab.core.config import RunConfig, build
from nas_lab.core.runner import run

from results_page import add_docs_flag, recorded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, default=100, help="archs NSGA-II evaluates")
    parser.add_argument("--macs", type=float, default=1e6, help="MACs budget (sampler and constraint)")
    parser.add_argument("--epochs", type=int, default=None, help="supernet epochs (default: the objective's)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    add_docs_flag(parser)
    args = parser.parse_args()
    with recorded(args, "vitas-search", "The default ViTAS search",
                  "Wall time and accuracy found by the CPU-sized ViTAS search from an empty cache."):
        torch.set_num_threads(args.threads)

        with tempfile.TemporaryDirectory() as cache:
            overrides = ["space=vitas", "space.setting=cpu", f"space.budget_macs={args.macs:g}", "searcher=nsga2",
                         "objective=supernet.id", f"constraint=macs<={args.macs:g}", f"budget={args.budget}",
                         f"seed={args.seed}", f"objective.cache={cache}"]
            if args.epochs is not None:
                overrides.append(f"objective.epochs={args.epochs}")
            start = time.perf_counter()
            space, objective, searcher = build(RunConfig().apply(overrides))
            result = run(space, objective, searcher, budget=args.budget, seed=args.seed)
            total = time.perf_counter() - start
        info = objective.info()
        train = float(info.get("train_seconds", float("nan")))
        values = result.history["value"][:, 0].astype(float)
        first = values[: min(50, len(values))]  # NSGA-II's first generation: budget-aware random archs
        print(f"command: nas-lab run {' '.join(o for o in overrides if not o.startswith('objective.cache'))}")
        print(f"torch threads {args.threads}; supernet: {info['epochs']} epochs, {info.get('optimizer', 'sgd')} at "
              f"{info['learning_rate']:g}")
        print(f"wall time           {total:7.1f} s  (supernet training {train:.1f} s, search {total - train:.1f} s)")
        print(f"archs evaluated     {len(values):7d}")
        print(f"best val accuracy   {result.best_metrics['id']:7.1f} %  at "
              f"{result.best_metrics.get('macs', float('nan')):,.0f} "
              f"MACs (budget {args.macs:,.0f})")
        print(f"first generation    {np.nanmean(first):7.1f} % mean, {np.nanmax(first):.1f} % best "
              f"({len(first)} budget-aware random archs)")
        print(f"chance              {100 / space.num_classes:7.1f} %")
        print(f"reported arch       {result.best_arch}")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
